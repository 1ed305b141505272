import { OrderBook as PeerBook } from "nodejs-order-book";
import * as engineModule from "../src/services/exchange/matching/matching.domain";
import type { MatchSink, Side } from "../src/services/exchange/matching/matching.domain";
import { Fnv1a, LiveOrders, type Profile, run, type Venue } from "./matching-workload";

/**
 * One engine on the reference workload, in its own process (clean heap, clean JIT, its own peak RSS):
 * `node --import tsx bench/matching-run.ts <ours|peer> <brief|banded> [commands]`. Prints JSON.
 *
 * Ours emits every event as the matching service does: into a preallocated journal of numbers
 * (kind, ids, price, quantity, its own sequence), the batch a leader publishes. The peer runs through
 * its public API with default options. Both books are hashed at the end to show they ran the same stream.
 */
// Read once: a CommonJS import reaches each binding through a getter, a cost on every command otherwise.
const { OrderBook, LIMIT, MARKET, GTC } = engineModule;

const [engine, profile, count] = process.argv.slice(2) as ["ours" | "peer", Profile, string?];
const commands = Number(count ?? 1_000_000);

/** The service's event journal: five numbers per event, reused from the start once drained. */
class Journal implements MatchSink {
  private readonly slots = new Float64Array(5 * 65_536);
  private at = 0;
  sequence = 0;
  constructor(private readonly live: LiveOrders) {}
  private put(kind: number, a: number, b: number, c: number, d: number): void {
    if (this.at === this.slots.length) this.at = 0;
    const s = this.slots;
    s[this.at] = kind;
    s[this.at + 1] = a;
    s[this.at + 2] = b;
    s[this.at + 3] = c;
    s[this.at + 4] = d;
    this.at += 5;
    this.sequence++;
  }
  trade(taker: number, maker: number, price: number, qty: number): void {
    this.put(0, taker, maker, price, qty);
  }
  rested(id: number, _side: Side, price: number, remaining: number): void {
    this.live.rested(id);
    this.put(1, id, price, remaining, 0);
  }
  ended(id: number, reason: number, remaining: number): void {
    this.live.left(id);
    this.put(2, id, reason, remaining, 0);
  }
}

function ours(live: LiveOrders) {
  const journal = new Journal(live);
  const book = new OrderBook(journal, 1 << 16);
  const venue: Venue = {
    limit: (id, side, price, qty) => book.place(id, id, side, LIMIT, GTC, price, qty),
    market: (id, side, qty) => book.place(id, id, side, MARKET, GTC, 0, qty),
    cancel: (id) => book.cancel(id),
  };
  const depthHash = () => {
    const h = new Fnv1a();
    book.forEachLevel((side, price, volume) => {
      h.add(side);
      h.add(price);
      h.add(volume);
    });
    return h.hex();
  };
  return { venue, depthHash, events: () => journal.sequence };
}

function peer(live: LiveOrders) {
  const book = new PeerBook();
  const left = (result: { done: { id: string }[] }, taker: string | null) => {
    for (const o of result.done) if (o.id !== taker) live.left(Number(o.id));
  };
  const venue: Venue = {
    limit(id, side, price, qty) {
      const key = String(id);
      const result = book.limit({ id: key, side: (side === 0 ? "buy" : "sell") as never, size: qty, price });
      left(result, key);
      if (result.quantityLeft > 0) live.rested(id);
    },
    market(_id, side, qty) {
      left(book.market({ side: (side === 0 ? "buy" : "sell") as never, size: qty }), null);
    },
    cancel(id) {
      book.cancel(String(id));
      live.left(id);
    },
  };
  const depthHash = () => {
    const [asks, bids] = book.depth();
    const h = new Fnv1a();
    for (const [price, volume] of [...bids].sort((a, b) => b[0] - a[0])) {
      h.add(0);
      h.add(price);
      h.add(volume);
    }
    for (const [price, volume] of [...asks].sort((a, b) => a[0] - b[0])) {
      h.add(1);
      h.add(price);
      h.add(volume);
    }
    return h.hex();
  };
  return { venue, depthHash, events: () => 0 };
}

function once(timed: boolean) {
  const live = new LiveOrders();
  const e = engine === "ours" ? ours(live) : peer(live);
  let latencies: Float64Array | undefined;
  let venue = e.venue;
  if (timed) {
    // Per-command latency: each call timed on its own (a separate pass; timing costs throughput).
    const lat = new Float64Array(commands);
    let n = 0;
    const inner = e.venue;
    const time = (f: () => void) => {
      const t = performance.now();
      f();
      lat[n++] = performance.now() - t;
    };
    venue = {
      limit: (id, side, price, qty) => time(() => inner.limit(id, side, price, qty)),
      market: (id, side, qty) => time(() => inner.market(id, side, qty)),
      cancel: (id) => time(() => inner.cancel(id)),
    };
    latencies = lat;
  }
  const started = performance.now();
  run(venue, live, profile, commands);
  const seconds = (performance.now() - started) / 1000;
  return { seconds, latencies, depthHash: e.depthHash(), events: e.events() };
}

const runs = [once(false), once(false), once(false)];
const best = runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
const timed = once(true);
const sorted = timed.latencies!.sort();
const pct = (p: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] * 1e6) / 1e3;
process.stdout.write(
  JSON.stringify({
    engine,
    profile,
    commands,
    commandsPerSecond: Math.round(commands / best.seconds),
    p50us: pct(0.5),
    p99us: pct(0.99),
    p999us: pct(0.999),
    depthHash: best.depthHash,
    events: best.events,
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
  }),
);
