import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestSystem, type TestSystem } from "../../../../test/support/harness";

let sys: TestSystem;
type Member = { token: string; id: number; username: string };
let owner: Member;
let staff: Member;
let stranger: Member;
let tenantA: string;
let tenantB: string;

beforeAll(async () => {
  sys = await startTestSystem({ services: ["gateway", "identity", "tenant"] });
  [owner, staff, stranger] = [await sys.user(), await sys.user(), await sys.user()];
  tenantA = (await sys.api.post("/api/commerce/tenants", { name: "Shop A", ownerId: owner.id, quotas: { maxUsers: 2 } }, sys.admin.token)).body.id;
  tenantB = (await sys.api.post("/api/commerce/tenants", { name: "Shop B", ownerId: stranger.id }, sys.admin.token)).body.id;
});
afterAll(() => sys?.stop());

describe("tenants", () => {
  it("are created by administrators only, with quotas merged over the defaults", async () => {
    const res = await sys.api.post("/api/commerce/tenants", { name: "Shop C", quotas: { maxProducts: 5 } }, sys.admin.token);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name: "Shop C", status: "ACTIVE", quotas: { maxProducts: 5, maxUsers: 20 } });
    expect((await sys.api.post("/api/commerce/tenants", { name: "Mine" }, owner.token)).status).toBe(403);
    const bad = await sys.api.post("/api/commerce/tenants", { name: "", quotas: { maxUsers: 0 } }, sys.admin.token);
    expect(bad.body.error).toMatchObject({ code: "VALIDATION_FAILED", field: "name" });
    const list = await sys.api.get("/api/commerce/tenants?limit=2", sys.admin.token);
    expect(list.body.items).toHaveLength(2);
    expect(list.body.nextCursor).toBeTruthy();
  });

  it("show themselves to members and administrators; to anyone else they do not exist", async () => {
    expect((await sys.api.get(`/api/commerce/tenants/${tenantA}`, owner.token)).body).toMatchObject({ id: tenantA, role: "OWNER" });
    expect((await sys.api.get(`/api/commerce/tenants/${tenantA}`, sys.admin.token)).body).toMatchObject({ id: tenantA, role: null });
    const hidden = await sys.api.get(`/api/commerce/tenants/${tenantB}`, owner.token);
    const absent = await sys.api.get("/api/commerce/tenants/no-such-tenant", owner.token);
    expect(hidden.status).toBe(404);
    expect(hidden.body.error.code).toBe(absent.body.error.code);
    expect((await sys.api.get(`/api/commerce/tenants/${tenantB}/members`, owner.token)).status).toBe(404);
    expect((await sys.api.post(`/api/commerce/tenants/${tenantB}/members`, { userId: owner.id, role: "OWNER" }, owner.token)).status).toBe(404);
    // Each tenant's traffic is counted under its id, for its dashboard: A's reads ok, B's probes refused.
    const metrics = await (await fetch(`${sys.node.url}/metrics`)).text();
    expect(Number(metrics.match(new RegExp(`bazaar_tenant_requests_total\\{tenant="${tenantA}",outcome="ok"\\} (\\d+)`))?.[1])).toBeGreaterThanOrEqual(2);
    expect(Number(metrics.match(new RegExp(`bazaar_tenant_requests_total\\{tenant="${tenantB}",outcome="refused"\\} (\\d+)`))?.[1])).toBeGreaterThanOrEqual(3);
  });

  it("take members from their owners, within the user quota; staff cannot manage", async () => {
    const added = await sys.api.post(`/api/commerce/tenants/${tenantA}/members`, { userId: staff.id, role: "STAFF" }, owner.token);
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ userId: staff.id, role: "STAFF" });
    const members = (await sys.api.get(`/api/commerce/tenants/${tenantA}/members`, staff.token)).body;
    expect(members.map((m: { userId: number }) => m.userId)).toEqual([owner.id, staff.id]);
    const third = await sys.user();
    const over = await sys.api.post(`/api/commerce/tenants/${tenantA}/members`, { userId: third.id, role: "STAFF" }, owner.token);
    expect(over.status).toBe(429);
    expect(over.body.error.code).toBe("TENANT_QUOTA_EXCEEDED");
    expect((await sys.api.post(`/api/commerce/tenants/${tenantA}/members`, { userId: third.id, role: "STAFF" }, staff.token)).body.error.code).toBe("TENANT_OWNER_ONLY");
    // Changing a member's role takes no new place.
    expect((await sys.api.post(`/api/commerce/tenants/${tenantA}/members`, { userId: staff.id, role: "OWNER" }, owner.token)).body.role).toBe("OWNER");
  });

  it("keep one owner at least, and answer other services' access questions", async () => {
    expect((await sys.api.request("DELETE", `/api/commerce/tenants/${tenantB}/members/${stranger.id}`, { token: stranger.token })).body.error.code).toBe("LAST_OWNER");
    expect(await sys.call("tenant.access", { tid: tenantA, userId: staff.id })).toMatchObject({ tenant: { id: tenantA }, role: "OWNER" });
    await expect(sys.call("tenant.access", { tid: tenantB, userId: staff.id })).rejects.toMatchObject({ code: 404, type: "TENANT_NOT_FOUND" });
    expect(await sys.call("tenant.access", { tid: tenantB, userId: staff.id, admin: true })).toMatchObject({ role: null });
  });

  it("freeze a suspended tenant's changes but not its reads", async () => {
    const suspended = await sys.api.put(`/api/commerce/tenants/${tenantB}/status`, { status: "SUSPENDED", reason: "unpaid fees" }, sys.admin.token);
    expect(suspended.body.status).toBe("SUSPENDED");
    expect((await sys.api.get(`/api/commerce/tenants/${tenantB}`, stranger.token)).status).toBe(200);
    const blocked = await sys.api.post(`/api/commerce/tenants/${tenantB}/members`, { userId: staff.id, role: "STAFF" }, stranger.token);
    expect(blocked.body.error.code).toBe("TENANT_SUSPENDED");
    await expect(sys.call("tenant.access", { tid: tenantB, userId: stranger.id, writing: true })).rejects.toMatchObject({ type: "TENANT_SUSPENDED" });
    const quotas = await sys.api.put(`/api/commerce/tenants/${tenantB}/quotas`, { quotas: { maxUsers: 3 } }, sys.admin.token);
    expect(quotas.body.quotas.maxUsers).toBe(3);
    expect((await sys.api.put(`/api/commerce/tenants/${tenantB}/status`, { status: "ACTIVE", reason: "paid" }, sys.admin.token)).body.status).toBe("ACTIVE");
  });
});
