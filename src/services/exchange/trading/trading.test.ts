import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startTestSystem, type TestSystem } from "../../../../test/support/harness";
import { failNextAt } from "../../../platform/runtime/faults";

let sys: TestSystem;
type User = { token: string; id: number; username: string };
let alice: User;
let bob: User;

const order = (who: User, body: Record<string, unknown>) => sys.api.post("/api/exchange/orders", { symbol: "BTC-USDT", type: "LIMIT", ...body }, who.token);
const balances = async (u: User) =>
  Object.fromEntries(((await sys.api.get("/api/exchange/balances", u.token)).body as { asset: string; available: string; frozen: string }[]).map((b) => [b.asset, { available: b.available, frozen: b.frozen }]));
const status = async (u: User, id: number) => (await sys.api.get(`/api/exchange/orders/${id}`, u.token)).body;

beforeAll(async () => {
  // No coordinator: order entry's freeze is a one-participant TCC the trading service drives itself.
  sys = await startTestSystem({ services: ["gateway", "identity", "account", "trading", "matching"] });
  [alice, bob] = [await sys.user(), await sys.user()];
  await sys.api.post("/api/exchange/admin/assets", { code: "BTC", decimals: 8 }, sys.admin.token);
  await sys.api.post("/api/exchange/admin/assets", { code: "USDT", decimals: 6 }, sys.admin.token);
  const symbol = await sys.api.post(
    "/api/exchange/admin/symbols",
    { symbol: "BTC-USDT", base: "BTC", quote: "USDT", tickSize: "0.01", lotSize: "0.0001", minNotional: "10", makerFeeBps: 10, takerFeeBps: 20 },
    sys.admin.token,
  );
  expect(symbol.status).toBe(201);
  await sys.api.post("/api/exchange/admin/adjustments", { userId: alice.id, asset: "BTC", amount: "1", reason: "test funds" }, sys.admin.token, randomUUID());
  await sys.api.post("/api/exchange/admin/adjustments", { userId: bob.id, asset: "USDT", amount: "50000", reason: "test funds" }, sys.admin.token, randomUUID());
});
afterAll(() => sys?.stop());

describe("symbols", () => {
  it("sit on a grid every price × quantity of which is whole quote units", async () => {
    const bad = await sys.api.post(
      "/api/exchange/admin/symbols",
      { symbol: "USDT-BTC", base: "USDT", quote: "BTC", tickSize: "0.00000001", lotSize: "0.000001", minNotional: "0", makerFeeBps: 0, takerFeeBps: 0 },
      sys.admin.token,
    );
    expect(bad.body.error).toMatchObject({ code: "INVALID_SYMBOL", field: "lotSize" });
    expect((await sys.api.post("/api/exchange/admin/symbols", { symbol: "BTC-EUR", base: "BTC", quote: "EUR", tickSize: "1", lotSize: "1", minNotional: "0", makerFeeBps: 0, takerFeeBps: 0 }, sys.admin.token)).body.error.code).toBe("ASSET_NOT_FOUND");
    expect((await sys.api.get("/api/exchange/symbols")).body).toEqual([
      { symbol: "BTC-USDT", base: "BTC", quote: "USDT", tickSize: "0.010000", lotSize: "0.00010000", minNotional: "10.000000", makerFeeBps: 10, takerFeeBps: 20, status: "TRADING" },
    ]);
  });
});

describe("order entry", () => {
  it("refuses what is off the grid, too small, unfunded or unknown, freezing nothing", async () => {
    expect((await order(bob, { side: "BUY", price: "30000.001", quantity: "0.1" })).body.error).toMatchObject({ code: "PRICE_OFF_TICK", field: "price" });
    expect((await order(bob, { side: "BUY", price: "30000.005", quantity: "0.1" })).body.error.code).toBe("PRICE_OFF_TICK");
    expect((await order(bob, { side: "BUY", price: "30000", quantity: "0.00001" })).body.error).toMatchObject({ code: "QUANTITY_OFF_LOT", field: "quantity" });
    expect((await order(bob, { side: "BUY", price: "1", quantity: "0.0001" })).body.error.code).toBe("BELOW_MIN_NOTIONAL");
    expect((await order(bob, { side: "BUY", type: "MARKET", quantity: "0.1" })).body.error.code).toBe("PRICE_REQUIRED");
    expect((await order(bob, { side: "BUY", price: "abc", quantity: "0.1" })).body.error.field).toBe("price");
    expect((await sys.api.post("/api/exchange/orders", { symbol: "ETH-USDT", side: "BUY", type: "LIMIT", price: "1", quantity: "1" }, bob.token)).status).toBe(404);
    const broke = await order(bob, { side: "BUY", price: "100000", quantity: "1" });
    expect(broke.status).toBe(409);
    expect(broke.body.error.code).toBe("INSUFFICIENT_BALANCE");
    expect(await balances(bob)).toEqual({ USDT: { available: "50000.000000", frozen: "0.000000" } });
    const rejected = (await sys.api.get("/api/exchange/orders?symbol=BTC-USDT", bob.token)).body;
    expect(rejected.map((o: { status: string; reason: string }) => [o.status, o.reason])).toEqual([["REJECTED", "INSUFFICIENT_BALANCE"]]);

    await sys.api.put("/api/exchange/admin/symbols/BTC-USDT/status", { status: "HALTED" }, sys.admin.token);
    expect((await order(bob, { side: "BUY", price: "30000", quantity: "0.1" })).body.error.code).toBe("SYMBOL_HALTED");
    await sys.api.put("/api/exchange/admin/symbols/BTC-USDT/status", { status: "TRADING" }, sys.admin.token);
  });

  it("freezes, matches, settles with fees, unfreezes what is left, and keeps the ledger at zero", async () => {
    const sell = await order(alice, { side: "SELL", price: "30000", quantity: "0.5", clientOrderId: "a-1" });
    expect(sell.body).toMatchObject({ status: "NEW", clientOrderId: "a-1" });
    expect((await order(alice, { side: "SELL", price: "30000", quantity: "0.1", clientOrderId: "a-1" })).body.error.code).toBe("DUPLICATE_CLIENT_ORDER_ID");
    expect((await balances(alice)).BTC).toEqual({ available: "0.50000000", frozen: "0.50000000" });

    const buy = await order(bob, { side: "BUY", price: "30010", quantity: "0.2" });
    expect(buy.status).toBe(201);
    await eventually(async () => (await status(bob, buy.body.orderId)).status === "FILLED");
    expect(await status(bob, buy.body.orderId)).toMatchObject({ filledQuantity: "0.20000000", averagePrice: "30000.000000", price: "30010.000000" });
    await eventually(async () => (await status(alice, sell.body.orderId)).status === "PARTIALLY_FILLED");
    // Bob paid 6,000 at the maker's price (the 2 frozen above it came back) and his 20 bps came off the BTC.
    await eventually(async () => (await balances(bob)).USDT.frozen === "0.000000");
    expect(await balances(bob)).toEqual({ BTC: { available: "0.19960000", frozen: "0.00000000" }, USDT: { available: "44000.000000", frozen: "0.000000" } });
    expect((await balances(alice)).USDT).toEqual({ available: "5994.000000", frozen: "0.000000" });

    expect((await sys.api.delete(`/api/exchange/orders/${sell.body.orderId}`, alice.token)).body.status).toBe("CANCEL_REQUESTED");
    await eventually(async () => (await status(alice, sell.body.orderId)).status === "CANCELLED");
    await eventually(async () => (await balances(alice)).BTC.frozen === "0.00000000");
    expect((await balances(alice)).BTC.available).toBe("0.80000000");
    expect((await sys.api.delete(`/api/exchange/orders/${sell.body.orderId}`, alice.token)).body.error.code).toBe("ORDER_CANCELLED");
    expect((await sys.api.get(`/api/exchange/orders/${sell.body.orderId}`, bob.token)).status).toBe(404);

    const trades = (await sys.api.get("/api/exchange/my-trades?symbol=BTC-USDT", bob.token)).body;
    expect(trades).toEqual([expect.objectContaining({ side: "BUY", price: "30000.000000", quantity: "0.20000000", quoteQuantity: "6000.000000" })]);
    const audit = (await sys.api.get("/api/exchange/admin/ledger/audit", sys.admin.token)).body;
    expect(audit.ok).toBe(true);
  });

  it("runs a market buy as IOC up to its protection price and a market sell against what is there", async () => {
    const ask = await order(alice, { side: "SELL", price: "31000", quantity: "0.1" });
    await eventually(async () => (await sys.api.get("/api/exchange/depth?symbol=BTC-USDT")).body.asks.length === 1);
    const buy = await order(bob, { side: "BUY", type: "MARKET", price: "31500", quantity: "0.3" });
    await eventually(async () => (await status(bob, buy.body.orderId)).status === "CANCELLED");
    expect(await status(bob, buy.body.orderId)).toMatchObject({ filledQuantity: "0.10000000", averagePrice: "31000.000000", reason: "EXPIRED" });
    await eventually(async () => (await status(alice, ask.body.orderId)).status === "FILLED");
    await eventually(async () => (await balances(bob)).USDT.frozen === "0.000000");

    await order(bob, { side: "BUY", price: "29000", quantity: "0.05" });
    const sell = await order(alice, { side: "SELL", type: "MARKET", quantity: "0.1" });
    await eventually(async () => (await status(alice, sell.body.orderId)).status === "CANCELLED");
    expect(await status(alice, sell.body.orderId)).toMatchObject({ filledQuantity: "0.05000000", reason: "EXPIRED" });
    await eventually(async () => (await balances(alice)).BTC.frozen === "0.00000000");

    const cancelAll = await sys.api.request("DELETE", "/api/exchange/orders?symbol=BTC-USDT", { token: bob.token });
    expect(cancelAll.body.cancelRequested).toEqual([]);
    expect((await sys.api.get("/api/exchange/orders?status=open", bob.token)).body).toEqual([]);
    expect((await sys.api.get("/api/exchange/admin/ledger/audit", sys.admin.token)).body.ok).toBe(true);
  });

  it("takes back an entry interrupted before it reached the log: cancelled by its owner, or timed out by the sweeper", async () => {
    const before = await balances(bob);
    const openOrder = async () => (await sys.api.get("/api/exchange/orders?status=open", bob.token)).body[0];
    const late = (orderId: number) => sys.call("account.tryFreeze", { userId: bob.id, asset: "USDT", amount: "2000000000" }, { tx: { gid: `xorder:${orderId}`, branchId: "sole", op: "try" } });

    // Frozen, not yet on the log; its owner cancels it: the freeze comes back at once.
    failNextAt("trading.order.frozen");
    expect((await order(bob, { side: "BUY", price: "20000", quantity: "0.1" })).status).toBe(500);
    const frozen = await openOrder();
    expect(frozen).toMatchObject({ status: "PENDING", price: "20000.000000" });
    expect((await balances(bob)).USDT.frozen).toBe("2000.000000");
    expect((await sys.api.delete(`/api/exchange/orders/${frozen.orderId}`, bob.token)).body).toEqual({ orderId: frozen.orderId, status: "CANCELLED" });
    expect(await balances(bob)).toEqual(before);

    // The same, while the freeze cannot be given back at once: the cancel is still answered (its outcome is
    // decided), and the sweeper gives the freeze back.
    failNextAt("trading.order.frozen");
    await order(bob, { side: "BUY", price: "20000", quantity: "0.1" });
    const stuck = await openOrder();
    failNextAt("trading.order.voiding");
    expect((await sys.api.delete(`/api/exchange/orders/${stuck.orderId}`, bob.token)).body).toEqual({ orderId: stuck.orderId, status: "CANCELLED" });
    expect((await status(bob, stuck.orderId)).status).toBe("CANCELLED");
    expect((await balances(bob)).USDT.frozen).toBe("2000.000000");
    sys.clock.advance(11_000);
    await sys.call("trading.tick");
    expect(await balances(bob)).toEqual(before);

    // Recorded, its freeze never sent (the node died): the sweeper takes it back after a minute, and the
    // freeze arriving after that (a slow network) is refused by the account's barrier.
    failNextAt("trading.order.recorded");
    await order(bob, { side: "BUY", price: "20000", quantity: "0.1" });
    const unfrozen = await openOrder();
    sys.clock.advance(59_000);
    await sys.call("trading.tick");
    expect((await status(bob, unfrozen.orderId)).status).toBe("PENDING");
    sys.clock.advance(2_000);
    await sys.call("trading.tick");
    expect(await status(bob, unfrozen.orderId)).toMatchObject({ status: "REJECTED", reason: "ENTRY_TIMEOUT" });
    await expect(late(unfrozen.orderId)).rejects.toMatchObject({ type: "TX_BRANCH_CANCELLED" });
    expect(await balances(bob)).toEqual(before);

    // Frozen, then timed out: the freeze comes back; the try repeated now changes nothing.
    failNextAt("trading.order.frozen");
    await order(bob, { side: "BUY", price: "20000", quantity: "0.1" });
    const timedOut = await openOrder();
    sys.clock.advance(61_000);
    await sys.call("trading.tick");
    expect((await status(bob, timedOut.orderId)).status).toBe("REJECTED");
    await late(timedOut.orderId);
    expect(await balances(bob)).toEqual(before);

    expect((await sys.api.get("/api/exchange/depth?symbol=BTC-USDT")).body.bids).toEqual([]);
    expect((await sys.api.get("/api/exchange/admin/ledger/audit", sys.admin.token)).body.ok).toBe(true);
  });

  it("settles a fill before its order's end even while the fill's settlement keeps failing: a later outcome waits for it", async () => {
    const units = (amount: string) => BigInt(amount.replace(".", ""));
    const before = await balances(alice);
    const sell = await order(alice, { side: "SELL", price: "32000", quantity: "0.2" });
    await eventually(async () => (await sys.api.get("/api/exchange/depth?symbol=BTC-USDT")).body.asks.length === 1);
    // The fill's settlement fails three times (about 0.7 s of retries); meanwhile the cancel's outcome is on the log behind it.
    failNextAt("trading.settling", 3);
    expect((await order(bob, { side: "BUY", price: "32000", quantity: "0.05" })).status).toBe(201);
    expect((await sys.api.delete(`/api/exchange/orders/${sell.body.orderId}`, alice.token)).status).toBe(200);
    await eventually(async () => (await status(alice, sell.body.orderId)).status === "CANCELLED");
    expect(await status(alice, sell.body.orderId)).toMatchObject({ filledQuantity: "0.05000000" });
    await eventually(async () => (await balances(alice)).BTC.frozen === "0.00000000");
    expect(units((await balances(alice)).BTC.available)).toBe(units(before.BTC.available) - 5_000_000n);
    expect((await sys.api.get("/api/exchange/admin/ledger/audit", sys.admin.token)).body.ok).toBe(true);
  });

  it("answers each order of a moment on its own: those the funds cover are placed, the rest refused, freezing nothing", async () => {
    const carol = await sys.user();
    await sys.api.post("/api/exchange/admin/adjustments", { userId: carol.id, asset: "USDT", amount: "1000", reason: "test funds" }, sys.admin.token, randomUUID());
    // Five buys of 300 USDT at once (their freezes go to the account together): three fit in 1,000.
    const answers = await Promise.all(Array.from({ length: 5 }, (_, i) => order(carol, { side: "BUY", price: "100", quantity: "3", clientOrderId: `c-${i}` })));
    expect(answers.map((a) => a.status).sort()).toEqual([201, 201, 201, 409, 409]);
    expect(answers.filter((a) => a.status === 409).map((a) => a.body.error.code)).toEqual(["INSUFFICIENT_BALANCE", "INSUFFICIENT_BALANCE"]);
    expect(await balances(carol)).toEqual({ USDT: { available: "100.000000", frozen: "900.000000" } });
    const mine = (await sys.api.get("/api/exchange/orders?symbol=BTC-USDT", carol.token)).body as { status: string }[];
    expect(mine.map((o) => o.status).sort()).toEqual(["NEW", "NEW", "NEW", "REJECTED", "REJECTED"]);
    await sys.api.delete("/api/exchange/orders?symbol=BTC-USDT", carol.token);
    await eventually(async () => (await balances(carol)).USDT.frozen === "0.000000");
    expect((await sys.api.get("/api/exchange/admin/ledger/audit", sys.admin.token)).body.ok).toBe(true);
  });
});
