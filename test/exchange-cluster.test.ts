import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it, onTestFailed } from "vitest";
import { type ChildNode, spawnNode } from "./support/child-node";
import { freePort } from "./support/net";
import { cleanEngines, engines, eventually, testConfig } from "./support/harness";

/**
 * The exchange as production runs it (deploy/k8s: the `exchange` group has two replicas), on NATS and
 * a server database: replicas with the gateway, account, trading and market, and a node with the
 * matching engine. A replica is killed while it settles a fill (at the crash point, holding the
 * engine's outcome); the other replica takes over, and the cancels sent to it after the kill are
 * applied only after that fill: nothing is left frozen, what each side gave is exact, and the ledger
 * sums to zero.
 */
const config = testConfig();
const ADMIN = "exchange-cluster-admin";
const nodes: ChildNode[] = [];

afterAll(async () => {
  for (const n of nodes) await n.stop();
  await cleanEngines(config);
});

function node(services: string, name: string, port: number, env: Record<string, string> = {}): ChildNode {
  const started = spawnNode({ config, name, services, port, adminPassword: ADMIN, env: { BAZAAR_JWT_SECRET: "exchange-cluster-secret", ...env } });
  nodes.push(started);
  return started;
}

const REPLICA = "gateway,identity,config,account,trading,market";

describe.runIf(engines.nats && engines.db)("the exchange on replicas and an engine node", () => {
  it("settles a fill held by a killed replica before the cancels that came after it", async () => {
    onTestFailed(() => void process.stderr.write(`${nodes.map((n) => n.tail()).join("\n")}\n`));
    const spawnReplica = async (name: string, env?: Record<string, string>) => node(REPLICA, name, await freePort(), env).ready(90_000);
    node("matching", "engine", 0);
    const one = await spawnReplica("replica-1", { BAZAAR_CRASH_AT: "trading.settling" });
    const admin = await one.api.login("admin", ADMIN);
    expect((await one.api.post("/api/exchange/admin/assets", { code: "BTC", decimals: 8 }, admin.token)).status).toBe(201);
    expect((await one.api.post("/api/exchange/admin/assets", { code: "USDT", decimals: 6 }, admin.token)).status).toBe(201);
    const symbol = { symbol: "BTC-USDT", base: "BTC", quote: "USDT", tickSize: "0.01", lotSize: "0.0001", minNotional: "1", makerFeeBps: 10, takerFeeBps: 20 };
    expect((await one.api.post("/api/exchange/admin/symbols", symbol, admin.token)).status).toBe(201);
    const user = async (name: string, asset: string, amount: string) => {
      await one.api.post("/api/auth/register", { username: name, password: "password-123" });
      const u = await one.api.login(name, "password-123");
      expect((await one.api.post("/api/exchange/admin/adjustments", { userId: u.id, asset, amount, reason: "test funds" }, admin.token, randomUUID())).status).toBe(201);
      return u;
    };
    const seller = await user("seller", "BTC", "1");
    const buyer = await user("buyer", "USDT", "100000");
    const place = (u: { token: string }, side: string, price: string, quantity: string) =>
      one.api.post("/api/exchange/orders", { symbol: "BTC-USDT", side, type: "LIMIT", price, quantity }, u.token);

    // Five small asks and a larger one above them; one buy takes the five and part of the sixth.
    for (let i = 0; i < 5; i++) expect((await place(seller, "SELL", `30000.0${i}`, "0.01")).status).toBe(201);
    expect((await place(seller, "SELL", "30000.05", "0.05")).status).toBe(201);
    await eventually(async () => (await one.api.get("/api/exchange/depth?symbol=BTC-USDT")).body.asks?.length === 6, 30_000);
    expect((await place(buyer, "BUY", "30000.05", "0.06")).status).toBe(201);
    // Its consumer reaches the fill's settlement and the node dies there, the engine's outcome unacknowledged.
    await eventually(async () => one.gone, 30_000);

    const two = await spawnReplica("replica-2");
    const api = two.api;
    expect((await api.request("DELETE", "/api/exchange/orders?symbol=BTC-USDT", { token: seller.token })).status).toBe(200);
    const balances = async (token: string) =>
      Object.fromEntries(((await api.get("/api/exchange/balances", token)).body as { asset: string; available: string; frozen: string }[]).map((b) => [b.asset, b]));
    await eventually(async () => {
      const orders = (await api.get("/api/exchange/orders?symbol=BTC-USDT", seller.token)).body as { status: string }[];
      return orders.every((o) => o.status === "FILLED" || o.status === "CANCELLED") && (await balances(seller.token)).BTC.frozen === "0.00000000";
    }, 60_000);

    const sells = (await api.get("/api/exchange/orders?symbol=BTC-USDT", seller.token)).body as { price: string; status: string; filledQuantity: string }[];
    expect(sells.map((o) => [o.price, o.status, o.filledQuantity]).sort()).toEqual([
      ["30000.000000", "FILLED", "0.01000000"],
      ["30000.010000", "FILLED", "0.01000000"],
      ["30000.020000", "FILLED", "0.01000000"],
      ["30000.030000", "FILLED", "0.01000000"],
      ["30000.040000", "FILLED", "0.01000000"],
      ["30000.050000", "CANCELLED", "0.01000000"],
    ]);
    await eventually(async () => (await balances(buyer.token)).USDT.frozen === "0.000000", 30_000);
    const trades = (await api.get("/api/exchange/my-trades?symbol=BTC-USDT", buyer.token)).body as { quoteQuantity: string }[];
    expect(trades).toHaveLength(6);
    const units = (amount: string) => BigInt(amount.replace(".", ""));
    const paid = trades.reduce((sum, t) => sum + units(t.quoteQuantity), 0n);
    // Fees come off what each side receives, so what each gave is exact.
    expect((await balances(seller.token)).BTC.available).toBe("0.94000000");
    expect(units((await balances(buyer.token)).USDT.available)).toBe(units("100000.000000") - paid);
    expect((await api.get("/api/exchange/admin/ledger/audit", admin.token)).body.ok).toBe(true);
  }, 240_000);
});
