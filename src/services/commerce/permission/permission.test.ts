import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startTestSystem, type TestSystem } from "../../../../test/support/harness";

let sys: TestSystem;
type User = { token: string; id: number; username: string };
let owner: User;
let clerk: User;
let buyer: User;
let stranger: User;
let tid: string;
const address = { name: "Ann", line1: "1 Main St", city: "Springfield", postcode: "12345", country: "US" };
const roles = (path = "") => `/api/commerce/tenants/${tid}/roles${path}`;

beforeAll(async () => {
  sys = await startTestSystem({ services: ["gateway", "identity", "tenant", "permission", "inventory", "order", "tx", "payment", "callback", "sandbox"] });
  [owner, clerk, buyer, stranger] = [await sys.user(), await sys.user(), await sys.user(), await sys.user()];
  tid = (await sys.api.post("/api/commerce/tenants", { name: "Pens", ownerId: owner.id }, sys.admin.token)).body.id;
  await sys.api.post(`/api/commerce/tenants/${tid}/members`, { userId: clerk.id, role: "STAFF" }, owner.token);
  await sys.api.post(`/api/commerce/tenants/${tid}/products`, { sku: "pen", name: "Pen", price: 100 }, owner.token);
  await sys.api.put(`/api/commerce/tenants/${tid}/stock/pen`, { quantity: 10 }, owner.token);
});
afterAll(() => sys?.stop());

describe("tenant roles", () => {
  it("gives owners everything and staff the shop floor, and says so", async () => {
    expect((await sys.api.get(`/api/commerce/tenants/${tid}/permissions/me`, owner.token)).body).toEqual({ role: "OWNER", permissions: ["*:*"] });
    const mine = (await sys.api.get(`/api/commerce/tenants/${tid}/permissions/me`, clerk.token)).body;
    expect(mine.role).toBe("STAFF");
    expect(mine.permissions).toContain("orders:*");
    expect(mine.permissions).not.toContain("roles:write");
    const listed = (await sys.api.get(roles(), clerk.token)).body;
    expect(listed.map((r: { name: string }) => r.name)).toEqual(["OWNER", "STAFF"]);
    const denied = await sys.api.put(roles("/viewer"), { permissions: ["products:read"] }, clerk.token);
    expect(denied.status).toBe(403);
    expect(denied.body.error).toMatchObject({ code: "PERMISSION_DENIED", message: expect.stringContaining("roles:write") });
    expect((await sys.api.get(roles(), stranger.token)).status).toBe(404);
    expect((await sys.api.get(`/api/commerce/tenants/${tid}/permissions/me`, stranger.token)).status).toBe(404);
    expect((await sys.api.get(`/api/commerce/tenants/${tid}/permissions/me`, sys.admin.token)).body.permissions).toEqual(["*:*"]);
  });

  it("creates a role once when two requests create it at the same moment: one creates, the other updates", async () => {
    // A tenant of its own: this test's audit entries stay out of the others'.
    const boss = await sys.user();
    const shop = (await sys.api.post("/api/commerce/tenants", { name: "Twins", ownerId: boss.id }, sys.admin.token)).body.id;
    const role = (name: string) => `/api/commerce/tenants/${shop}/roles/${name}`;
    for (let i = 0; i < 10; i++) {
      const name = `twin${i}`;
      const [a, b] = await Promise.all([
        sys.api.put(role(name), { permissions: ["products:read"] }, boss.token),
        sys.api.put(role(name), { permissions: ["orders:read"] }, boss.token),
      ]);
      expect([a.status, b.status]).toEqual([200, 200]);
      const stored = (await sys.api.get(`/api/commerce/tenants/${shop}/roles`, boss.token)).body.find((r: { name: string }) => r.name === name);
      expect([["products:read"], ["orders:read"]]).toContainEqual(stored.permissions);
      const audit = (await sys.api.get(`/api/commerce/tenants/${shop}/permissions/audit`, boss.token)).body.items.filter((e: { subject: string }) => e.subject === `role:${name}`);
      expect(audit.map((e: { action: string }) => e.action).sort()).toEqual(["role.create", "role.update"]);
    }
  });

  it("refuses roles that make no sense, changing nothing", async () => {
    const bad = await sys.api.put(roles("/viewer"), { permissions: ["products:fly"] }, owner.token);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: "INVALID_PERMISSION", field: "permissions" });
    expect((await sys.api.put(roles("/viewer"), { permissions: ["nothing:read"] }, owner.token)).body.error.code).toBe("INVALID_PERMISSION");
    expect((await sys.api.put(roles("/viewer"), { permissions: ["products"] }, owner.token)).body.error.code).toBe("INVALID_PERMISSION");
    expect((await sys.api.put(roles("/STAFF"), { permissions: ["products:read"] }, owner.token)).body.error.code).toBe("ROLE_BUILT_IN");
    expect((await sys.api.put(roles("/1bad"), { permissions: ["products:read"] }, owner.token)).body.error.field).toBe("name");
    expect((await sys.api.delete(roles("/OWNER"), owner.token)).body.error.code).toBe("ROLE_BUILT_IN");
    expect((await sys.api.delete(roles("/ghost"), owner.token)).status).toBe(404);
    expect((await sys.api.put(`/api/commerce/tenants/${tid}/members/${clerk.id}/roles`, { roles: ["ghost"] }, owner.token)).body.error.code).toBe("ROLE_NOT_FOUND");
    expect((await sys.api.put(`/api/commerce/tenants/${tid}/members/${clerk.id}/roles`, { roles: ["OWNER"] }, owner.token)).body.error.code).toBe("ROLE_NOT_ASSIGNABLE");
    expect((await sys.api.put(`/api/commerce/tenants/${tid}/members/${stranger.id}/roles`, { roles: ["STAFF"] }, owner.token)).body.error.code).toBe("MEMBER_NOT_FOUND");
    expect((await sys.api.get(roles(), owner.token)).body).toHaveLength(2);
  });

  it("narrows a staff member to a custom role, enforced at the gateway and again in the service for refunds", async () => {
    expect((await sys.api.put(roles("/viewer"), { permissions: ["products:read", "orders:read", "products:read"] }, owner.token)).body).toEqual({
      name: "viewer",
      builtIn: false,
      permissions: ["orders:read", "products:read"],
    });
    expect((await sys.api.put(`/api/commerce/tenants/${tid}/members/${clerk.id}/roles`, { roles: ["viewer"] }, owner.token)).body).toEqual({ userId: clerk.id, roles: ["viewer"] });
    expect((await sys.api.get(`/api/commerce/tenants/${tid}/products/pen`, clerk.token)).status).toBe(200);
    const write = await sys.api.put(`/api/commerce/tenants/${tid}/stock/pen`, { quantity: 99 }, clerk.token);
    expect(write.status).toBe(403);
    expect(write.body.error.message).toContain("stock:write");
    expect((await sys.api.get(`/api/commerce/tenants/${tid}/products/pen`, owner.token)).body.stock.onHand).toBe(10);

    // A paid order; the narrowed clerk cannot refund it, even calling the service directly.
    const order = (await sys.api.post("/api/commerce/orders", { tenantId: tid, items: [{ sku: "pen", quantity: 1 }], address }, buyer.token, randomUUID())).body;
    const payment = (await sys.api.post(`/api/commerce/orders/${order.id}/payments`, {}, buyer.token)).body;
    await sys.api.post(`/api/payments/sandbox/${payment.paymentId}/complete`, { outcome: "SUCCESS" });
    await eventually(async () => (await sys.api.get(`/api/commerce/orders/${order.id}`, buyer.token)).body.status === "PAID");
    expect((await sys.api.post(`/api/commerce/tenants/${tid}/orders/${order.id}/refund`, { reason: "x" }, clerk.token)).status).toBe(403);
    await expect(sys.call("order.refund", { tid, id: order.id, reason: "x" }, { user: { id: clerk.id, username: clerk.username, roles: ["user"] } })).rejects.toMatchObject({
      type: "PERMISSION_DENIED",
    });
    expect((await sys.api.get(`/api/commerce/orders/${order.id}`, buyer.token)).body.status).toBe("PAID");

    // The role goes: the clerk is plain STAFF again, and may refund.
    await sys.api.delete(roles("/viewer"), owner.token);
    expect((await sys.api.post(`/api/commerce/tenants/${tid}/orders/${order.id}/refund`, { reason: "damaged" }, clerk.token)).body.status).toBe("REFUNDED");
  });

  it("follows membership at once, and keeps an audit of every change", async () => {
    const promoted = await sys.user();
    await sys.api.post(`/api/commerce/tenants/${tid}/members`, { userId: promoted.id, role: "STAFF" }, owner.token);
    expect((await sys.api.put(roles("/viewer2"), { permissions: ["products:read"] }, promoted.token)).status).toBe(403);
    await sys.api.post(`/api/commerce/tenants/${tid}/members`, { userId: promoted.id, role: "OWNER" }, owner.token);
    expect((await sys.api.put(roles("/viewer2"), { permissions: ["products:read"] }, promoted.token)).status).toBe(200);
    await sys.api.delete(`/api/commerce/tenants/${tid}/members/${promoted.id}`, owner.token);
    expect((await sys.api.get(roles(), promoted.token)).status).toBe(404);

    const audit = (await sys.api.get(`/api/commerce/tenants/${tid}/permissions/audit?limit=3`, owner.token)).body;
    expect(audit.items.map((a: { action: string; subject: string }) => `${a.action} ${a.subject}`)).toEqual(["role.create role:viewer2", "role.delete role:viewer", "member.roles user:" + clerk.id]);
    expect(audit.items[0]).toMatchObject({ actorId: promoted.id, detail: { before: null, after: ["products:read"] } });
    expect(audit.items[1].detail).toEqual({ permissions: ["orders:read", "products:read"], heldBy: [clerk.id] });
    const rest = (await sys.api.get(`/api/commerce/tenants/${tid}/permissions/audit?cursor=${audit.nextCursor}`, owner.token)).body;
    expect(rest.items.map((a: { action: string }) => a.action)).toEqual(["role.create"]);
    expect(rest.nextCursor).toBeNull();
  });
});
