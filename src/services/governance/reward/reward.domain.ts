/**
 * Coins for reviewers. Pure: which grants a decided case earns, and whether a redemption fits.
 */

export type Verdict = "UPHELD" | "REJECTED" | "EXPIRED";
export type Decision = "VIOLATION" | "NO_VIOLATION";

export interface DecidedCase {
  caseId: string;
  verdict: Verdict;
  coinsPerVote: number;
  coinsPerCoherentVote: number;
  panel: { reviewerId: number; decision: Decision | null }[];
}

export interface Grant {
  userId: number;
  amount: number;
  coherent: boolean;
}

function agrees(decision: Decision, verdict: Verdict): boolean {
  return (decision === "VIOLATION" && verdict === "UPHELD") || (decision === "NO_VIOLATION" && verdict === "REJECTED");
}

/** Voters earn coinsPerVote; those agreeing with the verdict earn the bonus too; non-voters nothing. */
export function grantsFor(decided: DecidedCase): Grant[] {
  const grants: Grant[] = [];
  const seen = new Set<number>();
  for (const seat of decided.panel) {
    if (seat.decision === null || seen.has(seat.reviewerId)) continue;
    seen.add(seat.reviewerId);
    const coherent = agrees(seat.decision, decided.verdict);
    const amount = decided.coinsPerVote + (coherent ? decided.coinsPerCoherentVote : 0);
    if (amount > 0) grants.push({ userId: seat.reviewerId, amount, coherent });
  }
  return grants;
}

export type RedemptionRefusal = { code: "INSUFFICIENT_COINS" | "OUT_OF_STOCK"; message: string };

export function redemptionRefusal(balance: number, price: number, stock: number): RedemptionRefusal | null {
  if (stock < 1) return { code: "OUT_OF_STOCK", message: "this item is out of stock" };
  if (balance < price) return { code: "INSUFFICIENT_COINS", message: `the item costs ${price} coins; your balance is ${balance}` };
  return null;
}
