/**
 * The wallet's decisions, pure: a withdrawal's life, its limits, when a deposit is final, where a
 * reorganised chain forks from what we scanned, and amounts between chain units and ledger units.
 */

/**
 * PENDING: its funds are being frozen (order entry's TCC); then PENDING_APPROVAL (above the approval
 * threshold, an operator decides) or APPROVED; APPROVED → SENT (signed, recorded, broadcast) →
 * CONFIRMED (enough blocks on top) or FAILED (reverted: funds back). REJECTED: refused at entry or by an
 * operator (funds back if they were frozen).
 */
export type WithdrawalStatus = "PENDING" | "PENDING_APPROVAL" | "APPROVED" | "SENT" | "CONFIRMED" | "FAILED" | "REJECTED";

const MOVES: Record<WithdrawalStatus, readonly WithdrawalStatus[]> = {
  PENDING: ["PENDING_APPROVAL", "APPROVED", "REJECTED"],
  PENDING_APPROVAL: ["APPROVED", "REJECTED"],
  APPROVED: ["SENT"],
  SENT: ["CONFIRMED", "FAILED"],
  CONFIRMED: [],
  FAILED: [],
  REJECTED: [],
};

export function canMove(from: WithdrawalStatus, to: WithdrawalStatus): boolean {
  return MOVES[from].includes(to);
}

/** Where a frozen withdrawal goes next: to an operator above the threshold, else straight to sending. */
export function afterFreeze(amount: bigint, approvalAbove: bigint): "PENDING_APPROVAL" | "APPROVED" {
  return amount > approvalAbove ? "PENDING_APPROVAL" : "APPROVED";
}

export interface Limits {
  /** Largest single withdrawal. */
  maxPerWithdrawal: bigint;
  /** Most one user may withdraw of the asset in a UTC day (every withdrawal not rejected or failed). */
  dailyMax: bigint;
  /** Withdrawals above this wait for an operator. */
  approvalAbove: bigint;
}

export type Refusal = { code: "INVALID_AMOUNT" | "ABOVE_LIMIT" | "DAILY_LIMIT"; message: string };

export function withdrawalProblem(amount: bigint, limits: Limits, withdrawnToday: bigint): Refusal | null {
  if (amount <= 0n) return { code: "INVALID_AMOUNT", message: "amount must be positive" };
  if (amount > limits.maxPerWithdrawal) return { code: "ABOVE_LIMIT", message: `at most ${limits.maxPerWithdrawal} units per withdrawal` };
  if (withdrawnToday + amount > limits.dailyMax) return { code: "DAILY_LIMIT", message: `at most ${limits.dailyMax} units a day (${withdrawnToday} used)` };
  return null;
}

/** A deposit is final once `confirmations` blocks, its own included, stand on the chain. */
export function isConfirmed(blockNumber: number, head: number, confirmations: number): boolean {
  return head - blockNumber + 1 >= confirmations;
}

/**
 * After a reorganisation: the highest block we scanned that the chain still has (same hash), from our
 * recorded blocks highest first; null when none of them survives (deeper than our window).
 */
export function forkPoint(ours: readonly { number: number; hash: string }[], canonical: (number: number) => string | undefined): number | null {
  for (const b of ours) if (canonical(b.number) === b.hash) return b.number;
  return null;
}

/** Chain units to ledger units (the asset may keep fewer decimals: the rest stays with us as dust). */
export function toLedgerUnits(amount: bigint, chainDecimals: number, ledgerDecimals: number): bigint {
  if (ledgerDecimals > chainDecimals) throw new Error(`ledger keeps ${ledgerDecimals} decimals, the chain only ${chainDecimals}`);
  return amount / 10n ** BigInt(chainDecimals - ledgerDecimals);
}

export function toChainUnits(units: bigint, ledgerDecimals: number, chainDecimals: number): bigint {
  if (ledgerDecimals > chainDecimals) throw new Error(`ledger keeps ${ledgerDecimals} decimals, the chain only ${chainDecimals}`);
  return units * 10n ** BigInt(chainDecimals - ledgerDecimals);
}

/** The UTC day a time falls in, for daily limits. */
export function dayOf(ms: number): number {
  return Math.floor(ms / 86_400_000);
}
