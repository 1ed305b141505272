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
/** Per depth update or trade: when the first and last subscriber got it, and how many did. */
const seen = new Map<string, { first: number; last: number; got: number; age?: number }>();
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
      const m = JSON.parse(String(raw));
      if (m.op === "subscribed" && ++acks === 2) resolve();
      if (!m.channel || !m.data) return;
      const now = Date.now();
      delivered++;
      // A depth update, or a list of trades: each trade is counted on its own (its age, who got it when).
      const got: { id: string; at?: string }[] = m.channel === "depth" ? [{ id: `d${m.data.sequence}` }] : m.data.map((t: { seq: number; at: string }) => ({ id: `t${t.seq}`, at: t.at }));
      items += got.length;
      for (const { id, at } of got) {
        const s = seen.get(id);
        if (!s) seen.set(id, { first: now, last: now, got: 1, age: at === undefined ? undefined : now - Date.parse(at) });
        else {
          s.last = now;
          s.got++;
          if (s.age !== undefined && at !== undefined) s.age = Math.max(s.age, now - Date.parse(at));
        }
      }
    });
    ws.on("close", () => {
      if (started) dropped++;
    });
    ws.on("error", reject);
  });
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
    const messages = [...seen.values()];
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
