import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { eventually, startTestSystem, type TestSystem } from "../../../../test/support/harness";
import { type MatchingEvent, type MatchingOutcome, MatchingSubjects } from "../matching/matching.contract";

let sys: TestSystem;

beforeAll(async () => {
  sys = await startTestSystem({ services: ["gateway", "identity", "tx", "account", "trading", "matching", "market"] });
  await sys.api.post("/api/exchange/admin/assets", { code: "ETH", decimals: 8 }, sys.admin.token);
  await sys.api.post("/api/exchange/admin/assets", { code: "USDC", decimals: 6 }, sys.admin.token);
  await sys.api.post(
    "/api/exchange/admin/symbols",
    { symbol: "ETH-USDC", base: "ETH", quote: "USDC", tickSize: "0.01", lotSize: "0.001", minNotional: "1", makerFeeBps: 0, takerFeeBps: 0 },
    sys.admin.token,
  );
});
afterAll(() => sys?.stop());

describe("market data", () => {
  it("records the trades the engine decides, as decimals on the symbol's grid, and pushes them to WebSocket subscribers", async () => {
    const ws = new WebSocket(`${sys.node.url!.replace("http", "ws")}/ws`);
    const received: { op?: string; channel?: string; data?: unknown }[] = [];
    ws.on("message", (raw) => received.push(JSON.parse(String(raw))));
    await new Promise((r) => ws.once("open", r));
    ws.send(JSON.stringify({ op: "subscribe", channel: "trades", key: "ETH-USDC" }));
    await eventually(async () => received.some((m) => m.op === "subscribed"));
    const [maker, taker] = [await sys.user(), await sys.user()];
    await sys.api.post("/api/exchange/admin/adjustments", { userId: maker.id, asset: "ETH", amount: "2", reason: "t" }, sys.admin.token, randomUUID());
    await sys.api.post("/api/exchange/admin/adjustments", { userId: taker.id, asset: "USDC", amount: "10000", reason: "t" }, sys.admin.token, randomUUID());
    await sys.api.post("/api/exchange/orders", { symbol: "ETH-USDC", side: "SELL", type: "LIMIT", price: "2500.5", quantity: "1.5" }, maker.token);
    await sys.api.post("/api/exchange/orders", { symbol: "ETH-USDC", side: "BUY", type: "LIMIT", price: "2501", quantity: "1" }, taker.token);
    const trades = await eventually(async () => {
      const t = (await sys.api.get("/api/exchange/trades?symbol=ETH-USDC")).body;
      return t.length === 1 && t;
    });
    expect(trades[0]).toMatchObject({ price: "2500.500000", quantity: "1.00000000", takerSide: "BUY" });
    const pushed = await eventually(async () => received.find((m) => m.channel === "trades" && m.data));
    expect(pushed.data).toMatchObject([{ price: "2500.500000", quantity: "1.00000000", takerSide: "BUY", seq: trades[0].seq }]);
    ws.close();
    const [candle] = (await sys.api.get("/api/exchange/klines?symbol=ETH-USDC&interval=1h")).body;
    expect(candle).toMatchObject({ open: "2500.500000", close: "2500.500000", volume: "1.00000000", trades: 1 });
    expect((await sys.api.get("/api/exchange/klines?symbol=ETH-USDC&interval=2m")).body.error.field).toBe("interval");
    expect((await sys.api.get("/api/exchange/trades?symbol=NOPE-USDC")).status).toBe(404);
  });

  it("builds K-lines per interval from trades as they cross bucket boundaries, once per trade, and 24h tickers from them", async () => {
    const base = Date.UTC(2030, 0, 1, 10, 0, 0);
    sys.clock.advance(base + 30 * 60_000 - sys.clock.now());
    const trade = (seq: number, at: number, price: number, quantity: number): MatchingEvent => ({
      kind: "TRADE",
      symbol: "ETH-USDC",
      seq: 1_000 + seq,
      at,
      takerId: 1,
      makerId: 2,
      price,
      quantity,
      takerSide: "SELL",
      makerRemaining: 0,
    });
    const feed = [trade(1, base + 5_000, 250_000, 1_000), trade(2, base + 50_000, 251_000, 500), trade(3, base + 70_000, 249_000, 2_000), trade(4, base + 6 * 60_000, 252_000, 1_000)];
    // As the engine publishes them: one message per command, the first command with two trades.
    const outcome = (events: MatchingEvent[]): MatchingOutcome => ({ symbol: "ETH-USDC", previous: events[0].seq - 1, sequence: events[events.length - 1].seq, events });
    const outcomes = [outcome(feed.slice(0, 2)), outcome([feed[2]]), outcome([feed[3]])];
    for (const o of outcomes) await sys.node.platform.stream.publish(MatchingSubjects.events, o, { id: `market-test:${o.sequence}` });
    // A repeat of trades already recorded (as a redelivery under another id would be) changes nothing.
    await sys.node.platform.stream.publish(MatchingSubjects.events, outcomes[0], { id: "market-test:again" });
    await eventually(async () => (await sys.api.get("/api/exchange/trades?symbol=ETH-USDC&limit=10")).body.length === 5);
    const minutes = (await sys.api.get("/api/exchange/klines?symbol=ETH-USDC&interval=1m&limit=3")).body;
    expect(minutes.map((c: { openTime: string; open: string; close: string; volume: string; trades: number }) => [c.openTime.slice(11, 16), c.open, c.close, c.volume, c.trades])).toEqual([
      ["10:00", "2500.000000", "2510.000000", "1.50000000", 2],
      ["10:01", "2490.000000", "2490.000000", "2.00000000", 1],
      ["10:06", "2520.000000", "2520.000000", "1.00000000", 1],
    ]);
    const [five] = (await sys.api.get("/api/exchange/klines?symbol=ETH-USDC&interval=5m&limit=2")).body;
    expect(five).toMatchObject({ open: "2500.000000", high: "2510.000000", low: "2490.000000", close: "2490.000000", volume: "3.50000000", trades: 3 });
    const ticker = (await sys.api.get("/api/exchange/tickers")).body.find((t: { symbol: string }) => t.symbol === "ETH-USDC");
    expect(ticker).toEqual({ symbol: "ETH-USDC", open: "2500.000000", high: "2520.000000", low: "2490.000000", last: "2520.000000", volume: "4.50000000", trades: 4 });
  });
});
