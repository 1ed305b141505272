import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestSystem, type TestSystem } from "./support/harness";

/**
 * Tenant isolation across the API: every tenant-scoped read the gateway publishes (found in the
 * OpenAPI document, so a new endpoint is covered the day it appears), asked by another tenant's staff
 * or by a stranger, answers 404 — and so do another tenant's ids under one's own tenant.
 */
let sys: TestSystem;
type User = { token: string; id: number; username: string };
const shops: { tid: string; owner: User; sku: string; orderId: string }[] = [];
let buyer: User;
let stranger: User;
const address = { name: "Ann", line1: "1 Main St", city: "Springfield", postcode: "12345", country: "US" };

beforeAll(async () => {
  sys = await startTestSystem({ services: ["gateway", "identity", "tenant", "permission", "inventory", "order", "tx", "payment", "callback", "sandbox"] });
  [buyer, stranger] = [await sys.user(), await sys.user()];
  for (const name of ["A", "B"]) {
    const owner = await sys.user();
    const tid = (await sys.api.post("/api/commerce/tenants", { name, ownerId: owner.id }, sys.admin.token)).body.id;
    const sku = `only-${name.toLowerCase()}`;
    await sys.api.post(`/api/commerce/tenants/${tid}/products`, { sku, name: sku, price: 100 }, owner.token);
    await sys.api.put(`/api/commerce/tenants/${tid}/stock/${sku}`, { quantity: 10 }, owner.token);
    const order = await sys.api.post("/api/commerce/orders", { tenantId: tid, items: [{ sku, quantity: 1 }], address }, buyer.token, randomUUID());
    shops.push({ tid, owner, sku, orderId: order.body.id });
  }
});
afterAll(() => sys?.stop());

/** The tenant-scoped GET paths the gateway serves, with `{param}` placeholders. */
async function tenantReads(): Promise<string[]> {
  const doc = (await sys.api.get("/api/openapi.json")).body as { paths: Record<string, Record<string, unknown>> };
  return Object.entries(doc.paths)
    .filter(([path, ops]) => path.includes("{tid}") && "get" in ops)
    .map(([path]) => path);
}

const fill = (path: string, values: Record<string, string>) => path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(values[name] ?? "x"));

describe("tenant isolation", () => {
  it("covers every tenant-scoped read", async () => {
    const reads = await tenantReads();
    expect(reads.length).toBeGreaterThanOrEqual(6);
    for (const path of reads) {
      const [a, b] = shops;
      const ofA = { tid: a.tid, sku: a.sku, id: a.orderId, userId: String(a.owner.id) };
      // Its own staff reach it (the route exists and answers for them).
      const own = await sys.api.get(fill(path, ofA), a.owner.token);
      expect(own.status, `${path} for its own staff: ${JSON.stringify(own.body)}`).toBe(200);
      // Another tenant's staff and a stranger get what a missing tenant gets.
      for (const who of [b.owner, stranger]) {
        const res = await sys.api.get(fill(path, ofA), who.token);
        expect(res.status, `${path} for another tenant's staff or a stranger`).toBe(404);
        expect(res.body.error.code).toBe("TENANT_NOT_FOUND");
      }
      // A's ids under B's own tenant are not found either.
      if (path.includes("{sku}") || path.includes("{id}")) {
        const crossed = await sys.api.get(fill(path, { ...ofA, tid: b.tid }), b.owner.token);
        expect(crossed.status, `${path} with another tenant's id`).toBe(404);
      }
    }
  });

  it("keeps writes out too", async () => {
    const [a, b] = shops;
    const attempts = [
      sys.api.post(`/api/commerce/tenants/${a.tid}/products`, { sku: "intruder", name: "x", price: 1 }, b.owner.token),
      sys.api.put(`/api/commerce/tenants/${a.tid}/stock/${a.sku}`, { quantity: 0 }, b.owner.token),
      sys.api.post(`/api/commerce/tenants/${a.tid}/members`, { userId: b.owner.id, role: "OWNER" }, b.owner.token),
      sys.api.post(`/api/commerce/tenants/${a.tid}/orders/${a.orderId}/ship`, {}, b.owner.token),
      sys.api.post(`/api/commerce/tenants/${b.tid}/orders/${a.orderId}/ship`, {}, b.owner.token),
    ];
    for (const res of await Promise.all(attempts)) expect(res.status).toBe(404);
    expect((await sys.api.get(`/api/commerce/tenants/${a.tid}/products/${a.sku}`, a.owner.token)).body.stock.onHand).toBe(10);
  });

  it("keeps buyers to their own orders and payments", async () => {
    const [a] = shops;
    expect((await sys.api.get(`/api/commerce/orders/${a.orderId}`, stranger.token)).status).toBe(404);
    expect((await sys.api.post(`/api/commerce/orders/${a.orderId}/cancel`, {}, stranger.token)).status).toBe(404);
    expect((await sys.api.post(`/api/commerce/orders/${a.orderId}/payments`, {}, stranger.token)).status).toBe(404);
    expect((await sys.api.get("/api/commerce/orders", stranger.token)).body.items).toEqual([]);
  });
});
