import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { failNext, bankService, shopService } from "../../../test/support/bank";
import { eventually, startTestSystem, type TestSystem } from "../../../test/support/harness";
import { ManualClock } from "../clock/clock";
import { startNode } from "../runtime/system";
import { catalogue } from "../../services/catalog";

let sys: TestSystem;
/** A participant whose step answers as many characters as asked, to see what the log keeps of an answer. */
const echoService = () => ({ name: "echo", actions: { say: (ctx: { params: { chars: number } }) => "x".repeat(ctx.params.chars), unsay: () => null } });
const extra = { bank: bankService, shop: shopService, echo: echoService };

beforeAll(async () => {
  // Few attempts, so injected outages stay under the broker's circuit breaker threshold.
  sys = await startTestSystem({ services: ["gateway", "identity", "tx"], extra, config: { txMaxAttempts: 3 } });
});
afterAll(() => sys?.stop());
beforeEach(() => failNext.clear());

const gid = () => `t-${randomUUID()}`;
async function open(balance: number): Promise<string> {
  const account = `acct-${randomUUID().slice(0, 8)}`;
  await sys.call("bank.open", { account, balance });
  return account;
}
const funds = (account: string) => sys.call<{ balance: number; frozen: number }>("bank.get", { account });
const view = async (id: string) => (await sys.api.get(`/api/platform/tx/${id}`, sys.admin.token)).body;
const branch = (id: string, branchId: string, op: string) => ({ tx: { gid: id, branchId, op } });
/** Moves the clock past a retry's backoff and runs the coordinator's sweep. */
async function later(ms: number) {
  sys.clock.advance(ms);
  await sys.call("tx.tick");
}

describe("branch barrier", () => {
  it("applies a repeated try or confirm once, and a repeated try answers the first result", async () => {
    const a = await open(100);
    const id = gid();
    const first = await sys.call("bank.freeze", { account: a, amount: 30 }, branch(id, "01", "try"));
    const again = await sys.call("bank.freeze", { account: a, amount: 30 }, branch(id, "01", "try"));
    expect(again).toEqual(first);
    expect(await funds(a)).toEqual({ balance: 100, frozen: 30 });
    await sys.call("bank.settle", { account: a, amount: 30 }, branch(id, "01", "confirm"));
    await sys.call("bank.settle", { account: a, amount: 30 }, branch(id, "01", "confirm"));
    expect(await funds(a)).toEqual({ balance: 70, frozen: 0 });
  });

  it("records a cancel whose try never ran, does nothing, and refuses that try when it hangs in later", async () => {
    const a = await open(100);
    const id = gid();
    await sys.call("bank.unfreeze", { account: a, amount: 30 }, branch(id, "01", "cancel"));
    expect(await funds(a)).toEqual({ balance: 100, frozen: 0 });
    await expect(sys.call("bank.freeze", { account: a, amount: 30 }, branch(id, "01", "try"))).rejects.toMatchObject({ type: "TX_BRANCH_CANCELLED", code: 409 });
    expect(await funds(a)).toEqual({ balance: 100, frozen: 0 });
  });

  it("cancels a try once however often the cancel comes", async () => {
    const a = await open(100);
    const id = gid();
    await sys.call("bank.freeze", { account: a, amount: 40 }, branch(id, "01", "try"));
    for (let i = 0; i < 3; i++) await sys.call("bank.unfreeze", { account: a, amount: 40 }, branch(id, "01", "cancel"));
    expect(await funds(a)).toEqual({ balance: 100, frozen: 0 });
  });

  it("treats a try that failed as never run: its cancel is an empty compensation", async () => {
    const a = await open(10);
    const id = gid();
    await expect(sys.call("bank.freeze", { account: a, amount: 40 }, branch(id, "01", "try"))).rejects.toMatchObject({ type: "INSUFFICIENT_FUNDS" });
    await sys.call("bank.unfreeze", { account: a, amount: 40 }, branch(id, "01", "cancel"));
    expect(await funds(a)).toEqual({ balance: 10, frozen: 0 });
  });

  it("refuses a branch action called without a transaction", async () => {
    const a = await open(10);
    await expect(sys.call("bank.freeze", { account: a, amount: 1 })).rejects.toMatchObject({ type: "TX_BRANCH_REQUIRED", code: 400 });
  });
});

describe("saga", () => {
  const transfer = (from: string, to: string, amount: number) => [
    { action: "bank.debit", compensate: "bank.credit", payload: { account: from, amount } },
    { action: "bank.credit", compensate: "bank.debit", payload: { account: to, amount } },
  ];

  it("runs its steps in order and commits", async () => {
    const [a, b] = [await open(100), await open(0)];
    const id = gid();
    const done = await sys.call("tx.saga", { gid: id, steps: transfer(a, b, 25), wait: true });
    expect(done).toMatchObject({ state: "COMMITTED", kind: "SAGA" });
    expect(done.branches.map((x: { state: string }) => x.state)).toEqual(["DONE", "DONE"]);
    expect([(await funds(a)).balance, (await funds(b)).balance]).toEqual([75, 25]);
    // The same gid again is the same saga: nothing moves twice.
    expect(await sys.call("tx.saga", { gid: id, steps: transfer(a, b, 25), wait: true })).toMatchObject({ state: "COMMITTED" });
    expect((await funds(a)).balance).toBe(75);
  });

  it("keeps each step's answer for the operator's view, of a long one its length only", async () => {
    const steps = [500, 600].map((chars) => ({ action: "echo.say", compensate: "echo.unsay", payload: { chars } }));
    const done = await sys.call("tx.saga", { gid: gid(), steps, wait: true });
    expect(done.branches.map((b: { result: unknown }) => b.result)).toEqual(["x".repeat(500), { omittedChars: 602 }]);
  });

  it("compensates the steps before a refused one, in reverse order", async () => {
    const [a, b] = [await open(100), await open(5)];
    const id = gid();
    const steps = [
      { action: "bank.credit", compensate: "bank.debit", payload: { account: a, amount: 10 } },
      { action: "bank.debit", compensate: "bank.credit", payload: { account: b, amount: 50 } },
    ];
    const done = await sys.call("tx.saga", { gid: id, steps, wait: true });
    expect(done).toMatchObject({ state: "COMPENSATED" });
    expect(done.branches.map((x: { state: string }) => x.state)).toEqual(["COMPENSATED", "COMPENSATED"]);
    expect(done.branches[1].lastError).toMatch(/INSUFFICIENT_FUNDS/);
    expect([(await funds(a)).balance, (await funds(b)).balance]).toEqual([100, 5]);
  });

  it("retries a failing step with backoff, then commits", async () => {
    const [a, b] = [await open(100), await open(0)];
    const id = gid();
    failNext.set("credit", 2);
    expect(await sys.call("tx.saga", { gid: id, steps: transfer(a, b, 10), wait: true })).toMatchObject({ state: "RUNNING", attempts: 1 });
    await later(100);
    expect(await view(id)).toMatchObject({ state: "RUNNING", attempts: 1 }); // backoff not over yet
    await later(400);
    expect(await view(id)).toMatchObject({ state: "RUNNING", attempts: 2 });
    await later(1000);
    expect(await view(id)).toMatchObject({ state: "COMMITTED", attempts: 0, lastError: null });
    expect([(await funds(a)).balance, (await funds(b)).balance]).toEqual([90, 10]);
  });

  it("is left STUCK after the last attempt; an operator retries it, or compensates it", async () => {
    const [a, b] = [await open(100), await open(0)];
    const [retried, undone] = [gid(), gid()];
    for (const id of [retried, undone]) {
      failNext.set("credit", 100);
      await sys.call("tx.saga", { gid: id, steps: transfer(a, b, 10), wait: true });
      for (let i = 0; i < 3; i++) await later(30_000);
      expect(await view(id)).toMatchObject({ state: "STUCK", stuckIn: "RUNNING", attempts: 3 });
    }
    const stuck = await sys.api.get("/api/platform/tx?state=STUCK&limit=100", sys.admin.token);
    expect(stuck.body.items.map((t: { gid: string }) => t.gid)).toEqual(expect.arrayContaining([retried, undone]));
    const user = await sys.user();
    expect((await sys.api.post(`/api/platform/tx/${retried}/retry`, {}, user.token)).status).toBe(403);
    failNext.clear();
    const retry = await sys.api.post(`/api/platform/tx/${retried}/retry`, {}, sys.admin.token);
    expect(retry.status).toBe(200);
    expect(retry.body, JSON.stringify(retry.body)).toMatchObject({ state: "COMMITTED" });
    expect((await sys.api.post(`/api/platform/tx/${retried}/retry`, {}, sys.admin.token)).body.error.code).toBe("TX_NOT_STUCK");
    const compensate = await sys.api.post(`/api/platform/tx/${undone}/compensate`, {}, sys.admin.token);
    expect(compensate.body).toMatchObject({ state: "COMPENSATED" });
    // One transfer went through, the other was undone.
    expect([(await funds(a)).balance, (await funds(b)).balance]).toEqual([90, 10]);
    expect((await sys.api.get("/metrics")).body).toMatch(/bazaar_tx_stuck_total\{kind="SAGA"\} [1-9]/);
  });

  it("runs a saga handed over through a service's outbox with its local change", async () => {
    const [a, b] = [await open(100), await open(0)];
    // A long gid: it travels inside the outbox event's id.
    const id = `${"g".repeat(80)}-${randomUUID()}`;
    await sys.call("shop.order", { gid: id, from: a, to: b, amount: 40 });
    expect(await sys.call("shop.getOrder", { gid: id })).toMatchObject({ state: "PLACED" });
    await eventually(async () => (await view(id)).state === "COMMITTED");
    expect([(await funds(a)).balance, (await funds(b)).balance]).toEqual([60, 40]);
  });

  it("refuses bad input with the field named", async () => {
    const res = await sys.call("tx.saga", { gid: gid(), steps: [] }).catch((e) => e);
    expect(res).toMatchObject({ code: 400, type: "VALIDATION_FAILED", data: { field: "steps" } });
    expect((await sys.api.get("/api/platform/tx/nope", sys.admin.token)).status).toBe(404);
    expect((await sys.api.get("/api/platform/tx?cursor=zzz", sys.admin.token)).body.error.code).toBe("CURSOR_INVALID");
  });
});

describe("TCC", () => {
  it("confirms every branch when the initiator commits", async () => {
    const a = await open(100);
    const id = gid();
    await sys.call("shop.pay", { gid: id, from: a, amount: 30 });
    await eventually(async () => (await view(id)).state === "COMMITTED");
    expect(await funds(a)).toEqual({ balance: 70, frozen: 0 });
    expect((await view(id)).branches[0]).toMatchObject({ state: "CONFIRMED", action: "bank.freeze", result: { balance: 100, frozen: 30 } });
  });

  it("cancels when a try is refused, and refuses to commit a transaction with a failed branch", async () => {
    const a = await open(10);
    const id = gid();
    await expect(sys.call("shop.pay", { gid: id, from: a, amount: 30 })).rejects.toMatchObject({ type: "INSUFFICIENT_FUNDS" });
    await eventually(async () => (await view(id)).state === "COMPENSATED");
    expect(await funds(a)).toEqual({ balance: 10, frozen: 0 });

    const other = gid();
    await expect(
      sys.call("tx.tryBranch", { gid: other, initiator: "shop", action: "bank.freeze", confirm: "bank.settle", cancel: "bank.unfreeze", payload: { account: a, amount: 99 } }),
    ).rejects.toMatchObject({ type: "INSUFFICIENT_FUNDS" });
    await expect(sys.call("tx.commit", { gid: other })).rejects.toMatchObject({ type: "TX_BRANCH_NOT_TRIED" });
  });

  it("asks a silent initiator: a local commit is confirmed", async () => {
    const a = await open(100);
    const id = gid();
    await sys.call("shop.payThenVanish", { gid: id, from: a, amount: 20 });
    await later(4_000);
    expect((await view(id)).state).toBe("TRYING");
    await later(2_000);
    await eventually(async () => (await view(id)).state === "COMMITTED");
    expect(await funds(a)).toEqual({ balance: 80, frozen: 0 });
  });

  it("asks a silent initiator: no decision means rollback, recorded so a late commit is refused", async () => {
    const a = await open(100);
    const id = gid();
    await sys.call("shop.tryThenVanish", { gid: id, from: a, amount: 20 });
    expect(await funds(a)).toEqual({ balance: 100, frozen: 20 });
    await later(6_000);
    await eventually(async () => (await view(id)).state === "COMPENSATED");
    expect(await funds(a)).toEqual({ balance: 100, frozen: 0 });
    expect(await sys.call("shop.txDecision", { gid: id })).toEqual({ gid: id, decision: "ROLLED_BACK" });
    await expect(sys.call("tx.tryBranch", { gid: id, initiator: "shop", action: "bank.freeze", confirm: "bank.settle", cancel: "bank.unfreeze", payload: { account: a, amount: 1 } })).rejects.toMatchObject({
      type: "TX_NOT_TRYING",
    });
  });

  it("records an abort that arrives before any branch, so a late branch is refused", async () => {
    const a = await open(100);
    const id = gid();
    await sys.call("tx.abort", { gid: id });
    const late = { gid: id, initiator: "shop", action: "bank.freeze", confirm: "bank.settle", cancel: "bank.unfreeze", payload: { account: a, amount: 1 } };
    await expect(sys.call("tx.tryBranch", late)).rejects.toMatchObject({ type: "TX_NOT_TRYING" });
    expect(await funds(a)).toEqual({ balance: 100, frozen: 0 });
    await eventually(async () => (await view(id)).state === "COMPENSATED");
  });

  it("will not compensate a TCC transaction stuck while confirming", async () => {
    const a = await open(100);
    const id = gid();
    failNext.set("settle", 100);
    await sys.call("shop.pay", { gid: id, from: a, amount: 5 });
    await eventually(async () => (await view(id)).attempts >= 1);
    for (let i = 0; i < 3; i++) await later(30_000);
    expect(await view(id)).toMatchObject({ state: "STUCK", stuckIn: "CONFIRMING" });
    expect((await sys.api.post(`/api/platform/tx/${id}/compensate`, {}, sys.admin.token)).body.error.code).toBe("TX_CANNOT_COMPENSATE");
    failNext.clear();
    expect((await sys.api.post(`/api/platform/tx/${id}/retry`, {}, sys.admin.token)).body).toMatchObject({ state: "COMMITTED" });
    expect(await funds(a)).toEqual({ balance: 95, frozen: 0 });
  });
});

describe("coordinator restart", () => {
  it("resumes an unfinished saga from its log", async () => {
    const clock = new ManualClock(Date.now());
    const own = await startTestSystem({ services: ["gateway", "identity", "tx"], extra, clock });
    const boot = () => startNode(own.config, { catalogue: { ...catalogue, ...extra }, services: ["tx", "bank", "shop"], clock, processMetrics: false });
    try {
      await own.call("bank.open", { account: "a", balance: 100 });
      await own.call("bank.open", { account: "b", balance: 0 });
      failNext.set("credit", 1);
      const id = gid();
      await own.call("tx.saga", {
        gid: id,
        steps: [
          { action: "bank.debit", compensate: "bank.credit", payload: { account: "a", amount: 10 } },
          { action: "bank.credit", compensate: "bank.debit", payload: { account: "b", amount: 10 } },
        ],
        wait: true,
      });
      await own.node.stop();
      const again = await boot();
      try {
        clock.advance(1_000);
        await again.broker.call("tx.tick");
        const done = await again.broker.call<{ state: string }, object>("tx.get", { gid: id }, { meta: { user: { id: 1, username: "admin", roles: ["admin"] } } });
        expect(done.state).toBe("COMMITTED");
        expect(await again.broker.call("bank.get", { account: "b" })).toEqual({ balance: 10, frozen: 0 });
      } finally {
        await again.stop();
      }
    } finally {
      await own.stop();
    }
  });
});
