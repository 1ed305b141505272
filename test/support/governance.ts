import { randomUUID } from "node:crypto";
import type { TestSystem } from "./harness";

export type Member = { token: string; id: number; username: string };

export const SPAM = {
  panelSize: 3,
  votesToDecide: 2,
  voteTimeoutSeconds: 60,
  caseTimeoutSeconds: 600,
  maxAlternates: 2,
  coinsPerVote: 5,
  coinsPerCoherentVote: 3,
};

/** Registers `n` users and enrols each as a reviewer. */
export async function enrolReviewers(sys: TestSystem, n: number): Promise<Member[]> {
  const members: Member[] = [];
  for (let i = 0; i < n; i++) {
    const m = await sys.user();
    const res = await sys.api.post("/api/governance/reviewers/me/enrol", {}, m.token);
    if (res.status !== 200) throw new Error(`enrol: ${res.status} ${JSON.stringify(res.body)}`);
    members.push(m);
  }
  return members;
}

export async function putPolicy(sys: TestSystem, reportType: string, policy: object = SPAM) {
  const res = await sys.api.put(`/api/governance/policies/${reportType}`, policy, sys.admin.token);
  if (res.status !== 200) throw new Error(`policy: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

export async function report(sys: TestSystem, reporter: Member, targetId: string, authorId: number, reportType = "SPAM", key = randomUUID()) {
  return sys.api.post(
    "/api/governance/reports",
    { reportType, target: { type: "LISTING", id: targetId, authorId }, reason: "spam listing" },
    reporter.token,
    key,
  );
}

/** The panel of a case, seen by the operator. */
export async function panelOf(sys: TestSystem, caseId: string): Promise<{ reviewerId: number; state: string; decision: string | null }[]> {
  const res = await sys.api.get(`/api/governance/cases/${caseId}`, sys.admin.token);
  return res.body.panel;
}

export function byId(members: Member[], id: number): Member {
  const m = members.find((x) => x.id === id);
  if (!m) throw new Error(`no member ${id}`);
  return m;
}

export function vote(sys: TestSystem, member: Member, caseId: string, decision: "VIOLATION" | "NO_VIOLATION") {
  return sys.api.post(`/api/governance/cases/${caseId}/votes`, { decision }, member.token);
}
