import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_PASSWORD, eventually, startTestSystem, type TestSystem } from "../../../../test/support/harness";

let sys: TestSystem;
type User = { token: string; id: number; username: string };
let owner: User;
let buyer: User;
let rival: User;
let tid: string;
let rivalTid: string;
const address = { name: "Ann", line1: "1 Main St", city: "Springfield", postcode: "12345", country: "US" };
const today = () => new Date(sys.clock.now()).toISOString().slice(0, 10);

beforeAll(async () => {
  sys = await startTestSystem({ services: ["gateway", "identity", "tenant", "permission", "inventory", "order", "tx", "payment", "callback", "sandbox", "reconciliation"] });
  [owner, buyer, rival] = [await sys.user(), await sys.user(), await sys.user()];
  tid = (await sys.api.post("/api/commerce/tenants", { name: "Pens", ownerId: owner.id }, sys.admin.token)).body.id;
  rivalTid = (await sys.api.post("/api/commerce/tenants", { name: "Rival", ownerId: rival.id }, sys.admin.token)).body.id;
  await sys.api.post(`/api/commerce/tenants/${tid}/products`, { sku: "pen", name: "Pen", price: 150 }, owner.token);
  await sys.api.put(`/api/commerce/tenants/${tid}/stock/pen`, { quantity: 100 }, owner.token);
});
afterAll(() => sys?.stop());

/** An order paid through the sandbox provider, end to end. */
async function paidOrder(quantity = 1) {
  const order = (await sys.api.post("/api/commerce/orders", { tenantId: tid, items: [{ sku: "pen", quantity }], address }, buyer.token, randomUUID())).body;
  const payment = (await sys.api.post(`/api/commerce/orders/${order.id}/payments`, {}, buyer.token)).body;
  await sys.api.post(`/api/payments/sandbox/${payment.paymentId}/complete`, { outcome: "SUCCESS" });
  await eventually(async () => (await sys.api.get(`/api/commerce/orders/${order.id}`, buyer.token)).body.status === "PAID");
  return { order, payment };
}
const run = (date = today()) => sys.api.post(`/api/commerce/reconciliation/${date}/run`, {}, sys.admin.token);

describe("reconciliation", () => {
  it("refuses what is not a day it can reconcile, and has no report before a run", async () => {
    expect((await run("2026-13-01")).body.error).toMatchObject({ code: "INVALID_DATE", field: "date" });
    expect((await run("yesterday")).body.error.field).toBe("date");
    const future = new Date(sys.clock.now() + 3 * 86_400_000).toISOString().slice(0, 10);
    expect((await run(future)).body.error.code).toBe("DATE_IN_FUTURE");
    expect((await sys.api.get("/api/commerce/reconciliation/2020-01-01", sys.admin.token)).status).toBe(404);
    expect((await sys.api.post(`/api/commerce/reconciliation/${today()}/run`, {}, buyer.token)).status).toBe(403);
  });

  it("finds nothing when the provider, our payments and our orders agree; then names each difference, the same on every re-run", async () => {
    await paidOrder(2);
    const refunded = await paidOrder(1);
    await sys.api.post(`/api/commerce/tenants/${tid}/orders/${refunded.order.id}/refund`, { reason: "changed mind" }, owner.token);
    await eventually(async () => (await sys.api.get(`/api/payments/sandbox/${refunded.payment.paymentId}`)).body.status === "REFUNDED");
    await eventually(async () => (await run()).body.payments === 2);
    const clean = (await run()).body;
    expect(clean).toMatchObject({ date: today(), statementLines: 3, payments: 2, discrepancies: [] });
    // The provider's statement file: the two captures and the refund.
    const statement = (await sys.api.get(`/api/payments/sandbox/statements/${today()}`, sys.admin.token)).body;
    expect(statement.lines.map((l: { kind: string }) => l.kind).sort()).toEqual(["PAYMENT", "PAYMENT", "REFUND"]);
    expect(statement.csv.split("\n")[0]).toBe("provider_tx_id,payment_id,kind,amount,at");
    expect(statement.csv).toContain(`,${refunded.payment.paymentId},REFUND,150,`);

    // The provider refunds a capture on its own (a chargeback): we still count it as paid.
    const charged = await paidOrder(1);
    await sys.call("sandbox.refund", { paymentId: charged.payment.paymentId });
    // A capture only the provider knows: a payment opened there, never by us.
    const ghost = await sys.call<{ providerTxId: string }>("sandbox.createCheckout", { paymentId: "pay_ghost", amount: 999, notifyUrl: `${sys.node.url}/api/payments/callback/sandbox` });
    await sys.call("sandbox.complete", { paymentId: "pay_ghost", outcome: "SUCCESS" });
    // A capture only we believe in: a notification the provider never settled.
    const forged = (await sys.api.post("/api/commerce/orders", { tenantId: tid, items: [{ sku: "pen", quantity: 1 }], address }, buyer.token, randomUUID())).body;
    const forgedPayment = (await sys.api.post(`/api/commerce/orders/${forged.id}/payments`, {}, buyer.token)).body;
    const forgedTx = (await sys.call<{ providerTxId: string }>("sandbox.page", { paymentId: forgedPayment.paymentId })).providerTxId;
    await sys.call("payment.applyNotification", { notificationId: "ntf_forged", providerTxId: forgedTx, paymentId: forgedPayment.paymentId, status: "SUCCEEDED", amount: 150, sequence: 1 });
    await eventually(async () => (await sys.api.get(`/api/commerce/orders/${forged.id}`, buyer.token)).body.status === "PAID");

    const report = (await run()).body;
    expect(report.discrepancies.map((d: { kind: string; ref: string; tenantId: string | null }) => [d.kind, d.ref, d.tenantId])).toEqual([
      ["EXTRA", `${forgedTx}:PAYMENT`, tid],
      ["MISSING", `${ghost.providerTxId}:PAYMENT`, null],
      ["STATUS_MISMATCH", `${(await sys.call<{ providerTxId: string }>("sandbox.page", { paymentId: charged.payment.paymentId })).providerTxId}:REFUND`, tid],
    ]);
    const again = (await run()).body;
    expect(again.discrepancies).toEqual(report.discrepancies);
    const stored = (await sys.api.get(`/api/commerce/reconciliation/${today()}`, sys.admin.token)).body;
    expect(stored.discrepancies).toEqual(report.discrepancies);
    expect(stored.statementLines).toBe(report.statementLines);
    // The same from the command line.
    const cli = await promisify(execFile)(process.execPath, [path.resolve("bin/bazaar.js"), "reconcile", "--date", today(), "--url", sys.node.url!, "--password", ADMIN_PASSWORD]);
    expect(JSON.parse(cli.stdout).discrepancies).toEqual(report.discrepancies);

    // Each tenant sees the findings on its own books, and nobody else's.
    const mine = (await sys.api.get(`/api/commerce/tenants/${tid}/reconciliation/${today()}`, owner.token)).body;
    expect(mine.discrepancies.map((d: { kind: string }) => d.kind)).toEqual(["EXTRA", "STATUS_MISMATCH"]);
    expect((await sys.api.get(`/api/commerce/tenants/${rivalTid}/reconciliation/${today()}`, rival.token)).body.discrepancies).toEqual([]);
    expect((await sys.api.get(`/api/commerce/tenants/${tid}/reconciliation/${today()}`, rival.token)).status).toBe(404);
  });

  it("reconciles yesterday on its own once today is half an hour old, and only once", async () => {
    // Tomorrow (not yet reconciled), seen from the day after.
    const day = new Date(sys.clock.now() + 86_400_000).toISOString().slice(0, 10);
    const midnight = Date.parse(`${day}T00:00:00.000Z`) + 86_400_000;
    sys.clock.advance(midnight + 10 * 60_000 - sys.clock.now());
    expect(await sys.call("reconciliation.tick")).toEqual({ reconciled: null });
    sys.clock.advance(25 * 60_000);
    expect(await sys.call("reconciliation.tick")).toEqual({ reconciled: day });
    expect(await sys.call("reconciliation.tick")).toEqual({ reconciled: null });
  });
});
