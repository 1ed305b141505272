import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_PASSWORD, startTestSystem, type TestSystem } from "../../../../test/support/harness";

let sys: TestSystem;
type User = { token: string; id: number; username: string };
let alice: User;
let bob: User;
const balances = async (u: User) =>
  Object.fromEntries(((await sys.api.get("/api/exchange/balances", u.token)).body as { asset: string; available: string; frozen: string }[]).map((b) => [b.asset, b]));
const adjust = (userId: number, asset: string, amount: string, key = randomUUID()) =>
  sys.api.post("/api/exchange/admin/adjustments", { userId, asset, amount, reason: "deposit by hand" }, sys.admin.token, key);

beforeAll(async () => {
  sys = await startTestSystem({ services: ["gateway", "identity", "account"] });
  [alice, bob] = [await sys.user(), await sys.user()];
  expect((await sys.api.post("/api/exchange/admin/assets", { code: "btc", decimals: 8 }, sys.admin.token)).body).toEqual({ code: "BTC", decimals: 8 });
  await sys.api.post("/api/exchange/admin/assets", { code: "USDT", decimals: 6 }, sys.admin.token);
});
afterAll(() => sys?.stop());

describe("assets and adjustments", () => {
  it("registers assets once, and refuses bad ones", async () => {
    expect((await sys.api.post("/api/exchange/admin/assets", { code: "BTC", decimals: 8 }, sys.admin.token)).body.error.code).toBe("ASSET_EXISTS");
    expect((await sys.api.post("/api/exchange/admin/assets", { code: "B", decimals: 8 }, sys.admin.token)).body.error.field).toBe("code");
    expect((await sys.api.post("/api/exchange/admin/assets", { code: "ETH", decimals: 19 }, sys.admin.token)).body.error.field).toBe("decimals");
    expect((await sys.api.post("/api/exchange/admin/assets", { code: "ETH", decimals: 18 }, alice.token)).status).toBe(403);
    expect((await sys.api.get("/api/exchange/assets", alice.token)).body.map((a: { code: string }) => a.code)).toEqual(["BTC", "USDT"]);
  });

  it("credits and debits a user against equity, once per key, never below zero", async () => {
    const key = randomUUID();
    expect((await adjust(alice.id, "BTC", "1.5", key)).body).toMatchObject({ applied: true, amount: "1.50000000" });
    expect((await adjust(alice.id, "BTC", "1.5", key)).body).toMatchObject({ applied: false });
    expect((await balances(alice)).BTC).toEqual({ asset: "BTC", available: "1.50000000", frozen: "0.00000000" });
    const over = await adjust(alice.id, "BTC", "-2");
    expect(over.status).toBe(409);
    expect(over.body.error.code).toBe("INSUFFICIENT_BALANCE");
    expect((await adjust(alice.id, "BTC", "0.000000001")).body.error).toMatchObject({ code: "INVALID_AMOUNT", field: "amount" });
    expect((await adjust(alice.id, "BTC", "0")).body.error.code).toBe("INVALID_AMOUNT");
    expect((await adjust(alice.id, "DOGE", "1")).status).toBe(404);
    expect((await sys.api.post("/api/exchange/admin/adjustments", { userId: alice.id, asset: "BTC", amount: "1", reason: "x" }, sys.admin.token)).body.error.code).toBe("IDEMPOTENCY_KEY_REQUIRED");
    expect((await sys.api.post("/api/exchange/admin/adjustments", { userId: alice.id, asset: "BTC", amount: "1", reason: "x" }, alice.token, randomUUID())).status).toBe(403);
    await adjust(alice.id, "BTC", "-0.5");
    expect((await balances(alice)).BTC.available).toBe("1.00000000");
  });
});

describe("freezing and settling", () => {
  it("freezes for orders once per ref, settles trades from both sides' frozen funds with fees, and keeps the ledger at zero", async () => {
    await adjust(bob.id, "USDT", "50000");
    // Order entry's freeze: a TCC try through the account's barrier, once per transaction.
    const freeze = (gid: string, userId: number, asset: string, amount: string) => sys.call("account.tryFreeze", { userId, asset, amount }, { tx: { gid, branchId: "sole", op: "try" } });
    expect(await freeze("order:1", alice.id, "BTC", "50000000")).toEqual({ frozen: "50000000" });
    expect(await freeze("order:1", alice.id, "BTC", "50000000")).toEqual({ frozen: "50000000" });
    expect((await balances(alice)).BTC.frozen).toBe("0.50000000");
    await expect(freeze("order:2", alice.id, "BTC", "60000000")).rejects.toMatchObject({ type: "INSUFFICIENT_BALANCE" });
    expect((await freeze("order:3", bob.id, "USDT", "20000000000")).frozen).toBe("20000000000");
    // Bob buys 0.5 BTC from Alice at 30,000 USDT: 15,000 USDT; fees 10 bps on each side; then what his order left frozen comes back.
    const trade = { kind: "settle", tradeId: "t-1", base: "BTC", quote: "USDT", buyerId: bob.id, sellerId: alice.id, quantity: "50000000", notional: "15000000000", buyerFeeBps: 10, sellerFeeBps: 10 };
    const rest = { kind: "unfreeze", ref: "order:3:rest", userId: bob.id, asset: "USDT", amount: "5000000000" };
    expect(await sys.call("account.postAll", { journals: [trade] })).toEqual({ applied: 1 });
    expect(await sys.call("account.postAll", { journals: [trade, rest] })).toEqual({ applied: 1 });
    expect(await sys.call("account.postAll", { journals: [trade, rest] })).toEqual({ applied: 0 });
    // A batch with one journal the ledger refuses changes nothing.
    const tooMuch = { kind: "unfreeze", ref: "order:3:again", userId: bob.id, asset: "USDT", amount: "1" };
    await expect(sys.call("account.postAll", { journals: [{ ...trade, tradeId: "t-2" }, tooMuch] })).rejects.toBeTruthy();
    expect(await balances(alice)).toMatchObject({ BTC: { available: "0.50000000", frozen: "0.00000000" }, USDT: { available: "14985.000000", frozen: "0.000000" } });
    expect(await balances(bob)).toMatchObject({ BTC: { available: "0.49950000", frozen: "0.00000000" }, USDT: { available: "35000.000000", frozen: "0.000000" } });
    const audit = (await sys.api.get("/api/exchange/admin/ledger/audit", sys.admin.token)).body;
    expect(audit).toMatchObject({ ok: true, unbalancedJournals: [] });
    expect(audit.assets).toEqual([
      { asset: "BTC", sum: "0", ok: true },
      { asset: "USDT", sum: "0", ok: true },
    ]);
    const cli = await promisify(execFile)(process.execPath, [path.resolve("bin/bazaar.js"), "audit", "ledger", "--url", sys.node.url!, "--password", ADMIN_PASSWORD]);
    expect(JSON.parse(cli.stdout).ok).toBe(true);
  });

  it("loses no update when freezes race: exactly what is there is frozen", async () => {
    const carol = await sys.user();
    await adjust(carol.id, "USDT", "0.3");
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) => sys.call("account.tryFreeze", { userId: carol.id, asset: "USDT", amount: "10000" }, { tx: { gid: `race:${i}`, branchId: "sole", op: "try" } })),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(30);
    expect(results.filter((r) => r.status === "rejected").every((r) => (r as PromiseRejectedResult).reason.type === "INSUFFICIENT_BALANCE")).toBe(true);
    expect((await balances(carol)).USDT).toEqual({ asset: "USDT", available: "0.000000", frozen: "0.300000" });
    expect((await sys.api.get("/api/exchange/admin/ledger/audit", sys.admin.token)).body.ok).toBe(true);
  });

  it("freezes a turn's orders in one call, each answered as its own try would be", async () => {
    const dave = await sys.user();
    await adjust(dave.id, "USDT", "100");
    const usdt = (gid: string, amount: string) => ({ gid: `${dave.id}:${gid}`, userId: dave.id, asset: "USDT", amount: `${amount}000000` });
    const meta = (gid: string, op: string) => ({ tx: { gid: `${dave.id}:${gid}`, branchId: "sole", op } });
    const tryAll = (...tries: ReturnType<typeof usdt>[]) => sys.call<{ answers: object[] }>("account.tryFreezeAll", { tries });
    // One already tried on its own, one whose cancel overtook its try.
    await sys.call("account.tryFreeze", { userId: dave.id, asset: "USDT", amount: "10000000" }, meta("repeat", "try"));
    await sys.call("account.cancelFreeze", { userId: dave.id, asset: "USDT", amount: "5000000" }, meta("late", "cancel"));
    expect((await tryAll(usdt("a", "30"), usdt("repeat", "10"), usdt("big", "1000"), usdt("b", "50"), usdt("late", "5"))).answers).toEqual([
      { ok: true, ran: true },
      { ok: true, ran: false },
      { ok: false, status: 409, code: "INSUFFICIENT_BALANCE", message: `USDT available of user:${dave.id} would be -940000000` },
      { ok: true, ran: true },
      { ok: false, status: 409, code: "TX_BRANCH_CANCELLED", message: `branch ${dave.id}:late/sole was cancelled before its try arrived` },
    ]);
    expect((await balances(dave)).USDT).toEqual({ asset: "USDT", available: "10.000000", frozen: "90.000000" });
    // The refused try left its barrier row free: tried again within the funds, it freezes.
    expect((await tryAll(usdt("big", "10"))).answers).toEqual([{ ok: true, ran: true }]);
    // A gid twice in one call: the set form steps aside and each goes on its own, the second a repeat.
    await adjust(dave.id, "USDT", "5");
    expect((await tryAll(usdt("twice", "5"), usdt("twice", "5"))).answers).toEqual([
      { ok: true, ran: true },
      { ok: true, ran: false },
    ]);
    expect((await balances(dave)).USDT).toEqual({ asset: "USDT", available: "0.000000", frozen: "105.000000" });
    // A cancel after a batched try gives back exactly what it froze.
    await sys.call("account.cancelFreeze", { userId: dave.id, asset: "USDT", amount: "30000000" }, meta("a", "cancel"));
    expect((await balances(dave)).USDT).toEqual({ asset: "USDT", available: "30.000000", frozen: "75.000000" });
    expect((await sys.api.get("/api/exchange/admin/ledger/audit", sys.admin.token)).body.ok).toBe(true);
    await expect(sys.call("account.tryFreezeAll", { tries: [] })).rejects.toMatchObject({ code: 400, message: expect.stringContaining("tries") });
  });
});
