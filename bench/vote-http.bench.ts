import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { TokenSigner } from "../src/platform/gateway/jwt";
import { benchNode, operator, seedReviewers, userMeta, stopBenchNode } from "./support";

/**
 * (b) The vote API over HTTP: a separate process (autocannon) posts every seat's vote once.
 * Panels of 51 deciding at 26, with alternating decisions, so every vote is accepted (201).
 */
export async function voteHttp(cases = 400, connections = 32) {
  const { node, dataDir } = await benchNode();
  const { broker } = node;
  const reviewers = await seedReviewers(broker, 200);
  await broker.call("report.putPolicy", { reportType: "BIG", panelSize: 51, votesToDecide: 26, voteTimeoutSeconds: 86_400, caseTimeoutSeconds: 86_400, maxAlternates: 0, coinsPerVote: 1, coinsPerCoherentVote: 1 }, operator);
  const signer = TokenSigner.fromConfig(node.platform.config);
  const tokens = new Map<number, string>();
  for (const id of reviewers) tokens.set(id, await signer.sign({ id, username: `u${id}`, roles: ["user", "reviewer"] }, 3600, Date.now()));
  const votes: { token: string; caseId: string; decision: string }[] = [];
  for (let n = 0; n < cases; n++) {
    const opened = await broker.call<{ caseId: string }, object>(
      "report.submit",
      { reportType: "BIG", target: { type: "POST", id: `v-${n}`, authorId: 9_999_999 }, reason: "bench" },
      userMeta(9_999_998, { idempotencyKey: randomUUID() }),
    );
    const view = await broker.call<{ panel: { reviewerId: number }[] }, object>("report.get", { id: opened.caseId }, operator);
    view.panel.forEach((seat, i) =>
      votes.push({ token: tokens.get(seat.reviewerId)!, caseId: opened.caseId, decision: i % 2 === 0 ? "VIOLATION" : "NO_VIOLATION" }),
    );
  }
  // Interleave cases so concurrent requests rarely wait on the same case's row.
  votes.sort((a, b) => (a.token < b.token ? -1 : 1));
  const file = path.join(dataDir, "votes.json");
  writeFileSync(file, JSON.stringify(votes));
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", path.join(__dirname, "vote-load.ts"), node.url!, file, String(connections)], {
    maxBuffer: 1 << 20,
  });
  await stopBenchNode(node);
  return { votes: votes.length, connections, ...JSON.parse(stdout) };
}
