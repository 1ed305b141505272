import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startTestSystem, type TestSystem } from "../../../../test/support/harness";

let sys: TestSystem;
type User = { token: string; id: number; username: string };
let owner: User;
let rival: User;
let tid: string;
let other: string;

beforeAll(async () => {
  sys = await startTestSystem({ services: ["gateway", "identity", "tenant", "permission", "inventory", "tx"] });
  [owner, rival] = [await sys.user(), await sys.user()];
  tid = (await sys.api.post("/api/commerce/tenants", { name: "Pens", ownerId: owner.id, quotas: { maxProducts: 4 } }, sys.admin.token)).body.id;
  other = (await sys.api.post("/api/commerce/tenants", { name: "Rival", ownerId: rival.id }, sys.admin.token)).body.id;
});
afterAll(() => sys?.stop());

const product = (sku: string, price = 150) => sys.api.post(`/api/commerce/tenants/${tid}/products`, { sku, name: `Pen ${sku}`, price }, owner.token);
const stock = (sku: string, quantity: number, warehouse?: string) =>
  sys.api.put(`/api/commerce/tenants/${tid}/stock/${sku}`, warehouse ? { quantity, warehouse } : { quantity }, owner.token);
const level = async (sku: string) => (await sys.api.get(`/api/commerce/tenants/${tid}/products/${sku}`, owner.token)).body.stock;
const branch = (gid: string, op: string) => ({ tx: { gid, branchId: "01", op } });

describe("catalogue and stock", () => {
  it("takes products from staff, refuses duplicates, bad input and strangers, within the quota", async () => {
    const created = await product("blue");
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ sku: "blue", price: 150, stock: { onHand: 0, reserved: 0, available: 0 } });
    expect((await product("blue")).body.error.code).toBe("SKU_EXISTS");
    expect((await sys.api.post(`/api/commerce/tenants/${tid}/products`, { sku: "a b", name: "x", price: 1 }, owner.token)).body.error.field).toBe("sku");
    expect((await sys.api.post(`/api/commerce/tenants/${tid}/products`, { sku: "neg", name: "x", price: -1 }, owner.token)).body.error.field).toBe("price");
    expect((await sys.api.post(`/api/commerce/tenants/${tid}/products`, { sku: "x", name: "x", price: 1 }, rival.token)).status).toBe(404);
    expect((await sys.api.get(`/api/commerce/tenants/${tid}/products/blue`, rival.token)).status).toBe(404);
    for (const sku of ["red", "green", "black"]) expect((await product(sku)).status).toBe(201);
    const over = await product("white");
    expect(over.status).toBe(429);
    expect(over.body.error.code).toBe("TENANT_QUOTA_EXCEEDED");
    const page = await sys.api.get(`/api/commerce/tenants/${tid}/products?limit=3`, owner.token);
    expect(page.body.items.map((p: { sku: string }) => p.sku)).toEqual(["black", "blue", "green"]);
    expect((await sys.api.get(`/api/commerce/tenants/${tid}/products?cursor=${page.body.nextCursor}`, owner.token)).body.items.map((p: { sku: string }) => p.sku)).toEqual(["red"]);
  });

  it("counts stock per warehouse and keeps every movement", async () => {
    expect((await stock("blue", 10)).body.stock).toEqual({ onHand: 10, reserved: 0, available: 10 });
    expect((await stock("blue", 5, "east")).body.warehouses.map((w: { warehouse: string }) => w.warehouse)).toEqual(["east", "main"]);
    expect(await level("blue")).toEqual({ onHand: 15, reserved: 0, available: 15 });
    expect((await stock("nothing", 1)).body.error.code).toBe("PRODUCT_NOT_FOUND");
    expect((await sys.api.put(`/api/commerce/tenants/${tid}/stock/blue`, { quantity: -1 }, owner.token)).body.error.field).toBe("quantity");
    const moves = (await sys.api.get(`/api/commerce/tenants/${tid}/stock/blue/movements`, owner.token)).body.items;
    expect(moves.map((m: { kind: string; warehouse: string; onHandAfter: number }) => [m.kind, m.warehouse, m.onHandAfter])).toEqual([
      ["SET", "east", 5],
      ["SET", "main", 10],
    ]);
  });
});

describe("reservations through the coordinator", () => {
  const tryReserve = (gid: string, sku: string, quantity: number, tenantId = tid) =>
    sys.call("tx.tryBranch", { gid, initiator: "inventory-test", action: "inventory.reserve", confirm: "inventory.confirm", cancel: "inventory.release", payload: { tenantId, items: [{ sku, quantity }] } });

  it("holds stock on try, keeps the hold on commit, sells it once paid (once)", async () => {
    await stock("red", 10);
    const gid = `order-${randomUUID()}`;
    const held = await tryReserve(gid, "red", 3);
    expect(held).toMatchObject({ reservationId: `${gid}:01`, status: "RESERVED", items: [{ sku: "red", warehouse: "main", quantity: 3, price: 150 }] });
    expect(await level("red")).toEqual({ onHand: 10, reserved: 3, available: 7 });
    await sys.call("tx.commit", { gid });
    await eventually(async () => (await sys.api.get(`/api/platform/tx/${gid}`, sys.admin.token)).body.state === "COMMITTED");
    expect(await level("red")).toEqual({ onHand: 10, reserved: 3, available: 7 });
    for (let i = 0; i < 2; i++) expect(await sys.call("inventory.sell", { tenantId: tid, reservationId: held.reservationId })).toMatchObject({ status: "SOLD" });
    expect(await level("red")).toEqual({ onHand: 7, reserved: 0, available: 7 });
  });

  it("gives a committed hold back when its order is cancelled, and will not sell it then", async () => {
    const gid = `order-${randomUUID()}`;
    const held = await tryReserve(gid, "red", 2);
    await sys.call("tx.commit", { gid });
    await eventually(async () => (await sys.api.get(`/api/platform/tx/${gid}`, sys.admin.token)).body.state === "COMMITTED");
    for (let i = 0; i < 2; i++) await sys.call("inventory.unhold", { tenantId: tid, reservationId: held.reservationId });
    expect(await level("red")).toEqual({ onHand: 7, reserved: 0, available: 7 });
    await expect(sys.call("inventory.sell", { tenantId: tid, reservationId: held.reservationId })).rejects.toMatchObject({ code: 409, type: "RESERVATION_RELEASED" });
  });

  it("gives the hold back when the transaction aborts, and refuses more than is available", async () => {
    const gid = `order-${randomUUID()}`;
    await tryReserve(gid, "red", 5);
    await sys.call("tx.abort", { gid });
    await eventually(async () => (await level("red")).reserved === 0);
    await expect(tryReserve(`order-${randomUUID()}`, "red", 8)).rejects.toMatchObject({ code: 409, type: "INSUFFICIENT_STOCK" });
    expect(await level("red")).toEqual({ onHand: 7, reserved: 0, available: 7 });
  });

  it("never sells more than there is, however many try at once", async () => {
    await stock("green", 5);
    const outcomes = await Promise.allSettled(Array.from({ length: 15 }, () => tryReserve(`order-${randomUUID()}`, "green", 1)));
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(5);
    expect(await level("green")).toEqual({ onHand: 5, reserved: 5, available: 0 });
  });

  it("keeps each tenant's catalogue to itself", async () => {
    await expect(tryReserve(`order-${randomUUID()}`, "red", 1, other)).rejects.toMatchObject({ type: "PRODUCT_NOT_FOUND" });
  });
});

describe("expiry", () => {
  it("returns a hold left too long, records it, and refuses to sell it afterwards", async () => {
    await stock("black", 4);
    const gid = `saga-${randomUUID()}`;
    await sys.call("inventory.reserve", { tenantId: tid, items: [{ sku: "black", quantity: 2 }], ttlSeconds: 60 }, branch(gid, "try"));
    expect(await level("black")).toEqual({ onHand: 4, reserved: 2, available: 2 });
    sys.clock.advance(59_000);
    expect(await sys.call("inventory.tick")).toBe(0);
    sys.clock.advance(2_000);
    expect(await sys.call("inventory.tick")).toBe(1);
    expect(await level("black")).toEqual({ onHand: 4, reserved: 0, available: 4 });
    await expect(sys.call("inventory.confirm", { tenantId: tid }, branch(gid, "confirm"))).rejects.toMatchObject({ code: 409, type: "RESERVATION_EXPIRED" });
    const kinds = (await sys.api.get(`/api/commerce/tenants/${tid}/stock/black/movements`, owner.token)).body.items.map((m: { kind: string }) => m.kind);
    expect(kinds).toEqual(["EXPIRE", "RESERVE", "SET"]);
    await expect(sys.call("inventory.reserve", { tenantId: tid, items: [{ sku: "black", quantity: 1 }] })).rejects.toMatchObject({ type: "TX_BRANCH_REQUIRED" });
  });
});
