import WebSocket from "ws";

/**
 * The subscriber side of the market-data fan-out benchmark: `subscribers` WebSocket clients on one
 * gateway, each subscribed to a symbol's depth and trades. Prints `ready` once all are subscribed; on
 * SIGTERM prints a JSON summary: messages (frames) delivered and their rate, depth updates and trades
 * received (a frame of trades carries several), per update or trade the spread from the first
 * to the last subscriber that got it, each trade's age (its order's entry to delivery) at the slowest
 * subscriber, and clients the server dropped as too slow.
 */
const [url, symbol, count] = process.argv.slice(2);
const subscribers = Number(count);

/**
 * A data frame as received: the hub encodes a push once and writes the same bytes to every subscriber,
 * so each distinct frame is parsed once and every later copy is found by its text. Parsing each copy
 * (and each trade's time) took this process most of a core, which it took from the server under test.
 */
interface Frame {
  /** Its depth update, or its trades: each counted on its own. */
  items: { id: string; at?: string }[];
  /** When the first and the last subscriber got it. */
  first: number;
  last: number;
}
const frames = new Map<string, Frame>();
/** Messages (WebSocket frames) received, over all subscribers. */
let delivered = 0;
/** Depth updates and trades received, over all subscribers: a frame of trades carries several. */
let items = 0;
let dropped = 0;
let started = 0;

function connect(): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace("http", "ws")}/ws`);
    let acks = 0;
    ws.on("open", () => {
      for (const channel of ["depth", "trades"]) ws.send(JSON.stringify({ op: "subscribe", channel, key: symbol }));
    });
    ws.on("message", (raw) => {
      const text = String(raw);
      const now = Date.now();
      let frame = frames.get(text);
      if (frame === undefined) {
        const m = JSON.parse(text);
        if (m.op === "subscribed" && ++acks === 2) resolve();
        if (!m.channel || !m.data) return;
        // A depth update, or a list of trades.
        const got: Frame["items"] = m.channel === "depth" ? [{ id: `d${m.data.sequence}` }] : m.data.map((t: { seq: number; at: string }) => ({ id: `t${t.seq}`, at: t.at }));
        frames.set(text, (frame = { items: got, first: now, last: now }));
      }
      delivered++;
      items += frame.items.length;
      frame.last = now;
    });
    ws.on("close", () => {
      if (started) dropped++;
    });
    ws.on("error", reject);
  });
}

/** Per depth update or trade: when the first and last subscriber got it, and a trade's age at the last. */
function byItem() {
  const seen = new Map<string, { first: number; last: number; age?: number }>();
  for (const frame of frames.values())
    for (const { id, at } of frame.items) {
      const age = at === undefined ? undefined : frame.last - Date.parse(at);
      const s = seen.get(id);
      if (!s) seen.set(id, { first: frame.first, last: frame.last, age });
      else {
        s.first = Math.min(s.first, frame.first);
        s.last = Math.max(s.last, frame.last);
        if (s.age !== undefined && age !== undefined) s.age = Math.max(s.age, age);
      }
    }
  return [...seen.values()];
}

const percentile = (values: number[], p: number) => {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
};

async function main() {
  for (let i = 0; i < subscribers; i += 100) await Promise.all(Array.from({ length: Math.min(100, subscribers - i) }, connect));
  started = Date.now();
  // Alive until told to report, even with no sockets open.
  const alive = setInterval(() => undefined, 60_000);
  process.stdout.write("ready\n");
  process.on("SIGTERM", () => {
    clearInterval(alive);
    const seconds = (Date.now() - started) / 1000;
    const messages = byItem();
    const spreads = messages.map((s) => s.last - s.first);
    const ages = messages.filter((s) => s.age !== undefined).map((s) => s.age!);
    process.stdout.write(
      `${JSON.stringify({
        subscribers,
        distinctItems: messages.length,
        delivered,
        deliveredPerSecond: Math.round(delivered / seconds),
        itemsPerSecond: Math.round(items / seconds),
        completeness: messages.length ? Math.round((items / (messages.length * subscribers)) * 10_000) / 100 : null,
        spreadFirstToLastMs: { p50: percentile(spreads, 50), p99: percentile(spreads, 99), max: percentile(spreads, 100) },
        tradeAgeAtSlowestMs: { p50: percentile(ages, 50), p99: percentile(ages, 99), max: percentile(ages, 100) },
        droppedAsSlow: dropped,
      })}\n`,
    );
    process.exit(0);
  });
}

main().catch((err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(1);
});
