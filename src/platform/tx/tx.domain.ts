/**
 * The coordinator's pure rules: which states a global transaction moves through, which branch call
 * comes next, how failures are classified and how long to wait before trying again. No I/O.
 *
 * A SAGA runs its steps' actions in order; a step that fails for a business reason turns the saga
 * into compensation, which undoes every attempted step in reverse order. A TCC transaction has its
 * branches tried by the initiator through the coordinator; the initiator's decision (or, when it
 * goes silent, the coordinator's query back to it) confirms every branch or cancels every branch.
 */

export type TxKind = "SAGA" | "TCC";

export type TxState =
  /** TCC: branches being tried, waiting for the initiator's decision. */
  | "TRYING"
  /** SAGA: actions running forward. */
  | "RUNNING"
  /** TCC: decided to commit; confirming every branch. */
  | "CONFIRMING"
  /** Undoing: TCC cancels, SAGA compensates. */
  | "COMPENSATING"
  | "COMMITTED"
  | "COMPENSATED"
  /** A branch kept failing past the configured attempts; an operator retries or compensates. */
  | "STUCK";

export const TX_STATES: readonly TxState[] = ["TRYING", "RUNNING", "CONFIRMING", "COMPENSATING", "COMMITTED", "COMPENSATED", "STUCK"];

/** What a participant is asked to do with its branch. */
export type BranchOp = "try" | "confirm" | "cancel" | "action" | "compensate";

export type BranchState =
  /** Registered; its forward call has not succeeded yet. */
  | "PENDING"
  /** Forward call succeeded (TCC try, or SAGA action). */
  | "DONE"
  /** Forward call refused for a business reason: nothing to keep. */
  | "FAILED"
  | "CONFIRMED"
  | "COMPENSATED";

export interface BranchSpec {
  /** Forward action: the TCC try or the SAGA step's action (a Moleculer action name). */
  action: string;
  /** TCC only: the confirm action. */
  confirm?: string;
  /** TCC cancel or SAGA compensation. */
  compensate: string;
  payload: unknown;
}

export interface BranchView {
  branchId: string;
  state: BranchState;
  /** Forward calls made, successful or not: an attempted step may have done something. */
  attempts: number;
}

export type NextStep =
  | { kind: "call"; op: BranchOp; branchId: string }
  | { kind: "finish"; state: "COMMITTED" | "COMPENSATED" }
  /** A saga step was refused: turn to compensation (also when a crash fell between the two writes). */
  | { kind: "compensate" }
  /** TCC in TRYING: nothing to do until the initiator decides or the transaction times out. */
  | { kind: "wait" };

const TRANSITIONS: Record<TxState, readonly TxState[]> = {
  TRYING: ["CONFIRMING", "COMPENSATING", "STUCK"],
  RUNNING: ["COMMITTED", "COMPENSATING", "STUCK"],
  CONFIRMING: ["COMMITTED", "STUCK"],
  COMPENSATING: ["COMPENSATED", "STUCK"],
  COMMITTED: [],
  COMPENSATED: [],
  // Out of STUCK only by an operator: back to the phase it was stuck in, or to compensation.
  STUCK: ["TRYING", "RUNNING", "CONFIRMING", "COMPENSATING"],
};

export function canTransition(from: TxState, to: TxState): boolean {
  return TRANSITIONS[from].includes(to);
}

export function isFinal(state: TxState): boolean {
  return state === "COMMITTED" || state === "COMPENSATED";
}

/** Branch ids are their position, zero-padded so they sort in order as strings. */
export function branchIdOf(index: number): string {
  return String(index + 1).padStart(2, "0");
}

/** The next branch call a transaction in `state` needs, given its branches in registration order. */
export function nextStep(kind: TxKind, state: TxState, branches: readonly BranchView[]): NextStep {
  switch (state) {
    case "RUNNING": {
      if (branches.some((b) => b.state === "FAILED")) return { kind: "compensate" };
      const pending = branches.find((b) => b.state === "PENDING");
      return pending ? { kind: "call", op: "action", branchId: pending.branchId } : { kind: "finish", state: "COMMITTED" };
    }
    case "CONFIRMING": {
      const tried = branches.find((b) => b.state === "DONE");
      return tried ? { kind: "call", op: "confirm", branchId: tried.branchId } : { kind: "finish", state: "COMMITTED" };
    }
    case "COMPENSATING": {
      // Reverse order; a branch whose forward call may have run (done, or attempted without an
      // answer) is undone; the participant's barrier turns an undo of nothing into a no-op.
      for (let i = branches.length - 1; i >= 0; i--) {
        const b = branches[i];
        if (b.state === "DONE" || (b.state === "PENDING" && b.attempts > 0) || (b.state === "FAILED" && kind === "SAGA"))
          return { kind: "call", op: kind === "TCC" ? "cancel" : "compensate", branchId: b.branchId };
      }
      return { kind: "finish", state: "COMPENSATED" };
    }
    default:
      return { kind: "wait" };
  }
}

/** The branch state a successful call of `op` leaves. */
export function stateAfter(op: BranchOp): BranchState {
  switch (op) {
    case "try":
    case "action":
      return "DONE";
    case "confirm":
      return "CONFIRMED";
    default:
      return "COMPENSATED";
  }
}

/**
 * A participant's answer that is a decision, not an accident: a 4xx refusal. Only forward calls may
 * refuse; a refused confirm or compensation is a bug to surface (it is retried, then STUCK).
 */
export function isBusinessRefusal(err: unknown): boolean {
  const e = err as { code?: unknown; type?: unknown };
  if (typeof e?.code !== "number" || e.code < 400 || e.code >= 500) return false;
  // Moleculer's own 4xx are about reaching the service, not the service's answer.
  return e.type !== "SERVICE_NOT_FOUND" && e.type !== "SERVICE_NOT_AVAILABLE" && e.type !== "REQUEST_TIMEOUT";
}

export interface RetryPolicy {
  /** Calls of one branch op before the transaction is left STUCK. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 8, baseDelayMs: 500, maxDelayMs: 30_000 };

/** Delay before attempt `attempt + 1` (attempt counts failures so far, from 1): doubling, capped. */
export function retryDelayMs(attempt: number, policy: RetryPolicy): number {
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, Math.min(attempt - 1, 20)));
}

/** After a failed call: try again later, or stop and wait for an operator. */
export function afterFailure(attempt: number, policy: RetryPolicy, now: number): { stuck: true } | { stuck: false; retryAt: number } {
  if (attempt >= policy.maxAttempts) return { stuck: true };
  return { stuck: false, retryAt: now + retryDelayMs(attempt, policy) };
}

/** Whether an operator may compensate a transaction stuck in `stuckIn`: confirmed TCC branches cannot be cancelled. */
export function canCompensate(kind: TxKind, stuckIn: TxState): boolean {
  if (kind === "TCC") return stuckIn === "TRYING" || stuckIn === "COMPENSATING";
  return stuckIn === "RUNNING" || stuckIn === "COMPENSATING";
}
