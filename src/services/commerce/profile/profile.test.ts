import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startTestSystem, type TestSystem } from "../../../../test/support/harness";
import { putPolicy, report } from "../../../../test/support/governance";
import { type CaseDecided, ReportEvents } from "../../governance/report/report.contract";

let sys: TestSystem;
type User = { token: string; id: number; username: string };
const address = { name: "Ann", line1: "1 Main St", city: "Springfield", postcode: "12345", country: "US" };
const DAY = 86_400_000;

beforeAll(async () => {
  sys = await startTestSystem();
});
afterAll(() => sys?.stop());

const profileOf = (u: User) => sys.api.get("/api/profiles/me", u.token).then((r) => r.body);

describe("profiles", () => {
  it("start at sign-up, follow activity, and tag what they see", async () => {
    const u = await sys.user();
    await sys.api.get("/api/me", u.token);
    const p = await eventually(async () => {
      const got = await profileOf(u);
      return got.lastActiveAt !== null && got;
    });
    expect(p).toMatchObject({ userId: u.id, orders: { placed: 0, paid: 0, completed: 0 }, spent: 0, violationsUpheld: 0 });
    expect(p.accountCreatedAt).not.toBeNull();
    expect(p.tags).toEqual(["new", "active"]);
    expect((await sys.api.get(`/api/profiles/${u.id}`, u.token)).status).toBe(403);
    expect((await sys.api.get(`/api/profiles/${u.id}`, sys.admin.token)).body.userId).toBe(u.id);
    expect((await sys.api.get("/api/profiles/999999", sys.admin.token)).status).toBe(404);
  });

  it("count orders placed, paid and refunded, and what was spent", async () => {
    const [owner, buyer] = [await sys.user(), await sys.user()];
    const tid = (await sys.api.post("/api/commerce/tenants", { name: "Pens", ownerId: owner.id }, sys.admin.token)).body.id;
    await sys.api.post(`/api/commerce/tenants/${tid}/products`, { sku: "pen", name: "Pen", price: 250 }, owner.token);
    await sys.api.put(`/api/commerce/tenants/${tid}/stock/pen`, { quantity: 10 }, owner.token);
    const order = (await sys.api.post("/api/commerce/orders", { tenantId: tid, items: [{ sku: "pen", quantity: 2 }], address }, buyer.token, randomUUID())).body;
    const payment = (await sys.api.post(`/api/commerce/orders/${order.id}/payments`, {}, buyer.token)).body;
    await sys.api.post(`/api/payments/sandbox/${payment.paymentId}/complete`, { outcome: "SUCCESS" });
    const paid = await eventually(async () => {
      const p = await profileOf(buyer);
      return p.orders.paid === 1 && p;
    });
    expect(paid).toMatchObject({ orders: { placed: 1, paid: 1, completed: 0 }, spent: 500 });
    expect(paid.tags).toContain("buyer");
    await sys.api.post(`/api/commerce/tenants/${tid}/orders/${order.id}/refund`, { reason: "broken" }, owner.token);
    await eventually(async () => (await profileOf(buyer)).spent === 0);
  });

  it("count violations upheld against a user's content, undo one an appeal overturns, and keep recent violators off panels", async () => {
    await putPolicy(sys, "SPAM");
    const [author, reporter] = [await sys.user(), await sys.user()];
    await sys.api.post("/api/governance/reviewers/me/enrol", {}, author.token);
    await sys.api.put("/api/governance/reviewer-rules", { activeWithinDays: 0, minAccountAgeDays: 0, minAccuracy: 0, violationCooldownDays: 30 }, sys.admin.token);
    expect((await sys.api.get("/api/governance/reviewers/me", author.token)).body.notEligibleBecause).toBeNull();

    const opened = (await report(sys, reporter, `profile-${randomUUID()}`, author.id)).body;
    await sys.api.post(`/api/governance/cases/${opened.caseId}/decision`, { verdict: "UPHELD", reason: "counterfeit" }, sys.admin.token);
    const flagged = await eventually(async () => {
      const p = await profileOf(author);
      return p.violationsUpheld === 1 && p;
    });
    expect(flagged.tags).toContain("flagged");
    // The reviewer pool holds the profile's copy: the author sits out the cooldown.
    await eventually(async () => (await sys.api.get("/api/governance/reviewers/me", author.token)).body.notEligibleBecause === "RECENT_VIOLATION");

    // An appeal's panel overturns it (its verdict, as the report service publishes it).
    const overturned: CaseDecided = {
      caseId: `appeal-${randomUUID().slice(0, 8)}`,
      reportType: "SPAM",
      target: { type: "LISTING", id: "x", authorId: author.id },
      verdict: "REJECTED",
      decidedBy: "PANEL",
      decidedAt: sys.clock.now(),
      appealOf: opened.caseId,
      coinsPerVote: 0,
      coinsPerCoherentVote: 0,
      panel: [],
    };
    await sys.node.platform.stream.publish(ReportEvents.decided, overturned, { id: `case-decided:${overturned.caseId}` });
    await eventually(async () => (await profileOf(author)).violationsUpheld === 0);
    await eventually(async () => (await sys.api.get("/api/governance/reviewers/me", author.token)).body.notEligibleBecause === null);

    // Thirty days on, even a standing violation no longer keeps anyone off panels.
    const again = (await report(sys, reporter, `profile-${randomUUID()}`, author.id)).body;
    await sys.api.post(`/api/governance/cases/${again.caseId}/decision`, { verdict: "UPHELD", reason: "again" }, sys.admin.token);
    await eventually(async () => (await sys.api.get("/api/governance/reviewers/me", author.token)).body.notEligibleBecause === "RECENT_VIOLATION");
    sys.clock.advance(31 * DAY);
    const fresh = await sys.api.login(author.username, "password-123");
    expect((await sys.api.get("/api/governance/reviewers/me", fresh.token)).body.notEligibleBecause).toBeNull();
    await sys.api.put("/api/governance/reviewer-rules", { activeWithinDays: 0, minAccountAgeDays: 0, minAccuracy: 0 }, sys.admin.token);
  });
});
