import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { byId, enrolReviewers, type Member, panelOf, putPolicy, report, vote } from "../../../../test/support/governance";
import { eventually, startTestSystem, type TestSystem } from "../../../../test/support/harness";
import type { CaseDecided } from "../report/report.contract";

let sys: TestSystem;
let pool: Member[];
let reporter: Member;
let author: Member;
/** Two reviewers who earned 8 coins in the first test; the mall tests spend them. */
let earners: Member[] = [];

beforeAll(async () => {
  sys = await startTestSystem();
  pool = await enrolReviewers(sys, 5);
  reporter = await sys.user();
  author = await sys.user();
  await putPolicy(sys, "SPAM");
});
afterAll(() => sys?.stop());

const balance = async (m: Member) => (await sys.api.get("/api/rewards/me", m.token)).body.balance as number;

describe("grants", () => {
  it("pays voters on the verdict, the bonus only to coherent ones, nothing to non-voters, once whatever the redeliveries", async () => {
    const opened = await report(sys, reporter, "reward-1", author.id);
    const caseId = opened.body.caseId;
    const [a, b, c] = (await panelOf(sys, caseId)).map((p) => byId(pool, p.reviewerId));
    await vote(sys, a, caseId, "VIOLATION");
    await vote(sys, b, caseId, "NO_VIOLATION");
    await vote(sys, c, caseId, "VIOLATION");
    await eventually(async () => (await balance(a)) === 8 && (await balance(b)) === 5 && (await balance(c)) === 8);
    earners = [a, c];
    await eventually(async () => /bazaar_reward_coins_granted_total\{coherent="true"\} 16/.test((await sys.api.get("/metrics")).body));

    const panel = await panelOf(sys, caseId);
    const redelivered: CaseDecided = {
      caseId,
      reportType: "SPAM",
      target: { type: "LISTING", id: "reward-1", authorId: author.id },
      verdict: "UPHELD",
      decidedBy: "PANEL",
      decidedAt: sys.clock.now(),
      appealOf: null,
      coinsPerVote: 5,
      coinsPerCoherentVote: 3,
      panel: panel.map((p) => ({ reviewerId: p.reviewerId, state: p.state as "VOTED", decision: p.decision as "VIOLATION" })),
    };
    await sys.node.platform.stream.publish("governance.case.decided", redelivered, { id: `redelivery-${caseId}` });
    await new Promise((r) => setTimeout(r, 300));
    expect([await balance(a), await balance(b), await balance(c)]).toEqual([8, 5, 8]);
    const ledger = await sys.api.get("/api/rewards/me/ledger", a.token);
    expect(ledger.body.items).toEqual([expect.objectContaining({ amount: 8, kind: "GRANT", ref: `grant:${caseId}:${a.id}`, balanceAfter: 8 })]);
  });
});

describe("grants in a batch", () => {
  it("pays verdicts that arrive together: each grant once, a reviewer's balances following one another, new accounts opened", async () => {
    const [x, y] = [await sys.user(), await sys.user()];
    const verdict = (caseId: string, seats: [Member, "VIOLATION" | "NO_VIOLATION"][]): CaseDecided => ({
      caseId,
      reportType: "SPAM",
      target: { type: "LISTING", id: caseId, authorId: author.id },
      verdict: "UPHELD",
      decidedBy: "PANEL",
      decidedAt: sys.clock.now(),
      appealOf: null,
      coinsPerVote: 2,
      coinsPerCoherentVote: 1,
      panel: seats.map(([m, decision]) => ({ reviewerId: m.id, state: "VOTED" as const, decision })),
    });
    const first = verdict(`batch-${x.id}-1`, [
      [x, "VIOLATION"],
      [y, "NO_VIOLATION"],
    ]);
    const second = verdict(`batch-${x.id}-2`, [[x, "VIOLATION"]]);
    const decided = (v: CaseDecided, id: string) => ({ subject: "governance.case.decided", json: JSON.stringify(v), id });
    // The same verdict a second time under another event id, in the same batch.
    await sys.node.platform.stream.publishAll([decided(first, `${first.caseId}`), decided(second, `${second.caseId}`), decided(first, `${first.caseId}-again`)]);
    await eventually(async () => (await balance(x)) === 6 && (await balance(y)) === 2);
    await new Promise((r) => setTimeout(r, 300));
    expect([await balance(x), await balance(y)]).toEqual([6, 2]);
    const ledger = (await sys.api.get("/api/rewards/me/ledger", x.token)).body.items as { ref: string; balanceAfter: number }[];
    expect(ledger.map((l) => [l.ref, l.balanceAfter]).sort((a, b) => Number(a[1]) - Number(b[1]))).toEqual([
      [`grant:${first.caseId}:${x.id}`, 3],
      [`grant:${second.caseId}:${x.id}`, 6],
    ]);
  });
});

describe("points mall", () => {
  it("lets operators stock items and refuses bad ones", async () => {
    const u = await sys.user();
    expect((await sys.api.post("/api/rewards/items", { name: "Mug", price: 5, stock: 1 }, u.token)).status).toBe(403);
    const bad = await sys.api.post("/api/rewards/items", { name: "Mug", price: 1.5, stock: 1 }, sys.admin.token);
    expect(bad.body.error.field).toBe("price");
    const created = await sys.api.post("/api/rewards/items", { name: "Mug", price: 5, stock: 1 }, sys.admin.token);
    expect(created.status).toBe(201);
    const items = await sys.api.get("/api/rewards/items", u.token);
    expect(items.body).toContainEqual({ id: created.body.id, name: "Mug", price: 5, stock: 1 });
  });

  it("debits coins and stock together, answers a retry with the first result, and refuses overdrafts and empty stock", async () => {
    const rich = earners[0];
    const coins = await balance(rich);
    const item = (await sys.api.post("/api/rewards/items", { name: "Sticker", price: 3, stock: 2 }, sys.admin.token)).body;
    const key = randomUUID();
    const first = await sys.api.post("/api/rewards/redemptions", { itemId: item.id }, rich.token, key);
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ itemId: item.id, price: 3, balance: coins - 3 });
    const retry = await sys.api.post("/api/rewards/redemptions", { itemId: item.id }, rich.token, key);
    expect(retry.body).toEqual(first.body);
    expect(await balance(rich)).toBe(coins - 3);

    const poor = await sys.user();
    const overdraft = await sys.api.post("/api/rewards/redemptions", { itemId: item.id }, poor.token, randomUUID());
    expect(overdraft.status).toBe(409);
    expect(overdraft.body.error.code).toBe("INSUFFICIENT_COINS");

    await sys.api.post("/api/rewards/redemptions", { itemId: item.id }, rich.token, randomUUID());
    const empty = await sys.api.post("/api/rewards/redemptions", { itemId: item.id }, rich.token, randomUUID());
    expect(empty.body.error.code).toBe("OUT_OF_STOCK");
    expect(await balance(rich)).toBe(coins - 6);
    expect((await sys.api.post("/api/rewards/redemptions", { itemId: 999999 }, rich.token, randomUUID())).status).toBe(404);
    expect((await sys.api.post("/api/rewards/redemptions", { itemId: item.id }, rich.token)).body.error.code).toBe("IDEMPOTENCY_KEY_REQUIRED");
  });

  it("never overdraws under concurrent redemptions", async () => {
    const spender = earners[1];
    const coins = await balance(spender);
    expect(coins).toBe(8);
    const item = (await sys.api.post("/api/rewards/items", { name: "Pin", price: 1, stock: 1000 }, sys.admin.token)).body;
    const attempts = await Promise.all(
      Array.from({ length: coins + 5 }, () => sys.api.post("/api/rewards/redemptions", { itemId: item.id }, spender.token, randomUUID())),
    );
    expect(attempts.filter((r) => r.status === 201)).toHaveLength(coins);
    expect(attempts.filter((r) => r.status === 409).every((r) => r.body.error.code === "INSUFFICIENT_COINS")).toBe(true);
    expect(await balance(spender)).toBe(0);
    const items = await sys.api.get("/api/rewards/items", spender.token);
    expect(items.body.find((i: { id: number }) => i.id === item.id).stock).toBe(1000 - coins);
  });
});
