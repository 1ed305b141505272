import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enrolReviewers, type Member, putPolicy, report } from "../../../../test/support/governance";
import { eventually, startTestSystem, type TestSystem } from "../../../../test/support/harness";
import { failNextAt } from "../../../platform/runtime/faults";

/** Seating as the report service's own one-participant TCC, on a system with no other case in it (holds are counted exactly). */
let sys: TestSystem;
let reporter: Member;
let author: Member;

beforeAll(async () => {
  sys = await startTestSystem();
  await enrolReviewers(sys, 6);
  reporter = await sys.user();
  author = await sys.user();
  await putPolicy(sys, "SPAM");
});
afterAll(() => sys?.stop());

describe("seating", () => {
  it("rolls back a seating cut short after the reviewers were held, releases the holds (retrying a release that fails), then seats the case", async () => {
    const openCases = async () => {
      const list = (await sys.api.get("/api/governance/reviewers?limit=100", sys.admin.token)).body.items as { userId: number; openCases: number }[];
      return list.reduce((sum, r) => sum + r.openCases, 0);
    };
    const before = await openCases();
    // As if the process died right after the reviewer service held the seats.
    failNextAt("report.seat.held");
    const filed = await report(sys, reporter, `cut-${randomUUID()}`, author.id);
    expect(filed.status).toBe(201);
    expect(filed.body.status).toBe("OPEN");
    expect(await openCases()).toBe(before + 3);
    // Not before the seating counts as abandoned; then rolled back, but the release fails once.
    expect((await sys.tick()).cancelled).toBe(0);
    sys.clock.advance(15_000);
    failNextAt("report.seat.releasing");
    const swept = await sys.tick();
    expect(swept.cancelled).toBe(1);
    expect(await openCases()).toBe(before + 3 + (swept.seated > 0 ? 3 : 0));
    // The listed release goes through on a later pass, and the case is seated anew.
    sys.clock.advance(5_000);
    await sys.tick();
    const view = await eventually(async () => {
      const v = (await sys.api.get(`/api/governance/cases/${filed.body.caseId}`, sys.admin.token)).body;
      return v.status === "VOTING" && v;
    });
    expect(view.panel).toHaveLength(3);
    expect(await openCases()).toBe(before + 3);
  });

});
