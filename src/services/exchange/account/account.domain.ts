/**
 * Exchange balances as a double-entry ledger, pure. Every movement is a journal of entries whose
 * amounts add up to zero per asset; balances are the running sums of entries per (account, asset,
 * bucket). User money sits in `available` or `frozen`; the system's own accounts (equity for manual
 * adjustments, fees) take the other side. Amounts are integers in the asset's base units, as bigint:
 * 18-decimal assets pass 2^53 in a single coin. No I/O.
 */

export type Bucket = "available" | "frozen";

/** `user:<id>`, or one of the system's accounts. */
export type AccountId = string;
export const EQUITY = "system:equity";
export const FEES = "system:fees";
/** What users hold on chain with us: credited by deposits, paid out by withdrawals (goes negative, like equity). */
export const CHAIN = "system:chain";
/** Accounts that issue rather than hold, and so may go below zero. */
const ISSUERS = new Set([EQUITY, CHAIN]);
export const userAccount = (userId: number): AccountId => `user:${userId}`;

export interface Entry {
  account: AccountId;
  asset: string;
  bucket: Bucket;
  /** Positive credits, negative debits. */
  amount: bigint;
}

export interface Journal {
  /** The command or trade this journal applies, once: `freeze:<order>`, `trade:<id>`, `adjust:<key>`. */
  ref: string;
  kind: "ADJUST" | "FREEZE" | "UNFREEZE" | "TRADE" | "DEPOSIT" | "WITHDRAW";
  entries: Entry[];
}

export type Refusal = { code: "INSUFFICIENT_BALANCE" | "INVALID_AMOUNT"; message: string };

/** Balances the journal touches, as they stand: what `apply` checks a journal against. */
export type Balances = ReadonlyMap<string, bigint>;
export const balanceKey = (account: AccountId, asset: string, bucket: Bucket) => `${account}|${asset}|${bucket}`;

/** Entries of one asset in a journal add up to zero: nothing is created or destroyed by a movement. */
export function isBalanced(j: Journal): boolean {
  const sums = new Map<string, bigint>();
  for (const e of j.entries) sums.set(e.asset, (sums.get(e.asset) ?? 0n) + e.amount);
  return [...sums.values()].every((s) => s === 0n);
}

/**
 * The balances after the journal, or why it cannot apply: no user bucket may go below zero (the
 * system's equity account is the issuer and may).
 */
export function apply(balances: Balances, j: Journal): Map<string, bigint> | Refusal {
  const next = applyEach(balances, [j]);
  return isRefusal(next) ? { code: next.code, message: next.message } : next;
}

/**
 * The balances after every journal in turn, or the first journal that cannot apply and why (then
 * nothing of the list applies). Starts from `balances` and leaves them as they are.
 */
export function applyEach(balances: Balances, journals: readonly Journal[]): Map<string, bigint> | (Refusal & { journal: Journal }) {
  const next = new Map(balances);
  for (const j of journals) {
    const refusal = refusalOf(next, j);
    if (refusal) return { ...refusal, journal: j };
    post(next, j);
  }
  return next;
}

/**
 * Every journal in turn, each on its own: one that cannot apply is refused with its reason and
 * changes nothing, and those after it apply against the balances without it (order entry freezes
 * a batch of orders at once, and one order short of funds must not refuse the others).
 */
export function applyIndependently(balances: Balances, journals: readonly Journal[]): { balances: Map<string, bigint>; refused: Map<string, Refusal> } {
  const next = new Map(balances);
  const refused = new Map<string, Refusal>();
  for (const j of journals) {
    const refusal = refusalOf(next, j);
    if (refusal) refused.set(j.ref, refusal);
    else post(next, j);
  }
  return { balances: next, refused };
}

/** Adds the journal's entries to `balances` (checked by `refusalOf` first). */
function post(balances: Map<string, bigint>, j: Journal): void {
  for (const e of j.entries) {
    const key = balanceKey(e.account, e.asset, e.bucket);
    balances.set(key, (balances.get(key) ?? 0n) + e.amount);
  }
}

/** Why `j` cannot apply to `balances`, or null; looks only (a journal may touch one balance twice). */
function refusalOf(balances: Balances, j: Journal): Refusal | null {
  if (!isBalanced(j)) return { code: "INVALID_AMOUNT", message: `journal ${j.ref} does not balance` };
  const after = new Map<string, bigint>();
  for (const e of j.entries) {
    const key = balanceKey(e.account, e.asset, e.bucket);
    const value = (after.get(key) ?? balances.get(key) ?? 0n) + e.amount;
    if (value < 0n && !ISSUERS.has(e.account)) return { code: "INSUFFICIENT_BALANCE", message: `${e.asset} ${e.bucket} of ${e.account} would be ${value}` };
    after.set(key, value);
  }
  return null;
}

export function isRefusal(r: Map<string, bigint> | Refusal): r is Refusal {
  return !(r instanceof Map);
}

/** An operator's credit (positive) or debit (negative) of a user's available balance, against equity. */
export function adjustment(ref: string, userId: number, asset: string, amount: bigint): Journal {
  return {
    ref,
    kind: "ADJUST",
    entries: [
      { account: userAccount(userId), asset, bucket: "available", amount },
      { account: EQUITY, asset, bucket: "available", amount: -amount },
    ],
  };
}

/** Funds set aside for an order: available to frozen. */
export function freeze(ref: string, userId: number, asset: string, amount: bigint): Journal {
  const a = userAccount(userId);
  return {
    ref,
    kind: "FREEZE",
    entries: [
      { account: a, asset, bucket: "available", amount: -amount },
      { account: a, asset, bucket: "frozen", amount },
    ],
  };
}

/** What an order no longer needs goes back: frozen to available. */
export function unfreeze(ref: string, userId: number, asset: string, amount: bigint): Journal {
  const a = userAccount(userId);
  return {
    ref,
    kind: "UNFREEZE",
    entries: [
      { account: a, asset, bucket: "frozen", amount: -amount },
      { account: a, asset, bucket: "available", amount },
    ],
  };
}

/** A confirmed deposit on chain: the user's available balance, against the chain custody account. */
export function deposit(ref: string, userId: number, asset: string, amount: bigint): Journal {
  return {
    ref,
    kind: "DEPOSIT",
    entries: [
      { account: userAccount(userId), asset, bucket: "available", amount },
      { account: CHAIN, asset, bucket: "available", amount: -amount },
    ],
  };
}

/** A withdrawal sent on chain: out of the user's frozen funds (frozen when it was requested), back to custody. */
export function withdrawal(ref: string, userId: number, asset: string, amount: bigint): Journal {
  return {
    ref,
    kind: "WITHDRAW",
    entries: [
      { account: userAccount(userId), asset, bucket: "frozen", amount: -amount },
      { account: CHAIN, asset, bucket: "available", amount },
    ],
  };
}

export interface Fill {
  tradeId: string;
  base: string;
  quote: string;
  buyerId: number;
  sellerId: number;
  /** Base units traded. */
  quantity: bigint;
  /** Quote units paid for them (price × quantity, already in quote base units). */
  notional: bigint;
  /** Fees in basis points: the buyer's taken from the base received, the seller's from the quote. */
  buyerFeeBps: number;
  sellerFeeBps: number;
}

/** Fee on an amount in basis points, rounded down (the user never pays more than the rate). */
export function feeOf(amount: bigint, bps: number): bigint {
  return (amount * BigInt(bps)) / 10_000n;
}

/**
 * A trade settles from both sides' frozen funds: the buyer's frozen quote pays the seller, the
 * seller's frozen base goes to the buyer, each fee to the fee account.
 */
export function settlement(f: Fill): Journal {
  const buyer = userAccount(f.buyerId);
  const seller = userAccount(f.sellerId);
  const buyerFee = feeOf(f.quantity, f.buyerFeeBps);
  const sellerFee = feeOf(f.notional, f.sellerFeeBps);
  return {
    ref: `trade:${f.tradeId}`,
    kind: "TRADE",
    entries: [
      { account: buyer, asset: f.quote, bucket: "frozen", amount: -f.notional },
      { account: seller, asset: f.quote, bucket: "available", amount: f.notional - sellerFee },
      { account: FEES, asset: f.quote, bucket: "available", amount: sellerFee },
      { account: seller, asset: f.base, bucket: "frozen", amount: -f.quantity },
      { account: buyer, asset: f.base, bucket: "available", amount: f.quantity - buyerFee },
      { account: FEES, asset: f.base, bucket: "available", amount: buyerFee },
    ],
  };
}

/** A decimal string (as the API takes amounts) in base units of an asset with `decimals`, or null. */
export function toUnits(decimal: string, decimals: number): bigint | null {
  const m = /^(-)?(\d+)(?:\.(\d+))?$/.exec(decimal);
  if (!m) return null;
  const fraction = m[3] ?? "";
  if (fraction.length > decimals) return null;
  const units = BigInt(m[2] + fraction.padEnd(decimals, "0"));
  return m[1] ? -units : units;
}

/** Base units back to a decimal string with exactly `decimals` places. */
export function fromUnits(units: bigint, decimals: number): string {
  const negative = units < 0n;
  const digits = (negative ? -units : units).toString().padStart(decimals + 1, "0");
  const whole = digits.slice(0, digits.length - decimals);
  const fraction = digits.slice(digits.length - decimals);
  return `${negative ? "-" : ""}${whole}${decimals > 0 ? `.${fraction}` : ""}`;
}

/** Per asset, the sum of every balance of every account: zero for a sound ledger. */
export function ledgerSums(balances: Iterable<[string, bigint]>): Map<string, bigint> {
  const sums = new Map<string, bigint>();
  for (const [key, amount] of balances) {
    const asset = key.split("|")[1];
    sums.set(asset, (sums.get(asset) ?? 0n) + amount);
  }
  return sums;
}
