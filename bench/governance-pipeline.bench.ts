import { randomUUID } from "node:crypto";
import type { Platform } from "../src/platform/runtime/platform";
import { ReportEvents, type TaskInvited } from "../src/services/governance/report/report.contract";
import { benchNode, operator, seedReviewers, userMeta, stopBenchNode } from "./support";

const REPORTER = 1_000_000;
const PANEL_SIZE = 5;

/**
 * A node with every service, the bench's reviewers enrolled and a 5-seat policy (3 votes decide, one
 * coin a vote and one more when coherent); `open` reports a listing of its own and answers the case;
 * `panelOf` answers a case's reviewers once their invitations have arrived.
 */
async function governanceFloor() {
  const { node } = await benchNode();
  const { broker } = node;
  const reviewers = await seedReviewers(broker, Number(process.env.BENCH_REVIEWERS ?? 200));
  await broker.call("report.putPolicy", { reportType: "BENCH", panelSize: PANEL_SIZE, votesToDecide: 3, voteTimeoutSeconds: 3600, caseTimeoutSeconds: 86_400, maxAlternates: 0, coinsPerVote: 1, coinsPerCoherentVote: 1 }, operator);
  const open = async (listing: string) =>
    (
      await broker.call<{ caseId: string }, object>(
        "report.submit",
        { reportType: "BENCH", target: { type: "LISTING", id: listing, authorId: REPORTER + 1 }, reason: "bench" },
        userMeta(REPORTER, { idempotencyKey: randomUUID() }),
      )
    ).caseId;
  const invitations = await invitationFeed(node.platform, PANEL_SIZE);
  return { node, broker, reviewers, open, panelOf: invitations.panelOf };
}

/**
 * The reviewers' side of the push: the invitations the report service publishes, one per seat,
 * consumed from the stream as a notification system outside the platform would (a durable consumer of
 * its own). Answers a case's panel, in the order its invitations arrived, once every seat has one.
 */
async function invitationFeed(platform: Platform, panelSize: number) {
  const arriving = new Map<string, Set<number>>();
  const complete = new Map<string, number[]>();
  const waiting = new Map<string, (panel: number[]) => void>();
  const take = (invitation: TaskInvited) => {
    const { caseId, reviewerId } = invitation;
    let seats = arriving.get(caseId);
    if (!seats) arriving.set(caseId, (seats = new Set()));
    seats.add(reviewerId);
    if (seats.size < panelSize) return;
    arriving.delete(caseId);
    const waiter = waiting.get(caseId);
    if (!waiter) complete.set(caseId, [...seats]);
    else {
      waiting.delete(caseId);
      waiter([...seats]);
    }
  };
  await platform.stream.consume({
    durable: "bench-reviewers",
    subject: ReportEvents.invited,
    handler: async (m) => take(m.data as TaskInvited),
    batch: { maxBatch: 256, handler: async (messages) => messages.forEach((m) => take(m.data as TaskInvited)) },
  });
  return {
    panelOf(caseId: string): Promise<number[]> {
      const panel = complete.get(caseId);
      if (!panel) return new Promise((resolve) => waiting.set(caseId, resolve));
      complete.delete(caseId);
      return Promise.resolve(panel);
    },
  };
}

/**
 * (a) The governance pipeline in-process: cases opened, the panel voting until decided, coins granted.
 * Counts a case when its grants are in the reward ledger. A panel's reviewers learn of their seats
 * from their invitations (the push) and vote one after the other until the case is decided.
 *
 * With `warmup` > 0, that many cases run first on the same node and are not counted: the figures are
 * then the steady state of a running node, its code compiled by the JIT (a cold round of 3,000 cases
 * spent 12–15 % more CPU a case than the warm one after it). The warm-up round's figures come back as `cold`;
 * with `rounds` > 1, that many rounds are measured after it and the median (by CPU a case) is answered.
 */
export async function governancePipeline(cases = 2000, inFlight = 32, warmup = 0, rounds = 1) {
  const { node, broker, reviewers, open, panelOf } = await governanceFloor();
  /** Cases opened on this node so far: each gets a target of its own. */
  let total = 0;

  async function round(count: number) {
    let votes = 0;
    let next = 0;
    const first = total;
    total += count;
    const started = process.hrtime.bigint();
    const cpuBefore = process.cpuUsage();
    const loopBefore = performance.eventLoopUtilization();
    const worker = async () => {
      while (next < count) {
        const caseId = await open(`b-${first + next++}`);
        for (const reviewerId of await panelOf(caseId)) {
          const res = await broker.call<{ caseStatus: string }, object>("report.vote", { id: caseId, decision: "VIOLATION" }, userMeta(reviewerId));
          votes++;
          if (res.caseStatus !== "VOTING") break;
        }
      }
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
    const decidedAt = process.hrtime.bigint();
    const loop = performance.eventLoopUtilization(loopBefore);
    // Every case pays its three coherent voters 2 coins each; wait until the reward service has paid them all.
    for (;;) {
      const balances = await Promise.all(reviewers.map((id) => broker.call<{ balance: number }, object>("reward.balance", {}, userMeta(id))));
      if (balances.reduce((s, b) => s + b.balance, 0) >= total * 3 * 2) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    const rewardedAt = process.hrtime.bigint();
    const cpu = process.cpuUsage(cpuBefore);
    const decidedSeconds = Number(decidedAt - started) / 1e9;
    const totalSeconds = Number(rewardedAt - started) / 1e9;
    return {
      cases: count,
      votes,
      decidedCasesPerSecond: Math.round(count / decidedSeconds),
      votesPerSecond: Math.round(votes / decidedSeconds),
      rewardedCasesPerSecond: Math.round(count / totalSeconds),
      /** CPU time per case, the steadier figure on a shared machine. */
      cpuMsPerCase: Math.round(((cpu.user + cpu.system) / 1000 / count) * 100) / 100,
      /** The share of the deciding time the main thread was busy: near 1, one core is what bounds the rate. */
      eventLoopBusy: Math.round(loop.utilization * 100) / 100,
    };
  }

  try {
    if (warmup === 0) return await round(cases);
    const cold = await round(warmup);
    const measured: Awaited<ReturnType<typeof round>>[] = [];
    for (let i = 0; i < rounds; i++) measured.push(await round(cases));
    // The median round by CPU a case (the steadier figure), with every round's: a shared VM's speed
    // moves by a fifth within minutes, so one round alone says little.
    const median = [...measured].sort((a, b) => a.cpuMsPerCase - b.cpuMsPerCase)[Math.floor(rounds / 2)];
    return {
      ...median,
      warmup,
      cold: { decidedCasesPerSecond: cold.decidedCasesPerSecond, cpuMsPerCase: cold.cpuMsPerCase },
      ...(rounds > 1 ? { rounds: measured.map((r) => ({ decidedCasesPerSecond: r.decidedCasesPerSecond, cpuMsPerCase: r.cpuMsPerCase, eventLoopBusy: r.eventLoopBusy })) } : {}),
    };
  } finally {
    await stopBenchNode(node);
  }
}

/**
 * Where a case's CPU goes, phase by phase, on one node: every case opened first (report, draw,
 * seating through the coordinator, invitations relayed and received), then two votes on each
 * (undecided), then the deciding vote (verdict,
 * release of the seats, grants, profile). Each phase's CPU runs from its start until the node is idle
 * again, so the work its events cause in consumers counts in it; figures are ms CPU a case.
 * `npm run bench -- phases`: a diagnostic for choosing what to change, not a throughput figure.
 */
export async function governancePhases(cases = 3000, inFlight = 32) {
  const { node, broker, open, panelOf } = await governanceFloor();

  /** Runs `work` for every case, `inFlight` at a time, and answers the CPU spent until the node is idle again, a case. */
  async function phase(work: (i: number) => Promise<void>): Promise<number> {
    const before = process.cpuUsage();
    let next = 0;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (next < cases) await work(next++);
      }),
    );
    await idle();
    const cpu = process.cpuUsage(before);
    return Math.round(((cpu.user + cpu.system) / 1000 / cases) * 1000) / 1000;
  }

  try {
    const ids: string[] = [];
    const panels: number[][] = [];
    // A first round of as many cases, not counted (left open): the JIT compiles the paths before they are measured.
    await phase(async (i) => void (await open(`warm-${i}`)));
    const opened = await phase(async (i) => {
      ids[i] = await open(`p-${i}`);
      panels[i] = await panelOf(ids[i]);
    });
    const vote = (i: number, seat: number) => broker.call("report.vote", { id: ids[i], decision: "VIOLATION" }, userMeta(panels[i][seat]));
    const undecided = await phase(async (i) => {
      await vote(i, 0);
      await vote(i, 1);
    });
    const deciding = await phase(async (i) => void (await vote(i, 2)));
    const total = Math.round((opened + undecided + deciding) * 1000) / 1000;
    return { cases, inFlight, cpuMsPerCase: { opened, twoVotes: undecided, decidingVoteAndOutcome: deciding, total } };
  } finally {
    await stopBenchNode(node);
  }
}

/** Waits until the process has used under 5 % of a core for three 100 ms samples in a row: its consumers and relays are done. */
async function idle(): Promise<void> {
  for (let quiet = 0; quiet < 3; ) {
    const before = process.cpuUsage();
    await new Promise((r) => setTimeout(r, 100));
    const cpu = process.cpuUsage(before);
    quiet = (cpu.user + cpu.system) / 1000 < 5 ? quiet + 1 : 0;
  }
}
