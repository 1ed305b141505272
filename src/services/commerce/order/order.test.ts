import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startTestSystem, type TestSystem } from "../../../../test/support/harness";
import { ManualClock } from "../../../platform/clock/clock";

let sys: TestSystem;
type User = { token: string; id: number; username: string };
let owner: User;
let buyer: User;
let other: User;
let tid: string;
let rivalTid: string;
const address = { name: "Ann", line1: "1 Main St", city: "Springfield", postcode: "12345", country: "us" };

beforeAll(async () => {
  // Noon UTC today: the tests move the clock by minutes, and the orders-per-day quota must not see a new day start.
  const noon = new Date();
  noon.setUTCHours(12, 0, 0, 0);
  sys = await startTestSystem({ services: ["gateway", "identity", "tenant", "permission", "inventory", "order", "tx", "payment", "callback", "sandbox"], clock: new ManualClock(noon.getTime()) });
  [owner, buyer, other] = [await sys.user(), await sys.user(), await sys.user()];
  tid = (await sys.api.post("/api/commerce/tenants", { name: "Pens", ownerId: owner.id, quotas: { maxOrdersPerDay: 6, paymentTimeoutSeconds: 600 } }, sys.admin.token)).body.id;
  rivalTid = (await sys.api.post("/api/commerce/tenants", { name: "Rival", ownerId: other.id }, sys.admin.token)).body.id;
  for (const [sku, price, quantity] of [["pen", 150, 10], ["ink", 30, 5]] as const) {
    await sys.api.post(`/api/commerce/tenants/${tid}/products`, { sku, name: sku, price }, owner.token);
    await sys.api.put(`/api/commerce/tenants/${tid}/stock/${sku}`, { quantity }, owner.token);
  }
});
afterAll(() => sys?.stop());

const order = (items: { sku: string; quantity: number }[], key: string = randomUUID(), who: User = buyer) =>
  sys.api.post("/api/commerce/orders", { tenantId: tid, items, address }, who.token, key);
const level = async (sku: string) => (await sys.api.get(`/api/commerce/tenants/${tid}/products/${sku}`, owner.token)).body.stock;
/** Pays an order as a buyer would: a payment, the provider's page, its notification back to us. */
async function pay(id: string) {
  const payment = await sys.api.post(`/api/commerce/orders/${id}/payments`, {}, buyer.token);
  expect(payment.status).toBe(201);
  await sys.api.post(`/api/payments/sandbox/${payment.body.paymentId}/complete`, { outcome: "SUCCESS" });
  await eventually(async () => (await sys.api.get(`/api/commerce/orders/${id}`, buyer.token)).body.status === "PAID");
}
const committed = (id: string) => eventually(async () => (await sys.api.get(`/api/platform/tx/order:${id}`, sys.admin.token)).body.state === "COMMITTED");

describe("checkout", () => {
  it("places an order that holds its stock, priced by the catalogue, once per key", async () => {
    const key = randomUUID();
    const placed = await order([{ sku: "pen", quantity: 2 }, { sku: "ink", quantity: 1 }], key);
    expect(placed.status).toBe(201);
    expect(placed.body).toMatchObject({ status: "PENDING_PAYMENT", total: 330, tenantId: tid, address: { country: "US" } });
    expect(placed.body.items).toEqual([
      { sku: "ink", warehouse: "main", quantity: 1, price: 30 },
      { sku: "pen", warehouse: "main", quantity: 2, price: 150 },
    ]);
    await committed(placed.body.id);
    expect(await level("pen")).toEqual({ onHand: 10, reserved: 2, available: 8 });
    const again = await order([{ sku: "pen", quantity: 2 }, { sku: "ink", quantity: 1 }], key);
    expect(again.body.id).toBe(placed.body.id);
    expect((await order([{ sku: "pen", quantity: 1 }], key)).body.error.code).toBe("IDEMPOTENCY_KEY_REUSED");
    expect(await level("pen")).toEqual({ onHand: 10, reserved: 2, available: 8 });
    expect((await sys.api.post("/api/commerce/orders", { tenantId: tid, items: [{ sku: "pen", quantity: 1 }], address }, buyer.token)).body.error.code).toBe("IDEMPOTENCY_KEY_REQUIRED");
  });

  it("refuses what is not there, holding nothing", async () => {
    const tooMany = await order([{ sku: "ink", quantity: 99 }]);
    expect(tooMany.status).toBe(409);
    expect(tooMany.body.error.code).toBe("INSUFFICIENT_STOCK");
    expect((await order([{ sku: "nope", quantity: 1 }])).body.error.code).toBe("PRODUCT_NOT_FOUND");
    expect((await sys.api.post("/api/commerce/orders", { tenantId: tid, items: [], address }, buyer.token, randomUUID())).body.error.field).toBe("items");
    expect((await sys.api.post("/api/commerce/orders", { tenantId: "nowhere", items: [{ sku: "pen", quantity: 1 }], address }, buyer.token, randomUUID())).status).toBe(404);
    expect(await level("ink")).toEqual({ onHand: 5, reserved: 1, available: 4 });
  });

  it("shows orders to their buyer and the tenant's staff, to nobody else", async () => {
    const placed = (await order([{ sku: "pen", quantity: 1 }])).body;
    expect((await sys.api.get(`/api/commerce/orders/${placed.id}`, buyer.token)).body.id).toBe(placed.id);
    expect((await sys.api.get(`/api/commerce/orders/${placed.id}`, other.token)).status).toBe(404);
    expect((await sys.api.get(`/api/commerce/tenants/${tid}/orders/${placed.id}`, owner.token)).body.id).toBe(placed.id);
    expect((await sys.api.get(`/api/commerce/tenants/${tid}/orders/${placed.id}`, other.token)).status).toBe(404);
    expect((await sys.api.get(`/api/commerce/tenants/${rivalTid}/orders/${placed.id}`, other.token)).status).toBe(404);
    const mine = (await sys.api.get("/api/commerce/orders?limit=100", buyer.token)).body.items.map((o: { id: string }) => o.id);
    expect(mine).toContain(placed.id);
    expect((await sys.api.get("/api/commerce/orders", other.token)).body.items).toEqual([]);
    const pending = (await sys.api.get(`/api/commerce/tenants/${tid}/orders?status=PENDING_PAYMENT`, owner.token)).body.items;
    expect(pending.every((o: { status: string }) => o.status === "PENDING_PAYMENT")).toBe(true);
  });
});

describe("lifecycle", () => {
  it("gives the stock back when the buyer cancels", async () => {
    const placed = (await order([{ sku: "ink", quantity: 2 }])).body;
    await committed(placed.id);
    const before = await level("ink");
    const cancelled = await sys.api.post(`/api/commerce/orders/${placed.id}/cancel`, {}, buyer.token);
    expect(cancelled.body).toMatchObject({ status: "CANCELLED", cancelReason: "BUYER" });
    await eventually(async () => (await level("ink")).reserved === before.reserved - 2);
    expect((await sys.api.post(`/api/commerce/orders/${placed.id}/cancel`, {}, buyer.token)).body.error.code).toBe("ORDER_CANCELLED");
    expect((await sys.api.post(`/api/commerce/orders/${placed.id}/cancel`, {}, other.token)).status).toBe(404);
  });

  it("sells the stock once paid, then ships and completes; a paid order cannot be cancelled", async () => {
    const placed = (await order([{ sku: "pen", quantity: 3 }])).body;
    await committed(placed.id);
    const before = await level("pen");
    await pay(placed.id);
    await eventually(async () => (await level("pen")).onHand === before.onHand - 3);
    expect(await level("pen")).toMatchObject({ reserved: before.reserved - 3 });
    expect((await sys.api.post(`/api/commerce/orders/${placed.id}/cancel`, {}, buyer.token)).body.error.code).toBe("ORDER_PAID");
    expect((await sys.api.post(`/api/commerce/orders/${placed.id}/complete`, {}, buyer.token)).body.error.code).toBe("ORDER_PAID");
    expect((await sys.api.post(`/api/commerce/tenants/${tid}/orders/${placed.id}/ship`, {}, other.token)).status).toBe(404);
    expect((await sys.api.post(`/api/commerce/tenants/${tid}/orders/${placed.id}/ship`, {}, owner.token)).body.status).toBe("SHIPPED");
    expect((await sys.api.post(`/api/commerce/orders/${placed.id}/complete`, {}, buyer.token)).body.status).toBe("COMPLETED");
  });

  it("cancels an order left unpaid past the tenant's timeout and returns its stock", async () => {
    const placed = (await order([{ sku: "ink", quantity: 1 }])).body;
    await committed(placed.id);
    expect((await level("ink")).reserved).toBeGreaterThan(0);
    sys.clock.advance(599_000);
    expect(await sys.call("order.tick")).toBe(0);
    sys.clock.advance(2_000);
    expect(await sys.call("order.tick")).toBeGreaterThanOrEqual(1);
    expect((await sys.api.get(`/api/commerce/orders/${placed.id}`, buyer.token)).body).toMatchObject({ status: "CANCELLED", cancelReason: "PAYMENT_TIMEOUT" });
    // Every order of this suite still unpaid is past the deadline now: nothing of ink stays held.
    await eventually(async () => (await level("ink")).reserved === 0);
    expect((await sys.api.post(`/api/commerce/orders/${placed.id}/payments`, {}, buyer.token)).body.error.code).toBe("ORDER_CANCELLED");
  });

  it("holds the tenant's orders-per-day quota, returning the hold of a refused order", async () => {
    const before = await level("pen");
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push((await order([{ sku: "pen", quantity: 1 }])).status);
    expect(answers.filter((s) => s === 429).length).toBeGreaterThan(0);
    const refused = await order([{ sku: "pen", quantity: 1 }]);
    expect(refused.body.error.code).toBe("TENANT_QUOTA_EXCEEDED");
    const accepted = answers.filter((s) => s === 201).length;
    await eventually(async () => (await level("pen")).reserved === before.reserved + accepted);
  });
});
