import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { eventually, startTestSystem, type TestSystem } from "../../../../test/support/harness";
import { catalogue, GATEWAY_HOOKS } from "../../../services/catalog";
import { startNode, type RunningNode } from "../../../platform/runtime/system";
import type { Subscription } from "../../../platform/stream/stream";
import { type DepthUpdate, type MatchingCommand, type MatchingEvent, type MatchingOutcome, MatchingSubjects } from "./matching.contract";
import { GTC, LIMIT, MARKET, type MatchSink, OrderBook } from "./matching.domain";
import { SNAPSHOT_EVERY } from "./matching.service";

let sys: TestSystem;
let node: RunningNode;
const outcomes: MatchingOutcome[] = [];
/** Every event published so far, in order. */
const published = (): MatchingEvent[] => outcomes.flatMap((o) => o.events);
let listening: Subscription;
let sent = 0;
/** Order entry's clock when it accepted the commands here: every event carries its command's time. */
const T0 = 1_780_000_000_000;

/** Appends commands to the log, as order entry does (its own ids, so a resend is one command). */
async function send(commands: MatchingCommand[]) {
  for (const c of commands) await node.platform.stream.publish(MatchingSubjects.commands, c, { id: `cmd-${++sent}` });
}
const depth = async (symbol: string) => (await sys.api.get(`/api/exchange/depth?symbol=${symbol}&limit=500`)).body;

async function listen() {
  listening = await node.platform.stream.consume({
    durable: "matching-test",
    subject: MatchingSubjects.events,
    handler: async (m) => void outcomes.push(m.data as MatchingOutcome),
  });
}

beforeAll(async () => {
  sys = await startTestSystem({ services: ["gateway", "identity", "matching"] });
  node = sys.node;
  await listen();
});
afterAll(async () => {
  await listening?.stop();
  // The node restarted by the second test, then the first one (stopping twice is harmless) and the engines.
  await node?.stop();
  await sys?.stop();
});

const place = (orderId: number, account: number, side: "BUY" | "SELL", price: number, quantity: number, type: "LIMIT" | "MARKET" = "LIMIT"): MatchingCommand => ({
  kind: "PLACE",
  symbol: "BTC-USDT",
  orderId,
  account,
  side,
  type,
  tif: "GTC",
  price,
  quantity,
  at: T0 + orderId,
});

describe("the matching service", () => {
  it("applies the log in order and publishes what happened with a gap-free sequence per symbol", async () => {
    await send([place(1, 1, "SELL", 100, 10), place(2, 2, "SELL", 101, 5), place(3, 3, "BUY", 101, 12), { kind: "CANCEL", symbol: "BTC-USDT", orderId: 2, at: T0 }]);
    await send([{ kind: "PLACE", symbol: "ETH-USDT", orderId: 1, account: 1, side: "BUY", type: "LIMIT", tif: "GTC", price: 50, quantity: 1, at: T0 }]);
    await eventually(async () => published().length === 8);
    const btc = published().filter((e) => e.symbol === "BTC-USDT");
    expect(btc.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(btc.map((e) => (e.kind === "TRADE" ? `T ${e.takerId}>${e.makerId} ${e.quantity}@${e.price}` : e.kind === "RESTED" ? `R ${e.orderId}` : `E ${e.orderId} ${e.reason} ${e.remaining}`))).toEqual([
      "R 1",
      "R 2",
      "T 3>1 10@100",
      "E 1 FILLED 0",
      "T 3>2 2@101",
      "E 3 FILLED 0",
      "E 2 CANCELLED 3",
    ]);
    // One message per command: its events' sequences, and the change to the top of the book it made.
    expect(outcomes.filter((o) => o.symbol === "BTC-USDT").map((o) => [o.previous, o.sequence, o.events.length, o.depth])).toEqual([
      [0, 1, 1, { bids: [], asks: [[100, 10]] }],
      [1, 2, 1, { bids: [], asks: [[101, 5]] }],
      [2, 6, 4, { bids: [], asks: [[101, 3], [100, 0]] }],
      [6, 7, 1, { bids: [], asks: [[101, 0]] }],
    ]);
    expect(published().filter((e) => e.symbol === "ETH-USDT").map((e) => e.seq)).toEqual([1]);
    // The time of each event is its command's, whatever the engine's clock says.
    expect(btc.map((e) => e.at)).toEqual([T0 + 1, T0 + 2, T0 + 3, T0 + 3, T0 + 3, T0 + 3, T0]);
    expect(await depth("BTC-USDT")).toEqual({ symbol: "BTC-USDT", sequence: 7, bids: [], asks: [] });
    expect((await sys.api.get("/api/exchange/depth?symbol=btc")).body.error.field).toBe("symbol");
  });

  it("pushes depth changes over WebSocket with sequences a client rebuilds the book from and checks for gaps", async () => {
    const ws = new WebSocket(`${sys.node.url!.replace("http", "ws")}/ws`);
    const updates: DepthUpdate[] = [];
    let subscribed = false;
    ws.on("message", (raw) => {
      const m = JSON.parse(String(raw));
      if (m.op === "subscribed") subscribed = true;
      if (m.channel === "depth" && m.data) updates.push(m.data);
    });
    await new Promise((r) => ws.once("open", r));
    ws.send(JSON.stringify({ op: "subscribe", channel: "depth", key: "SOL-USDT" }));
    await eventually(async () => subscribed);
    const snapshot = await depth("SOL-USDT");
    const sol = (orderId: number, account: number, side: "BUY" | "SELL", price: number, quantity: number): MatchingCommand => ({ ...place(orderId, account, side, price, quantity), symbol: "SOL-USDT" });
    await send([sol(1, 1, "BUY", 10, 5), sol(2, 2, "BUY", 11, 3), sol(3, 3, "SELL", 12, 4), sol(4, 4, "SELL", 11, 2), { kind: "CANCEL", symbol: "SOL-USDT", orderId: 1, at: T0 }]);
    const final = await eventually(async () => {
      const d = await depth("SOL-USDT");
      // Three rests, a trade that fills order 4, the cancel of order 1: six events in all.
      return d.sequence === 6 && updates.length > 0 && updates[updates.length - 1].sequence === 6 && d;
    });
    // Rebuild: the snapshot, then every update in order, each starting where the last one ended.
    const bids = new Map<number, number>(snapshot.bids);
    const asks = new Map<number, number>(snapshot.asks);
    let at = snapshot.sequence;
    for (const u of updates) {
      expect(u.previous).toBe(at);
      for (const [p, v] of u.bids) v === 0 ? bids.delete(p) : bids.set(p, v);
      for (const [p, v] of u.asks) v === 0 ? asks.delete(p) : asks.set(p, v);
      at = u.sequence;
    }
    expect([...bids].sort((a, b) => b[0] - a[0])).toEqual(final.bids);
    expect([...asks].sort((a, b) => a[0] - b[0])).toEqual(final.asks);
    expect(final.bids).toEqual([[11, 1]]);
    ws.close();
  });

  it("comes back from a restart with the same book, snapshot plus journal, and carries on the sequence", async () => {
    // A stream of the size that crosses a snapshot, against a reference engine in this process.
    // The reference counts its events too: the service's sequence must reach the first test's 7 plus these.
    let referenceEvents = 0;
    const count = () => void referenceEvents++;
    const reference = new OrderBook({ trade: count, rested: count, ended: count } satisfies MatchSink);
    const commands: MatchingCommand[] = [];
    let seed = 7;
    const next = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31);
    for (let i = 0; i < SNAPSHOT_EVERY + 150; i++) {
      const id = 1_000 + i;
      const side = next() % 2 === 0 ? "BUY" : "SELL";
      const market = next() % 10 === 0;
      commands.push(place(id, 10 + (next() % 7), side, 990 + (next() % 21), 1 + (next() % 9), market ? "MARKET" : "LIMIT"));
    }
    for (const c of commands) if (c.kind === "PLACE") reference.place(c.orderId, c.account, c.side === "BUY" ? 0 : 1, c.type === "MARKET" ? MARKET : LIMIT, GTC, c.price, c.quantity);
    await send(commands);
    await eventually(() => engineDone(), 60_000);
    const expected = { bids: reference.levels(0), asks: reference.levels(1) };
    const seenBefore = await depth("BTC-USDT");
    expect({ bids: seenBefore.bids, asks: seenBefore.asks }).toEqual(expected);

    // Restart the matching service's node on the same store: the book comes back from disk.
    await listening.stop();
    const config = sys.config;
    await node.stop();
    node = await startNode(config, { catalogue, services: ["gateway", "identity", "matching"], gateway: GATEWAY_HOOKS, clock: sys.clock, processMetrics: false });
    node.platform.readiness.ready = true;
    sys.api = new (sys.api.constructor as new (url: string) => typeof sys.api)(node.url!);
    await listen();
    const after = await depth("BTC-USDT");
    expect(after).toEqual({ symbol: "BTC-USDT", sequence: seenBefore.sequence, ...expected });

    // New commands carry on from the next sequence: no gap, no repeat.
    await send([place(99_999, 99, "BUY", 2_000, 1_000_000)]);
    await eventually(async () => (await depth("BTC-USDT")).sequence > seenBefore.sequence);
    const seqs = published().filter((e) => e.symbol === "BTC-USDT").map((e) => e.seq);
    await eventually(async () => {
      const all = published().filter((e) => e.symbol === "BTC-USDT").map((e) => e.seq);
      return all[all.length - 1] === (await depth("BTC-USDT")).sequence;
    });
    const all = published().filter((e) => e.symbol === "BTC-USDT").map((e) => e.seq);
    expect(new Set(all).size).toBe(all.length);
    expect(all).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
    expect(seqs.length).toBeLessThanOrEqual(all.length);
    expect((await depth("BTC-USDT")).asks).toEqual([]);

    async function engineDone() {
      const d = await depth("BTC-USDT");
      const last = published().filter((e) => e.symbol === "BTC-USDT").at(-1);
      return d.sequence === 7 + referenceEvents && last?.seq === d.sequence;
    }
  }, 120_000);
});
