import { randomUUID } from "node:crypto";
import { benchNode, operator, seedReviewers, userMeta, stopBenchNode } from "./support";

/**
 * (a) The governance pipeline in-process: cases opened, the panel voting until decided, coins granted.
 * Counts a case when its grants are in the reward ledger.
 */
export async function governancePipeline(cases = 2000, inFlight = 32) {
  const { node } = await benchNode();
  const { broker } = node;
  const reviewers = await seedReviewers(broker, Number(process.env.BENCH_REVIEWERS ?? 200));
  await broker.call("report.putPolicy", { reportType: "BENCH", panelSize: 5, votesToDecide: 3, voteTimeoutSeconds: 3600, caseTimeoutSeconds: 86_400, maxAlternates: 0, coinsPerVote: 1, coinsPerCoherentVote: 1 }, operator);
  const reporter = 1_000_000;
  let votes = 0;
  let next = 0;
  const started = process.hrtime.bigint();
  const cpuBefore = process.cpuUsage();
  const worker = async () => {
    while (next < cases) {
      const n = next++;
      const opened = await broker.call<{ caseId: string }, object>(
        "report.submit",
        { reportType: "BENCH", target: { type: "LISTING", id: `b-${n}`, authorId: reporter + 1 }, reason: "bench" },
        userMeta(reporter, { idempotencyKey: randomUUID() }),
      );
      const view = await broker.call<{ panel: { reviewerId: number }[] }, object>("report.get", { id: opened.caseId }, operator);
      for (const seat of view.panel) {
        const res = await broker.call<{ caseStatus: string }, object>("report.vote", { id: opened.caseId, decision: "VIOLATION" }, userMeta(seat.reviewerId));
        votes++;
        if (res.caseStatus !== "VOTING") break;
      }
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const decidedAt = process.hrtime.bigint();
  // Every case pays its three coherent voters 2 coins each; wait until the reward service has paid them all.
  for (;;) {
    const balances = await Promise.all(reviewers.map((id) => broker.call<{ balance: number }, object>("reward.balance", {}, userMeta(id))));
    if (balances.reduce((s, b) => s + b.balance, 0) >= cases * 3 * 2) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const rewardedAt = process.hrtime.bigint();
  const cpu = process.cpuUsage(cpuBefore);
  await stopBenchNode(node);
  const decidedSeconds = Number(decidedAt - started) / 1e9;
  const totalSeconds = Number(rewardedAt - started) / 1e9;
  return {
    cases,
    votes,
    decidedCasesPerSecond: Math.round(cases / decidedSeconds),
    votesPerSecond: Math.round(votes / decidedSeconds),
    rewardedCasesPerSecond: Math.round(cases / totalSeconds),
    /** CPU time per case, the steadier figure on a shared machine. */
    cpuMsPerCase: Math.round(((cpu.user + cpu.system) / 1000 / cases) * 100) / 100,
  };
}
