import { randomUUID } from "node:crypto";
import { benchNode, operator, seedReviewers, userMeta } from "./support";
(async () => {
  const { node } = await benchNode();
  const { broker } = node;
  await seedReviewers(broker, 200);
  await broker.call("report.putPolicy", { reportType: "BIG", panelSize: 51, votesToDecide: 26, voteTimeoutSeconds: 86_400, caseTimeoutSeconds: 86_400, maxAlternates: 0, coinsPerVote: 1, coinsPerCoherentVote: 1 }, operator);
  const votes: [string, number, string][] = [];
  for (let n = 0; n < 200; n++) {
    const opened = await broker.call<{ caseId: string }, object>("report.submit", { reportType: "BIG", target: { type: "POST", id: `v-${n}`, authorId: 9_999_999 }, reason: "bench" }, userMeta(9_999_998, { idempotencyKey: randomUUID() }));
    const view = await broker.call<{ panel: { reviewerId: number }[] }, object>("report.get", { id: opened.caseId }, operator);
    view.panel.forEach((s, i) => votes.push([opened.caseId, s.reviewerId, i % 2 ? "NO_VIOLATION" : "VIOLATION"]));
  }
  const cpu0 = process.cpuUsage(); const t0 = Date.now();
  let next = 0;
  await Promise.all(Array.from({ length: 10 }, async () => { while (next < votes.length) { const [id, r, d] = votes[next++]; await broker.call("report.vote", { id, decision: d }, userMeta(r)).catch(() => 0); } }));
  const cpu = process.cpuUsage(cpu0);
  console.log("votes", votes.length, "wall ms", Date.now() - t0, "cpu µs/vote", Math.round((cpu.user + cpu.system) / votes.length));
  await node.stop(); process.exit(0);
})();
