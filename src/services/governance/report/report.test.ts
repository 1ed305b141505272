import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { byId, enrolReviewers, type Member, panelOf, putPolicy, report, SPAM, vote } from "../../../../test/support/governance";
import { cleanEngines, eventually, startTestSystem, testConfig, type TestSystem } from "../../../../test/support/harness";
import { openServiceDb } from "../../../platform/db/db";
import { freshCase, insertCase, insertReport, reportedOrOpen, reportMigrations, type ReportTables } from "./report.store";

let sys: TestSystem;
let reviewers: Member[];
let reporter: Member;
let author: Member;

beforeAll(async () => {
  sys = await startTestSystem();
  reviewers = await enrolReviewers(sys, 16);
  // Open cases left by earlier tests time out whenever one moves the clock; suspensions for those
  // no-shows would shrink the pool under later tests, so this suite turns them off.
  const rules = { activeWithinDays: 0, minAccountAgeDays: 0, minAccuracy: 0, maxOpenCases: 0, maxCasesPerDay: 0, suspendAfterNoShows: 0 };
  expect((await sys.api.put("/api/governance/reviewer-rules", rules, sys.admin.token)).status).toBe(200);
  reporter = await sys.user();
  author = await sys.user();
  await putPolicy(sys, "SPAM");
  await putPolicy(sys, "FRAUD", { ...SPAM, panelSize: 5, votesToDecide: 3, maxAlternates: 0 });
});
afterAll(() => sys?.stop());

describe("vote policies", () => {
  it("are listed for users and managed by operators only", async () => {
    const list = await sys.api.get("/api/governance/policies", reporter.token);
    expect(list.status).toBe(200);
    expect(list.body.map((p: { reportType: string }) => p.reportType)).toEqual(["FRAUD", "SPAM"]);
    expect((await sys.api.put("/api/governance/policies/X", SPAM, reporter.token)).status).toBe(403);
  });
  it("refuse an impossible threshold and malformed fields, naming the field", async () => {
    const bad = await sys.api.put("/api/governance/policies/X", { ...SPAM, panelSize: 4, votesToDecide: 2 }, sys.admin.token);
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: "INVALID_POLICY", field: "votesToDecide" });
    const missing = await sys.api.put("/api/governance/policies/X", { ...SPAM, voteTimeoutSeconds: 0 }, sys.admin.token);
    expect(missing.body.error).toMatchObject({ code: "VALIDATION_FAILED", field: "voteTimeoutSeconds" });
    const list = await sys.api.get("/api/governance/policies", reporter.token);
    expect(list.body.find((p: { reportType: string }) => p.reportType === "X")).toBeUndefined();
  });
  it("apply to the next case as soon as they change", async () => {
    await putPolicy(sys, "RESIZED", { ...SPAM, panelSize: 3, votesToDecide: 2 });
    const before = await report(sys, reporter, "resized-1", author.id, "RESIZED");
    await putPolicy(sys, "RESIZED", { ...SPAM, panelSize: 5, votesToDecide: 3 });
    const after = await report(sys, reporter, "resized-2", author.id, "RESIZED");
    expect(await panelOf(sys, before.body.caseId)).toHaveLength(3);
    expect(await panelOf(sys, after.body.caseId)).toHaveLength(5);
  });
});

describe("intake", () => {
  /** Seats the pool holds across all cases: a hold given back brings it down again. */
  const seatsHeld = async () => {
    const list = await sys.api.get("/api/governance/reviewers?limit=100", sys.admin.token);
    return (list.body.items as { openCases: number }[]).reduce((n, r) => n + r.openCases, 0);
  };

  it("opens a case with a panel, and a retry with the same key returns the first answer", async () => {
    const key = randomUUID();
    const first = await report(sys, reporter, "intake-1", author.id, "SPAM", key);
    expect(first.status).toBe(201);
    expect(first.body.status).toBe("VOTING");
    const again = await report(sys, reporter, "intake-1", author.id, "SPAM", key);
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    const panel = await panelOf(sys, first.body.caseId);
    expect(panel).toHaveLength(3);
    for (const seat of panel) expect([reporter.id, author.id]).not.toContain(seat.reviewerId);
  });

  it("refuses a reused key with a different body, a missing key, an unknown type and bad fields", async () => {
    const key = randomUUID();
    await report(sys, reporter, "intake-2", author.id, "SPAM", key);
    const reused = await report(sys, reporter, "intake-2b", author.id, "SPAM", key);
    expect(reused.status).toBe(409);
    expect(reused.body.error.code).toBe("IDEMPOTENCY_KEY_REUSED");
    const noKey = await sys.api.post("/api/governance/reports", { reportType: "SPAM", target: { type: "LISTING", id: "z", authorId: 1 }, reason: "r" }, reporter.token);
    expect(noKey.body.error).toMatchObject({ code: "IDEMPOTENCY_KEY_REQUIRED", field: "Idempotency-Key" });
    const unknown = await report(sys, reporter, "intake-3", author.id, "NOPE");
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({ code: "UNKNOWN_REPORT_TYPE", field: "reportType" });
    const badTarget = await sys.api.post(
      "/api/governance/reports",
      { reportType: "SPAM", target: { type: "PHOTO", id: "1", authorId: 1 }, reason: "r" },
      reporter.token,
      randomUUID(),
    );
    expect(badTarget.body.error).toMatchObject({ code: "VALIDATION_FAILED", field: "target.type" });
    const cases = await sys.api.get("/api/governance/cases?targetType=LISTING&targetId=intake-3", reporter.token);
    expect(cases.body.items).toEqual([]);
  });

  it("joins later reports on the same target to the open case", async () => {
    const other = await sys.user();
    const a = await report(sys, reporter, "intake-4", author.id);
    const b = await report(sys, other, "intake-4", author.id);
    expect(b.body.caseId).toBe(a.body.caseId);
    expect(b.body.reportId).not.toBe(a.body.reportId);
    const view = await sys.api.get(`/api/governance/cases/${a.body.caseId}`, sys.admin.token);
    expect(view.body.reports).toBe(2);
    for (const seat of view.body.panel) expect(seat.reviewerId).not.toBe(other.id);
  });

  it("opens one case when two first reports on a target race, giving back the panel held for the other", async () => {
    const before = await seatsHeld();
    const other = await sys.user();
    const [a, b] = await Promise.all([report(sys, reporter, "intake-race", author.id), report(sys, other, "intake-race", author.id)]);
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(b.body.caseId).toBe(a.body.caseId);
    const view = await sys.api.get(`/api/governance/cases/${a.body.caseId}`, sys.admin.token);
    expect(view.body).toMatchObject({ status: "VOTING", reports: 2 });
    expect(view.body.panel).toHaveLength(3);
    // Both reports held a panel before either opened the case; only the seated one keeps its seats.
    await eventually(async () => (await seatsHeld()) === before + 3);
  });

  it("files a report once when two requests with its key race, giving back the panel held for the other", async () => {
    const before = await seatsHeld();
    const key = randomUUID();
    const [a, b] = await Promise.all([report(sys, reporter, "intake-key-race", author.id, "SPAM", key), report(sys, reporter, "intake-key-race", author.id, "SPAM", key)]);
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(b.body).toEqual(a.body);
    const view = await sys.api.get(`/api/governance/cases/${a.body.caseId}`, sys.admin.token);
    expect(view.body).toMatchObject({ status: "VOTING", reports: 1 });
    await eventually(async () => (await seatsHeld()) === before + 3);
  });

  it("files a report whose panel cannot be drawn now, leaving the case open for the sweeper", async () => {
    await putPolicy(sys, "CROWD", { ...SPAM, panelSize: 21, votesToDecide: 11 });
    const filed = await report(sys, reporter, "intake-crowd", author.id, "CROWD");
    expect(filed.status).toBe(201);
    expect(filed.body.status).toBe("OPEN");
    const view = await sys.api.get(`/api/governance/cases/${filed.body.caseId}`, sys.admin.token);
    expect(view.body).toMatchObject({ status: "OPEN", reports: 1 });
    expect(view.body.panel).toEqual([]);
  });

  it("takes reports from other systems on the stream, once per external id", async () => {
    const message = {
      source: "forum",
      externalId: "post-report-77",
      reporterId: reporter.id,
      reportType: "SPAM",
      target: { type: "POST", id: "forum-post-77", authorId: author.id },
      reason: "advertising",
    };
    await sys.node.platform.stream.publish("governance.report.submitted", message, { id: "forum:77" });
    await sys.node.platform.stream.publish("governance.report.submitted", message, { id: "forum:77-redelivered" });
    await sys.node.platform.stream.publish("governance.report.submitted", { nonsense: true }, { id: "forum:bad" });
    const found = await eventually(async () => {
      const res = await sys.api.get("/api/governance/cases?targetType=POST&targetId=forum-post-77", reporter.token);
      return res.body.items.length === 1 && res.body.items[0].status === "VOTING" ? res.body.items[0] : null;
    });
    const view = await sys.api.get(`/api/governance/cases/${found.id}`, sys.admin.token);
    expect(view.body.reports).toBe(1);
  });
});

describe("voting", () => {
  it("hides the tally from panelists, decides at the threshold, and refuses late, repeat and outside votes", async () => {
    const opened = await report(sys, reporter, "vote-1", author.id);
    const caseId = opened.body.caseId;
    const panel = await panelOf(sys, caseId);
    const [a, b, c] = panel.map((p) => byId(reviewers, p.reviewerId));

    const tasks = await sys.api.get("/api/governance/tasks", a.token);
    const task = tasks.body.find((t: { caseId: string }) => t.caseId === caseId);
    expect(task).toMatchObject({ reportType: "SPAM", target: { type: "LISTING", id: "vote-1" }, reason: "spam listing", reasons: ["spam listing"] });
    expect(Date.parse(task.deadline)).toBeGreaterThan(sys.clock.now());

    expect((await vote(sys, a, caseId, "VIOLATION")).status).toBe(201);
    const seen = await sys.api.get(`/api/governance/cases/${caseId}`, b.token);
    expect(seen.body.tally).toBeUndefined();
    expect(seen.body.panel).toBeUndefined();
    expect(seen.body.mySeat.state).toBe("INVITED");

    const again = await vote(sys, a, caseId, "NO_VIOLATION");
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("ALREADY_VOTED");
    const outsider = await vote(sys, reporter, caseId, "VIOLATION");
    expect(outsider.status).toBe(403);
    expect(outsider.body.error.code).toBe("NOT_ON_PANEL");

    const openCasesOf = async (m: Member) => (await sys.api.get("/api/governance/reviewers/me", m.token)).body.openCases as number;
    const holding = await openCasesOf(c);
    expect(holding).toBeGreaterThan(0);
    const deciding = await vote(sys, b, caseId, "VIOLATION");
    expect(deciding.body.caseStatus).toBe("UPHELD");
    const late = await vote(sys, c, caseId, "NO_VIOLATION");
    expect(late.status).toBe(409);
    expect(late.body.error.code).toBe("CASE_NOT_VOTING");

    const view = await sys.api.get(`/api/governance/cases/${caseId}`, reporter.token);
    expect(view.body).toMatchObject({ status: "UPHELD", verdict: "UPHELD", decidedBy: "PANEL", tally: { violation: 2, noViolation: 0 } });
    // After the decision others see the outcome seat by seat, never who sat where.
    expect(view.body.panel.map((p: { decision: string | null }) => p.decision).sort()).toEqual(["VIOLATION", "VIOLATION", null].sort());
    for (const seat of view.body.panel) expect(seat.reviewerId).toBeUndefined();
    expect(view.body.draws).toBeUndefined();
    const audited = await sys.api.get(`/api/governance/cases/${caseId}`, sys.admin.token);
    // The seat that had not voted closed with the verdict; its reviewer's task with it.
    expect(audited.body.panel.find((p: { reviewerId: number }) => p.reviewerId === c.id)).toMatchObject({ state: "RELEASED", decision: null });
    expect(audited.body.panel.filter((p: { state: string }) => p.state === "VOTED")).toHaveLength(2);
    expect((await sys.api.get("/api/governance/tasks", c.token)).body.find((t: { caseId: string }) => t.caseId === caseId)).toBeUndefined();
    // The reviewer service lets go of the released seat's reviewer too.
    await eventually(async () => (await openCasesOf(c)) === holding - 1);
    const metrics = (await sys.api.get("/metrics")).body as string;
    expect(metrics).toMatch(/bazaar_governance_cases_decided_total\{verdict="UPHELD",decided_by="PANEL"\} [1-9]/);
    expect(metrics).toMatch(/bazaar_governance_votes_total\{decision="VIOLATION"\} [1-9]/);
    expect(metrics).toMatch(/bazaar_governance_cases_opened_total\{round="1"\} [1-9]/);
  });

  it("decides once when the whole panel votes at the same moment", async () => {
    const opened = await report(sys, reporter, "race-1", author.id);
    const panel = await panelOf(sys, opened.body.caseId);
    const answers = await Promise.all(panel.map((p) => vote(sys, byId(reviewers, p.reviewerId), opened.body.caseId, "VIOLATION")));
    expect(answers.map((a) => a.status).sort()).toEqual([201, 201, 409]);
    expect(answers.filter((a) => a.body.caseStatus === "UPHELD")).toHaveLength(1);
    const view = await sys.api.get(`/api/governance/cases/${opened.body.caseId}`, sys.admin.token);
    expect(view.body.tally).toEqual({ violation: 2, noViolation: 0 });
  });

  it("opens one case when several first reports on a target arrive together", async () => {
    const reporters = [reporter, author, ...(await Promise.all([sys.user(), sys.user(), sys.user()]))];
    const answers = await Promise.all(reporters.map((r) => report(sys, r, "race-2", 424242)));
    expect(answers.map((a) => a.status)).toEqual([201, 201, 201, 201, 201]);
    expect(new Set(answers.map((a) => a.body.caseId)).size).toBe(1);
    const view = await sys.api.get(`/api/governance/cases/${answers[0].body.caseId}`, sys.admin.token);
    expect(view.body.reports).toBe(5);
  });

  it("stores the draw so the panel can be re-derived", async () => {
    const { drawPanel } = await import("../reviewer/reviewer.domain");
    const opened = await report(sys, reporter, "draw-1", author.id);
    const view = await sys.api.get(`/api/governance/cases/${opened.body.caseId}`, sys.admin.token);
    const [{ seed, candidates, reviewers }] = view.body.draws;
    expect(drawPanel(candidates, 3, seed, new Set())).toEqual(reviewers);
    expect([...reviewers].sort()).toEqual(view.body.panel.map((p: { reviewerId: number }) => p.reviewerId).sort());
  });

  it("replaces reviewers who miss their deadline, up to the policy's limit, then expires the case", async () => {
    const opened = await report(sys, reporter, "alt-1", author.id);
    const caseId = opened.body.caseId;
    const first = await panelOf(sys, caseId);
    await vote(sys, byId(reviewers, first[0].reviewerId), caseId, "VIOLATION");

    sys.clock.advance(61_000);
    const late = await vote(sys, byId(reviewers, first[1].reviewerId), caseId, "VIOLATION");
    expect(late.body.error.code).toBe("VOTE_DEADLINE_PASSED");
    await sys.tick();
    await sys.tick();
    const second = await panelOf(sys, caseId);
    expect(second.filter((p) => p.state === "REPLACED").map((p) => p.reviewerId).sort()).toEqual([first[1].reviewerId, first[2].reviewerId].sort());
    const alternates = second.filter((p) => p.state === "INVITED");
    expect(alternates).toHaveLength(2);
    for (const alt of alternates) expect(first.map((p) => p.reviewerId)).not.toContain(alt.reviewerId);
    const replaced = await vote(sys, byId(reviewers, first[1].reviewerId), caseId, "VIOLATION");
    expect(replaced.body.error.code).toBe("SEAT_REPLACED");

    sys.clock.advance(61_000);
    await sys.tick();
    await sys.tick();
    const third = await panelOf(sys, caseId);
    expect(third.filter((p) => p.state === "TIMED_OUT")).toHaveLength(2);

    sys.clock.advance(600_000);
    await sys.tick();
    const view = await sys.api.get(`/api/governance/cases/${caseId}`, reporter.token);
    expect(view.body).toMatchObject({ status: "EXPIRED", verdict: "EXPIRED", decidedBy: "TIMEOUT" });
    // An operator's list by status holds that status only: the decided case under EXPIRED, not under others.
    const ids = async (status: string) => (await sys.api.get(`/api/governance/cases?status=${status}&limit=100`, sys.admin.token)).body.items.map((c: { id: string; status: string }) => [c.id, c.status]);
    const expired = await ids("EXPIRED");
    expect(expired).toContainEqual([caseId, "EXPIRED"]);
    expect(expired.every(([, s]: [string, string]) => s === "EXPIRED")).toBe(true);
    expect((await ids("VOTING")).map(([id]: [string]) => id)).not.toContain(caseId);
    expect((await ids("UPHELD")).map(([id]: [string]) => id)).not.toContain(caseId);
  });
});

describe("operators and appeals", () => {
  it("lets an operator decide an open case, with a reason in the audit log", async () => {
    const opened = await report(sys, reporter, "op-1", author.id);
    const noReason = await sys.api.post(`/api/governance/cases/${opened.body.caseId}/decision`, { verdict: "REJECTED" }, sys.admin.token);
    expect(noReason.body.error.field).toBe("reason");
    const byUser = await sys.api.post(`/api/governance/cases/${opened.body.caseId}/decision`, { verdict: "REJECTED", reason: "x" }, reporter.token);
    expect(byUser.status).toBe(403);
    const decided = await sys.api.post(`/api/governance/cases/${opened.body.caseId}/decision`, { verdict: "REJECTED", reason: "parody listing" }, sys.admin.token);
    expect(decided.body).toMatchObject({ status: "REJECTED", decidedBy: "OPERATOR", decisionReason: "parody listing" });
    const twice = await sys.api.post(`/api/governance/cases/${opened.body.caseId}/decision`, { verdict: "UPHELD", reason: "x" }, sys.admin.token);
    expect(twice.body.error.code).toBe("CASE_DECIDED");
    const audit = await sys.api.get("/api/governance/audit?limit=100", sys.admin.token);
    expect(audit.body.items.find((a: { action: string; subject: string }) => a.action === "case.decide" && a.subject === `case:${opened.body.caseId}`)).toBeTruthy();
    expect((await sys.api.get("/api/governance/audit", reporter.token)).status).toBe(403);
    const upheld = await report(sys, reporter, "op-2", author.id);
    await sys.api.post(`/api/governance/cases/${upheld.body.caseId}/decision`, { verdict: "UPHELD", reason: "counterfeit" }, sys.admin.token);
    const appeal = await sys.api.post(`/api/governance/cases/${upheld.body.caseId}/appeal`, { reason: "no" }, author.token);
    expect(appeal.body.error.code).toBe("OPERATOR_DECISION_FINAL");
  });

  it("audits role changes made in identity", async () => {
    const promoted = await sys.user();
    await sys.api.put(`/api/admin/users/${promoted.id}/roles`, { roles: ["operator"] }, sys.admin.token);
    const entry = await eventually(async () => {
      const res = await sys.api.get("/api/governance/audit?limit=100", sys.admin.token);
      return res.body.items.find((a: { action: string; subject: string }) => a.action === "user.roles" && a.subject === `user:${promoted.id}`);
    });
    expect(entry).toMatchObject({ actorId: sys.admin.id, detail: { roles: ["user", "operator"], previous: ["user"] } });
  });

  it("lets the author appeal once; a disjoint panel of 2n+1 decides for good", async () => {
    const opened = await report(sys, reporter, "appeal-1", author.id);
    const caseId = opened.body.caseId;
    const first = await panelOf(sys, caseId);
    for (const seat of first.slice(0, 2)) await vote(sys, byId(reviewers, seat.reviewerId), caseId, "VIOLATION");

    const notAuthor = await sys.api.post(`/api/governance/cases/${caseId}/appeal`, { reason: "no" }, reporter.token);
    expect(notAuthor.body.error.code).toBe("NOT_TARGET_AUTHOR");
    const appeal = await sys.api.post(`/api/governance/cases/${caseId}/appeal`, { reason: "it is a different phone each time" }, author.token);
    expect(appeal.status).toBe(201);
    expect(appeal.body, JSON.stringify(appeal.body)).toMatchObject({ appealOf: caseId, status: "VOTING" });
    const twice = await sys.api.post(`/api/governance/cases/${caseId}/appeal`, { reason: "again" }, author.token);
    expect(twice.body.error.code).toBe("ALREADY_APPEALED");

    const second = await panelOf(sys, appeal.body.caseId);
    expect(second).toHaveLength(7);
    const firstIds = new Set(first.map((p) => p.reviewerId));
    for (const seat of second) {
      expect(firstIds.has(seat.reviewerId)).toBe(false);
      expect([reporter.id, author.id]).not.toContain(seat.reviewerId);
    }
    for (const seat of second.slice(0, 4)) await vote(sys, byId(reviewers, seat.reviewerId), appeal.body.caseId, "NO_VIOLATION");
    const original = await sys.api.get(`/api/governance/cases/${caseId}`, author.token);
    expect(original.body).toMatchObject({ verdict: "UPHELD", finalVerdict: "REJECTED", appealedBy: appeal.body.caseId });
    const final = await sys.api.post(`/api/governance/cases/${appeal.body.caseId}/appeal`, { reason: "more" }, author.token);
    expect(final.body.error.code).toBe("APPEAL_IS_FINAL");
  });
});

describe("queries", () => {
  it("lists by target and by reporter, paginated, and guards other users' lists", async () => {
    const mine = await sys.user();
    for (let i = 0; i < 3; i++) await report(sys, mine, `q-${i}`, author.id);
    const page1 = await sys.api.get("/api/governance/cases?reporterId=me&limit=2", mine.token);
    expect(page1.body.items).toHaveLength(2);
    const page2 = await sys.api.get(`/api/governance/cases?reporterId=me&limit=2&cursor=${page1.body.nextCursor}`, mine.token);
    expect(page2.body.items).toHaveLength(1);
    expect(page2.body.nextCursor).toBeNull();
    const ids = [...page1.body.items, ...page2.body.items].map((c: { id: string }) => c.id);
    expect(new Set(ids).size).toBe(3);
    const other = await sys.api.get(`/api/governance/cases?reporterId=${mine.id}`, reporter.token);
    expect(other.status).toBe(403);
    const asOperator = await sys.api.get(`/api/governance/cases?reporterId=${mine.id}`, sys.admin.token);
    expect(asOperator.body.items).toHaveLength(3);
    const byTarget = await sys.api.get("/api/governance/cases?targetType=LISTING&targetId=q-1", reporter.token);
    expect(byTarget.body.items).toHaveLength(1);
    expect((await sys.api.get("/api/governance/cases/0000000000nosuchcase", reporter.token)).status).toBe(404);
    expect((await sys.api.get("/api/governance/cases/not-an-id!", reporter.token)).status).toBe(400);
  });
});

describe("the report store", () => {
  it("answers in one read whether a key was reported under or a target has an open case", async () => {
    const config = testConfig();
    const store = await openServiceDb<ReportTables>(config, "reportstore", reportMigrations);
    try {
      const now = 1_000;
      await insertCase(store.db, {
        ...freshCase(now),
        id: "case-1",
        report_type: "SPAM",
        target_type: "LISTING",
        target_id: "l-1",
        target_author_id: 9,
        round: 1,
        appeal_of: null,
        open_key: "LISTING:l-1",
        panel_size: 3,
        votes_to_decide: 2,
        vote_timeout_s: 60,
        max_alternates: 0,
        seats_owed: 3,
        coins_per_vote: 1,
        coins_per_coherent_vote: 1,
        appeal_window_s: 60,
        deadline_at: now + 60_000,
      });
      await insertReport(store.db, { id: "r-1", case_id: "case-1", reporter_id: 5, reason: "x", evidence: null, source: "api", dedup_key: "api:5:k1", request_hash: "h", created_at: now });
      expect(await reportedOrOpen(store.db, "api:5:k1", "LISTING:other")).toBe(true);
      expect(await reportedOrOpen(store.db, "api:5:k2", "LISTING:l-1")).toBe(true);
      expect(await reportedOrOpen(store.db, "api:5:k2", "LISTING:other")).toBe(false);
    } finally {
      await store.close();
      await cleanEngines(config);
    }
  });
});
