import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startTestSystem, type TestSystem } from "../../../../test/support/harness";
import { sign } from "../sandbox/sandbox.domain";

let sys: TestSystem;
type User = { token: string; id: number; username: string };
let owner: User;
let buyer: User;
let tid: string;
const address = { name: "Ann", line1: "1 Main St", city: "Springfield", postcode: "12345", country: "US" };

beforeAll(async () => {
  sys = await startTestSystem({ services: ["gateway", "identity", "tenant", "permission", "inventory", "order", "tx", "payment", "callback", "sandbox"] });
  [owner, buyer] = [await sys.user(), await sys.user()];
  tid = (await sys.api.post("/api/commerce/tenants", { name: "Pens", ownerId: owner.id }, sys.admin.token)).body.id;
  await sys.api.post(`/api/commerce/tenants/${tid}/products`, { sku: "pen", name: "Pen", price: 150 }, owner.token);
  await sys.api.put(`/api/commerce/tenants/${tid}/stock/pen`, { quantity: 100 }, owner.token);
});
afterAll(() => sys?.stop());

async function placed(quantity = 1, sku = "pen") {
  const res = await sys.api.post("/api/commerce/orders", { tenantId: tid, items: [{ sku, quantity }], address }, buyer.token, randomUUID());
  expect(res.status).toBe(201);
  return res.body as { id: string; total: number };
}
const orderStatus = async (id: string) => (await sys.api.get(`/api/commerce/orders/${id}`, buyer.token)).body.status;
const checkout = async (paymentId: string) => (await sys.api.get(`/api/payments/sandbox/${paymentId}`)).body;

/** Posts a notification to our callback as the provider would, signed unless told otherwise. */
function notify(body: object, options: { secret?: string; timestamp?: number; raw?: string } = {}) {
  const raw = options.raw ?? JSON.stringify(body);
  const ts = String(Math.floor((options.timestamp ?? sys.clock.now()) / 1000));
  return sys.api.request("POST", "/api/payments/callback/sandbox", {
    body: raw,
    headers: { "x-sandbox-timestamp": ts, "x-sandbox-signature": sign(options.secret ?? sys.config.sandboxSecret, ts, raw) },
  });
}

describe("paying an order", () => {
  it("opens one checkout per order; the provider's failure leaves it payable, its success marks it paid and sells the stock", async () => {
    const order = await placed(2);
    const first = await sys.api.post(`/api/commerce/orders/${order.id}/payments`, {}, buyer.token);
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ orderId: order.id, amount: 300, status: "CREATED" });
    expect(first.body.payUrl).toContain(`/api/payments/sandbox/${first.body.paymentId}`);
    expect((await sys.api.post(`/api/commerce/orders/${order.id}/payments`, {}, buyer.token)).body.paymentId).toBe(first.body.paymentId);
    const stranger = await sys.user();
    expect((await sys.api.post(`/api/commerce/orders/${order.id}/payments`, {}, stranger.token)).status).toBe(404);

    await sys.api.post(`/api/payments/sandbox/${first.body.paymentId}/complete`, { outcome: "FAIL" });
    await eventually(async () => (await checkout(first.body.paymentId)).notifications.every((n: { delivered: boolean }) => n.delivered));
    expect(await orderStatus(order.id)).toBe("PENDING_PAYMENT");

    await sys.api.post(`/api/payments/sandbox/${first.body.paymentId}/complete`, { outcome: "SUCCESS" });
    await eventually(async () => (await orderStatus(order.id)) === "PAID");
    expect((await sys.api.post(`/api/payments/sandbox/${first.body.paymentId}/complete`, { outcome: "SUCCESS" })).body.error.code).toBe("CHECKOUT_PAID");
    expect((await sys.api.post(`/api/commerce/orders/${order.id}/payments`, {}, buyer.token)).body.error.code).toBe("ORDER_PAID");
    await eventually(async () => (await sys.api.get(`/api/commerce/tenants/${tid}/products/pen`, owner.token)).body.stock.onHand === 98);
  });
});

describe("the callback endpoint", () => {
  async function payment() {
    const order = await placed();
    const p = (await sys.api.post(`/api/commerce/orders/${order.id}/payments`, {}, buyer.token)).body;
    const c = await checkout(p.paymentId);
    return { order, paymentId: p.paymentId as string, providerTxId: c.providerTxId as string, amount: p.amount as number };
  }
  const body = (p: { paymentId: string; providerTxId: string; amount: number }, extra: object = {}) => ({
    notificationId: `ntf-${randomUUID()}`,
    paymentId: p.paymentId,
    providerTxId: p.providerTxId,
    status: "SUCCEEDED",
    amount: p.amount,
    sequence: 1,
    ...extra,
  });

  it("refuses unsigned, wrongly signed and stale notifications, changing nothing", async () => {
    const p = await payment();
    const unsigned = await sys.api.request("POST", "/api/payments/callback/sandbox", { body: body(p) });
    expect(unsigned.status).toBe(401);
    expect(unsigned.body.error.code).toBe("SIGNATURE_MISSING");
    expect((await notify(body(p), { secret: "forged" })).body.error.code).toBe("SIGNATURE_INVALID");
    expect((await notify(body(p), { timestamp: sys.clock.now() - 600_000 })).body.error.code).toBe("TIMESTAMP_STALE");
    expect((await notify({}, { raw: '{"notificationId":"x"}' })).status).toBe(400);
    expect(await orderStatus(p.order.id)).toBe("PENDING_PAYMENT");
  });

  it("applies a notification once however often it comes, and ignores late or out-of-order ones", async () => {
    const p = await payment();
    const success = body(p, { sequence: 2 });
    expect((await notify(success)).body).toEqual({ ack: true, code: "APPLIED" });
    expect((await notify(success)).body).toEqual({ ack: true, duplicate: true, code: "APPLIED" });
    await eventually(async () => (await orderStatus(p.order.id)) === "PAID");
    expect((await notify(body(p, { status: "FAILED", sequence: 3 }))).body).toEqual({ ack: true, code: "ALREADY_SUCCEEDED" });
    const q = await payment();
    expect((await notify(body(q, { status: "FAILED", sequence: 2 }))).body.code).toBe("APPLIED");
    expect((await notify(body(q, { status: "SUCCEEDED", sequence: 1 }))).body.code).toBe("STALE_NOTIFICATION");
    expect((await notify(body(q, { amount: 1, sequence: 5 }))).body.code).toBe("AMOUNT_MISMATCH");
    expect(await orderStatus(q.order.id)).toBe("PENDING_PAYMENT");
  });

  it("acknowledges a notification for a payment it does not know, with a code", async () => {
    const res = await notify({ notificationId: `ntf-${randomUUID()}`, paymentId: "pay_unknown", providerTxId: "sbx_x", status: "SUCCEEDED", amount: 5, sequence: 1 });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ack: true, code: "UNKNOWN_PAYMENT" });
  });
});

describe("the sandbox provider", () => {
  it("retries a notification nobody acknowledges, backing off", async () => {
    const paymentId = `pay-${randomUUID()}`;
    await sys.call("sandbox.createCheckout", { paymentId, amount: 10, notifyUrl: "http://127.0.0.1:9/nowhere" });
    await sys.api.post(`/api/payments/sandbox/${paymentId}/complete`, { outcome: "SUCCESS" });
    await eventually(async () => (await checkout(paymentId)).notifications[0].attempts >= 1);
    const [first] = (await checkout(paymentId)).notifications;
    expect(first).toMatchObject({ delivered: false, attempts: 1 });
    expect(first.lastError).toBeTruthy();
    sys.clock.advance(999);
    await sys.call("sandbox.tick");
    expect((await checkout(paymentId)).notifications[0].attempts).toBe(1);
    sys.clock.advance(1);
    await sys.call("sandbox.tick");
    expect((await checkout(paymentId)).notifications[0].attempts).toBe(2);
  });
});

describe("refunds", () => {
  /** Each test stocks its own product: another test's sale settling late cannot move these counts. */
  async function stocked(sku: string) {
    await sys.api.post(`/api/commerce/tenants/${tid}/products`, { sku, name: sku, price: 150 }, owner.token);
    await sys.api.put(`/api/commerce/tenants/${tid}/stock/${sku}`, { quantity: 100 }, owner.token);
  }
  async function paidOrder(sku: string, quantity: number) {
    const order = await placed(quantity, sku);
    const p = (await sys.api.post(`/api/commerce/orders/${order.id}/payments`, {}, buyer.token)).body;
    await sys.api.post(`/api/payments/sandbox/${p.paymentId}/complete`, { outcome: "SUCCESS" });
    await eventually(async () => (await orderStatus(order.id)) === "PAID");
    return { order, paymentId: p.paymentId as string };
  }
  const onHand = async (sku: string) => (await sys.api.get(`/api/commerce/tenants/${tid}/products/${sku}`, owner.token)).body.stock.onHand as number;
  const latestMove = async (sku: string) => (await sys.api.get(`/api/commerce/tenants/${tid}/stock/${sku}/movements?limit=1`, owner.token)).body.items[0].kind as string;
  const refund = (id: string, who: User = owner) => sys.api.post(`/api/commerce/tenants/${tid}/orders/${id}/refund`, { reason: "damaged" }, who.token);

  it("return the money through the provider, and the goods to the shelf when they had not left", async () => {
    await stocked("pen-returned");
    const { order, paymentId } = await paidOrder("pen-returned", 3);
    await eventually(async () => (await checkout(paymentId)).status === "SUCCEEDED");
    await eventually(async () => (await latestMove("pen-returned")) === "SELL");
    expect(await onHand("pen-returned")).toBe(97);
    expect((await refund(order.id, buyer)).status).toBe(404);
    const refunded = await refund(order.id);
    expect(refunded.body.status).toBe("REFUNDED");
    await eventually(async () => (await checkout(paymentId)).status === "REFUNDED");
    await eventually(async () => (await onHand("pen-returned")) === 100);
    expect((await refund(order.id)).body.error.code).toBe("ORDER_REFUNDED");
  });

  it("do not restock what was shipped, and refuse an unpaid order", async () => {
    await stocked("pen-shipped");
    const { order, paymentId } = await paidOrder("pen-shipped", 1);
    await sys.api.post(`/api/commerce/tenants/${tid}/orders/${order.id}/ship`, {}, owner.token);
    await eventually(async () => (await latestMove("pen-shipped")) === "SELL");
    expect((await refund(order.id)).body.status).toBe("REFUNDED");
    await eventually(async () => (await checkout(paymentId)).status === "REFUNDED");
    expect(await onHand("pen-shipped")).toBe(99);
    const unpaid = await placed(1, "pen-shipped");
    expect((await refund(unpaid.id)).body.error.code).toBe("ORDER_PENDING_PAYMENT");
  });
});

describe("a payment that comes too late", () => {
  it("is refunded when its order was cancelled meanwhile", async () => {
    const order = await placed(1);
    const p = (await sys.api.post(`/api/commerce/orders/${order.id}/payments`, {}, buyer.token)).body;
    await sys.api.post(`/api/commerce/orders/${order.id}/cancel`, {}, buyer.token);
    await sys.api.post(`/api/payments/sandbox/${p.paymentId}/complete`, { outcome: "SUCCESS" });
    await eventually(async () => (await checkout(p.paymentId)).status === "REFUNDED");
    expect(await orderStatus(order.id)).toBe("CANCELLED");
  });
});

describe("a node that cannot be reached by the provider", () => {
  it("refuses to open a checkout, saying what to configure, and opens it once it can", async () => {
    const order = await placed(1);
    const endpoint = sys.node.platform.endpoint;
    const url = endpoint.url;
    endpoint.url = undefined;
    try {
      const refused = await sys.api.post(`/api/commerce/orders/${order.id}/payments`, {}, buyer.token);
      expect(refused.status).toBe(503);
      expect(refused.body.error.code).toBe("PAYMENTS_NOT_CONFIGURED");
    } finally {
      endpoint.url = url;
    }
    expect((await sys.api.post(`/api/commerce/orders/${order.id}/payments`, {}, buyer.token)).status).toBe(201);
  });
});
