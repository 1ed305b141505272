/**
 * The case: how a report becomes a verdict. Pure rules, no I/O; the service feeds them rows.
 */

export const DECISIONS = ["VIOLATION", "NO_VIOLATION"] as const;
export type Decision = (typeof DECISIONS)[number];

export const TARGET_TYPES = ["LISTING", "POST", "COMMENT", "MESSAGE", "REVIEW"] as const;
export type TargetType = (typeof TARGET_TYPES)[number];

export type CaseStatus = "OPEN" | "VOTING" | "UPHELD" | "REJECTED" | "EXPIRED";
export type Verdict = "UPHELD" | "REJECTED" | "EXPIRED";
export type DecidedBy = "PANEL" | "OPERATOR" | "TIMEOUT";
/**
 * INVITED: may vote until the deadline; VOTED; REPLACED: missed the deadline, an alternate took the
 * seat; TIMED_OUT: missed it with no alternate left; RELEASED: the case was decided before this seat
 * voted (it held the reviewer until then).
 */
export type PanelState = "INVITED" | "VOTED" | "REPLACED" | "TIMED_OUT" | "RELEASED";

export interface Policy {
  reportType: string;
  panelSize: number;
  votesToDecide: number;
  voteTimeoutSeconds: number;
  caseTimeoutSeconds: number;
  maxAlternates: number;
  coinsPerVote: number;
  coinsPerCoherentVote: number;
  appealWindowSeconds: number;
}

const TRANSITIONS: Record<CaseStatus, readonly CaseStatus[]> = {
  OPEN: ["VOTING", "UPHELD", "REJECTED", "EXPIRED"],
  VOTING: ["UPHELD", "REJECTED", "EXPIRED"],
  UPHELD: [],
  REJECTED: [],
  EXPIRED: [],
};

export function canTransition(from: CaseStatus, to: CaseStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export function isOpen(status: CaseStatus): boolean {
  return status === "OPEN" || status === "VOTING";
}

/**
 * What a viewer may see of a case beyond its status and verdict:
 * - NONE while it is open, for everyone but operators: no panelist learns how others vote;
 * - OUTCOME once decided: the tally and each seat's state and decision, but not who sat where, so the
 *   reported author cannot single out reviewers;
 * - FULL for operators, always: reviewer ids and the draws (seed and eligible list) to audit them.
 */
export type Visibility = "NONE" | "OUTCOME" | "FULL";

export function visibility(status: CaseStatus, viewerIsOperator: boolean): Visibility {
  if (viewerIsOperator) return "FULL";
  return isOpen(status) ? "NONE" : "OUTCOME";
}

/** Why a policy cannot work, or null. A majority threshold keeps both sides from winning at once. */
export function policyProblem(p: Omit<Policy, "reportType">): { field: keyof Policy; message: string } | null {
  if (p.votesToDecide > p.panelSize) return { field: "votesToDecide", message: "cannot exceed panelSize" };
  if (p.votesToDecide * 2 <= p.panelSize)
    return { field: "votesToDecide", message: "must be a majority of panelSize (more than half)" };
  if (p.caseTimeoutSeconds < p.voteTimeoutSeconds)
    return { field: "caseTimeoutSeconds", message: "must be at least voteTimeoutSeconds" };
  return null;
}

export interface Tally {
  violation: number;
  noViolation: number;
}

export function addVote(tally: Tally, decision: Decision): Tally {
  return decision === "VIOLATION"
    ? { violation: tally.violation + 1, noViolation: tally.noViolation }
    : { violation: tally.violation, noViolation: tally.noViolation + 1 };
}

/** The verdict as soon as one side reaches the threshold; null while undecided. */
export function verdictOf(tally: Tally, votesToDecide: number): "UPHELD" | "REJECTED" | null {
  if (tally.violation >= votesToDecide) return "UPHELD";
  if (tally.noViolation >= votesToDecide) return "REJECTED";
  return null;
}

/** A vote agrees with the verdict when it points the same way; an expired case has no verdict to agree with. */
export function isCoherent(decision: Decision, verdict: Verdict): boolean {
  return (decision === "VIOLATION" && verdict === "UPHELD") || (decision === "NO_VIOLATION" && verdict === "REJECTED");
}

export type VoteRefusal =
  | { status: 409; code: "CASE_NOT_VOTING"; message: string }
  | { status: 403; code: "NOT_ON_PANEL"; message: string }
  | { status: 409; code: "ALREADY_VOTED"; message: string }
  | { status: 403; code: "SEAT_REPLACED"; message: string }
  | { status: 409; code: "VOTE_DEADLINE_PASSED"; message: string };

export function voteRefusal(
  caseStatus: CaseStatus,
  member: { state: PanelState; deadlineAt: number } | undefined,
  now: number,
): VoteRefusal | null {
  if (caseStatus !== "VOTING")
    return { status: 409, code: "CASE_NOT_VOTING", message: `the case is ${caseStatus}, not taking votes` };
  if (!member) return { status: 403, code: "NOT_ON_PANEL", message: "you are not on this case's panel" };
  if (member.state === "VOTED") return { status: 409, code: "ALREADY_VOTED", message: "you have already voted on this case" };
  if (member.state !== "INVITED")
    return { status: 403, code: "SEAT_REPLACED", message: "your seat on this panel passed to an alternate" };
  if (now >= member.deadlineAt)
    return { status: 409, code: "VOTE_DEADLINE_PASSED", message: "your voting deadline has passed" };
  return null;
}

/** An appeal is judged by a fresh panel of 2n+1 that needs a plain majority. */
export function appealPanel(panelSize: number): { panelSize: number; votesToDecide: number } {
  return { panelSize: panelSize * 2 + 1, votesToDecide: panelSize + 1 };
}

export type AppealRefusal = { status: 403 | 409; code: string; message: string };

export function appealRefusal(
  c: {
    status: CaseStatus;
    round: number;
    decidedBy: DecidedBy | null;
    appealedBy: string | null;
    decidedAt: number | null;
    targetAuthorId: number;
    appealWindowSeconds: number;
  },
  userId: number,
  now: number,
): AppealRefusal | null {
  if (userId !== c.targetAuthorId)
    return { status: 403, code: "NOT_TARGET_AUTHOR", message: "only the author of the reported content may appeal" };
  if (c.round > 1) return { status: 409, code: "APPEAL_IS_FINAL", message: "an appeal's decision is final" };
  if (c.decidedBy === "OPERATOR")
    return { status: 409, code: "OPERATOR_DECISION_FINAL", message: "an operator's decision is binding and cannot be appealed" };
  if (c.status !== "UPHELD")
    return { status: 409, code: "NOTHING_TO_APPEAL", message: `only an UPHELD case can be appealed; this one is ${c.status}` };
  if (c.appealedBy) return { status: 409, code: "ALREADY_APPEALED", message: "this case has already been appealed" };
  if (c.decidedAt === null || now > c.decidedAt + c.appealWindowSeconds * 1000)
    return { status: 409, code: "APPEAL_WINDOW_CLOSED", message: "the appeal window has closed" };
  return null;
}

/** The target a case is open on; reports on the same target join the open case. */
export function openKey(targetType: TargetType, targetId: string): string {
  return `${targetType}:${targetId}`;
}
