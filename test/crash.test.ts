import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it, onTestFailed } from "vitest";
import type { ApiClient } from "../src/platform/gateway/client";
import { grantsFor } from "../src/services/governance/reward/reward.domain";
import { type ChildNode, spawnNode } from "./support/child-node";
import { freePort } from "./support/net";
import { cleanEngines, testConfig } from "./support/harness";

/**
 * The whole system as a child process, killed with SIGKILL in the middle of a storm of reports,
 * votes and redemptions, then restarted: nothing accepted may be lost or applied twice.
 */
const config = testConfig();
const ADMIN = "crash-admin-password";
const started: ChildNode[] = [];
const current = () => started[started.length - 1]!;

afterAll(async () => {
  await current()?.stop();
  await cleanEngines(config);
});

async function startChild(port: number): Promise<ApiClient> {
  started.push(spawnNode({ config, name: `all-${started.length}`, port, adminPassword: ADMIN }));
  return (await current().ready(30_000)).api;
}

type Account = { username: string; token: string; id: number };

describe("crash safety", () => {
  it("loses and doubles nothing across a SIGKILL mid-storm", async () => {
    // The children's warnings and errors are the only trace of what went wrong inside them.
    onTestFailed(() => void process.stderr.write(`${started.map((n) => n.tail(200)).join("\n")}\n`));
    const port = await freePort();
    let api = await startChild(port);
    let admin = await api.login("admin", ADMIN);
    await api.put("/api/governance/policies/SPAM", { panelSize: 3, votesToDecide: 2, voteTimeoutSeconds: 3600, caseTimeoutSeconds: 7200, maxAlternates: 0, coinsPerVote: 5, coinsPerCoherentVote: 3 }, admin.token);
    await api.put("/api/governance/reviewer-rules", { activeWithinDays: 0, minAccountAgeDays: 0, minAccuracy: 0, maxOpenCases: 0, maxCasesPerDay: 0 }, admin.token);
    const register = async (username: string): Promise<Account> => {
      await api.post("/api/auth/register", { username, password: "password-123" });
      return { username, ...(await api.login(username, "password-123")) };
    };
    const reviewers: Account[] = [];
    for (let i = 0; i < 12; i++) {
      const r = await register(`rev-${i}`);
      await api.post("/api/governance/reviewers/me/enrol", {}, r.token);
      reviewers.push(r);
    }
    const reporters = [await register("rep-0"), await register("rep-1")];
    const author = await register("author");
    const item = (await api.post("/api/rewards/items", { name: "Voucher", price: 5, stock: 100_000 }, admin.token)).body;

    const reports: { key: string; target: string; reporter: Account; answer?: { caseId: string; reportId: string } }[] = [];
    const votes: { caseId: string; reviewer: Account; decision: string }[] = [];
    const redemptions: { key: string; reviewer: Account; answer?: { redemptionId: string } }[] = [];
    let storming = false;

    const reportLoop = async (reporter: Account, lane: number) => {
      while (storming) {
        const entry: (typeof reports)[number] = { key: randomUUID(), target: `crash-${lane}-${reports.length}`, reporter };
        reports.push(entry);
        const res = await api
          .post("/api/governance/reports", { reportType: "SPAM", target: { type: "LISTING", id: entry.target, authorId: author.id }, reason: "storm" }, reporter.token, entry.key)
          .catch(() => undefined);
        if (res?.status === 201) entry.answer = res.body;
      }
    };
    const voteLoop = async (reviewer: Account) => {
      while (storming) {
        const tasks = await api.get("/api/governance/tasks", reviewer.token).catch(() => undefined);
        if (!tasks || tasks.status !== 200) continue;
        for (const task of tasks.body as { caseId: string }[]) {
          const decision = reviewer.id % 3 === 0 ? "NO_VIOLATION" : "VIOLATION";
          const res = await api.post(`/api/governance/cases/${task.caseId}/votes`, { decision }, reviewer.token).catch(() => undefined);
          if (res?.status === 201) votes.push({ caseId: task.caseId, reviewer, decision });
        }
        const entry: (typeof redemptions)[number] = { key: randomUUID(), reviewer };
        const res = await api.post("/api/rewards/redemptions", { itemId: item.id }, reviewer.token, entry.key).catch(() => undefined);
        if (res?.status !== 409) redemptions.push(entry);
        if (res?.status === 201) entry.answer = res.body;
      }
    };
    // Two kills, each at a different moment of the storm, and each only once the storm has done some
    // work since the start (a slow machine takes longer to get there; a kill before it would test nothing).
    const answered = () => reports.filter((r) => r.answer).length;
    for (const stormMs of [2500, 1300]) {
      storming = true;
      const before = { reports: answered(), votes: votes.length };
      const storm = Promise.all([...reporters.map((r, lane) => reportLoop(r, lane)), ...reviewers.map(voteLoop)]);
      await new Promise((r) => setTimeout(r, stormMs));
      for (const giveUpAt = Date.now() + 20_000; Date.now() < giveUpAt && (answered() < before.reports + 6 || votes.length < before.votes + 6); )
        await new Promise((r) => setTimeout(r, 100));
      await current().stop();
      storming = false;
      await storm;
      api = await startChild(port);
    }
    expect(reports.filter((r) => r.answer).length).toBeGreaterThan(10);
    expect(votes.length).toBeGreaterThan(10);
    admin = await api.login("admin", ADMIN);

    // Every report, answered or in flight, retried with its key: answered ones keep their ids.
    for (const r of reports) {
      const res = await api.post(
        "/api/governance/reports",
        { reportType: "SPAM", target: { type: "LISTING", id: r.target, authorId: author.id }, reason: "storm" },
        r.reporter.token,
        r.key,
      );
      expect(res.status).toBe(201);
      if (r.answer) expect({ caseId: res.body.caseId, reportId: res.body.reportId }).toEqual({ caseId: r.answer.caseId, reportId: r.answer.reportId });
      r.answer = res.body;
    }
    for (const r of reports) {
      const cases = await api.get(`/api/governance/cases?targetType=LISTING&targetId=${r.target}`, admin.token);
      expect(cases.body.items).toHaveLength(1);
      const view = await api.get(`/api/governance/cases/${cases.body.items[0].id}`, admin.token);
      expect(view.body.reports).toBe(1);
    }

    // Every accepted vote is there.
    for (const v of votes) {
      const view = await api.get(`/api/governance/cases/${v.caseId}`, admin.token);
      const seat = view.body.panel.find((p: { reviewerId: number }) => p.reviewerId === v.reviewer.id);
      expect(seat).toMatchObject({ state: "VOTED", decision: v.decision });
    }

    // Finish every case, then every grant must be there exactly once.
    // A reservation the kill interrupted is cancelled by the sweeper after 15 s, then the case is seated again.
    for (const started = Date.now(); Date.now() - started < 90_000; ) {
      let open = 0;
      await api.get("/api/governance/tasks", admin.token);
      for (const reviewer of reviewers) {
        const tasks = (await api.get("/api/governance/tasks", reviewer.token)).body as { caseId: string }[];
        open += tasks.length;
        for (const task of tasks) await api.post(`/api/governance/cases/${task.caseId}/votes`, { decision: "VIOLATION" }, reviewer.token);
      }
      // Done only when no case is still open or voting: one may be seated between the two looks.
      const waiting = await api.get("/api/governance/cases?status=OPEN", admin.token);
      const voting = await api.get("/api/governance/cases?status=VOTING", admin.token);
      if (open === 0 && waiting.body.items.length === 0 && voting.body.items.length === 0) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const expected = new Map<number, number>();
    const expectedRefs = new Map<number, Map<string, number>>();
    for (const r of reports) {
      const view = (await api.get(`/api/governance/cases/${r.answer!.caseId}`, admin.token)).body;
      expect(["UPHELD", "REJECTED"]).toContain(view.status);
      const grants = grantsFor({
        caseId: view.id,
        verdict: view.verdict,
        coinsPerVote: 5,
        coinsPerCoherentVote: 3,
        panel: view.panel.map((p: { reviewerId: number; decision: "VIOLATION" | null }) => ({ reviewerId: p.reviewerId, decision: p.decision })),
      });
      for (const g of grants) {
        expected.set(g.userId, (expected.get(g.userId) ?? 0) + g.amount);
        if (!expectedRefs.has(g.userId)) expectedRefs.set(g.userId, new Map());
        expectedRefs.get(g.userId)!.set(`grant:${view.id}:${g.userId}`, g.amount);
      }
    }

    // Redemptions retried with their keys: answered ones keep their ids; none is applied twice.
    for (const r of redemptions) {
      const res = await api.post("/api/rewards/redemptions", { itemId: item.id }, r.reviewer.token, r.key);
      if (r.answer) expect(res.body.redemptionId).toBe(r.answer.redemptionId);
    }
    const wholeLedger = async (reviewer: Account) => {
      const items: { amount: number; kind: string; ref: string }[] = [];
      for (let cursor = ""; ; ) {
        const page = (await api.get(`/api/rewards/me/ledger?limit=100${cursor}`, reviewer.token)).body;
        items.push(...page.items);
        if (!page.nextCursor) return items;
        cursor = `&cursor=${page.nextCursor}`;
      }
    };
    for (const reviewer of reviewers) {
      const ledger = await (async () => {
        // Deliveries the killed process held unacknowledged come back after JetStream's ack wait.
        let items: { amount: number; kind: string; ref: string }[] = [];
        for (let i = 0; i < 1200; i++) {
          items = await wholeLedger(reviewer);
          const granted = items.filter((l) => l.kind === "GRANT").reduce((s, l) => s + l.amount, 0);
          if (granted === (expected.get(reviewer.id) ?? 0)) return items;
          await new Promise((r) => setTimeout(r, 50));
        }
        // Name the cases whose grants differ, to tell a lost event from a wrong expectation.
        const want = expectedRefs.get(reviewer.id) ?? new Map<string, number>();
        const got = new Map(items.filter((l) => l.kind === "GRANT").map((l) => [l.ref, l.amount]));
        const differing = [...new Set([...want.keys(), ...got.keys()])].filter((ref) => want.get(ref) !== got.get(ref));
        throw new Error(`grants for ${reviewer.username} never matched: ${differing.map((ref) => `${ref} want ${want.get(ref)} got ${got.get(ref)}`).join(", ")}`);
      })();
      expect(new Set(ledger.map((l) => l.ref)).size).toBe(ledger.length);
      const balance = (await api.get("/api/rewards/me", reviewer.token)).body.balance;
      expect(balance).toBe(ledger.reduce((s, l) => s + l.amount, 0));
      expect(balance).toBeGreaterThanOrEqual(0);
    }
    await current().stop("SIGTERM");
  }, 180_000);
});
