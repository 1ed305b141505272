import { randomUUID } from "node:crypto";
import { benchNode, operator, userMeta, stopBenchNode } from "./support";

/**
 * Checkout throughput: orders placed through `order.create` (the stock hold as a TCC branch through the
 * coordinator, the order and its commit decision in one local transaction, the hold confirmed), 32 in
 * flight, counted when the coordinator has committed every hold. Runs on whatever BAZAAR_DB_URL names.
 */
export async function checkout(count = 2000, inFlight = 32) {
  const { node } = await benchNode();
  const { broker, platform } = node;
  const owner = 1;
  const tenant = await broker.call<{ id: string }, object>("tenant.create", { name: "Bench shop", ownerId: owner, quotas: { maxOrdersPerDay: 10_000_000 } }, operator);
  const staff = userMeta(owner);
  for (const sku of ["a", "b", "c", "d"]) {
    await broker.call("inventory.createProduct", { tid: tenant.id, sku, name: sku, price: 100 }, staff);
    await broker.call("inventory.setStock", { tid: tenant.id, sku, quantity: 1_000_000 }, staff);
  }
  const address = { name: "Bench", line1: "1 Loop", city: "Bench", postcode: "1", country: "US" };
  let next = 0;
  const cpuBefore = process.cpuUsage();
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < count) {
        const n = next++;
        await broker.call(
          "order.create",
          { tenantId: tenant.id, items: [{ sku: "abcd"[n % 4], quantity: 1 }, { sku: "abcd"[(n + 1) % 4], quantity: 2 }], address },
          userMeta(1000 + (n % 500), { idempotencyKey: randomUUID() }),
        );
      }
    }),
  );
  const placedAt = process.hrtime.bigint();
  const committed = async () => {
    const metric = await platform.metrics.registry.getSingleMetric("bazaar_tx_committed_total")!.get();
    return metric.values.find((v) => v.labels.kind === "TCC")?.value ?? 0;
  };
  while ((await committed()) < count) await new Promise((r) => setTimeout(r, 5));
  const settledAt = process.hrtime.bigint();
  const cpu = process.cpuUsage(cpuBefore);
  await stopBenchNode(node);
  return {
    engine: process.env.BAZAAR_DB_URL ? new URL(process.env.BAZAAR_DB_URL).protocol.replace(":", "") : "sqlite",
    orders: count,
    inFlight,
    ordersPerSecond: Math.round(count / (Number(placedAt - started) / 1e9)),
    settledOrdersPerSecond: Math.round(count / (Number(settledAt - started) / 1e9)),
    cpuMsPerOrder: Math.round(((cpu.user + cpu.system) / 1000 / count) * 100) / 100,
  };
}
