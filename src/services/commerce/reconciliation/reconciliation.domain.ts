/**
 * Reconciliation, pure: a day of the provider's statement against our payments, and our payments
 * against their orders. Every difference is one discrepancy naming what it is about. No I/O.
 */

export type LineKind = "PAYMENT" | "REFUND";

/** One line of the provider's daily statement. */
export interface StatementLine {
  providerTxId: string;
  paymentId: string;
  kind: LineKind;
  amount: number;
  at: number;
}

/** A payment as our books have it. */
export interface PaymentRecord {
  paymentId: string;
  orderId: string;
  tenantId: string;
  providerTxId: string | null;
  amount: number;
  status: string;
  succeededAt: number | null;
  refundedAt: number | null;
}

export interface OrderRecord {
  orderId: string;
  tenantId: string;
  total: number;
  status: string;
}

export type DiscrepancyKind = "MISSING" | "EXTRA" | "AMOUNT_MISMATCH" | "STATUS_MISMATCH" | "ORDER_MISMATCH";

export interface Discrepancy {
  kind: DiscrepancyKind;
  /** What it is about: `<providerTxId>:<PAYMENT|REFUND>` for statement lines, the order id for orders. */
  ref: string;
  /** The tenant whose books it touches; "" when only the provider knows the payment. */
  tenantId: string;
  detail: string;
}

export interface Day {
  from: number;
  to: number;
}

/** `YYYY-MM-DD` (UTC) as a half-open interval of milliseconds, or null when it is not a real date. */
export function dayOfDate(date: string): Day | null {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) return null;
  const from = Date.parse(`${date}T00:00:00.000Z`);
  if (Number.isNaN(from) || new Date(from).toISOString().slice(0, 10) !== date) return null;
  return { from, to: from + 86_400_000 };
}

/** The UTC date before the one `now` falls on: what the nightly run reconciles. */
export function previousDate(now: number): string {
  return new Date(now - 86_400_000).toISOString().slice(0, 10);
}

const within = (t: number | null, day: Day) => t !== null && t >= day.from && t < day.to;

/**
 * Order states a captured payment stands behind. A refunded payment stands behind a refunded order,
 * or a cancelled one (paid after it was cancelled, and the money sent back).
 */
const PAID_ORDER = new Set(["PAID", "SHIPPED", "COMPLETED"]);

/**
 * The day's discrepancies, in a stable order. `payments` holds every payment of ours the day touched
 * (captured or refunded on it) and every payment the statement names; `orders` the orders of those
 * payments.
 */
export function reconcile(day: Day, statement: readonly StatementLine[], payments: readonly PaymentRecord[], orders: readonly OrderRecord[]): Discrepancy[] {
  const out: Discrepancy[] = [];
  const byTx = new Map(payments.filter((p) => p.providerTxId !== null).map((p) => [p.providerTxId!, p]));
  const lines = new Map(statement.filter((l) => within(l.at, day)).map((l) => [`${l.providerTxId}:${l.kind}`, l]));

  for (const [ref, line] of lines) {
    const p = byTx.get(line.providerTxId);
    if (!p) {
      out.push({ kind: "MISSING", ref, tenantId: "", detail: `the provider has ${line.kind.toLowerCase()} ${line.providerTxId} of ${line.amount} for ${line.paymentId}; we have no such payment` });
      continue;
    }
    const ours = line.kind === "PAYMENT" ? p.succeededAt : p.refundedAt;
    if (ours === null) {
      out.push({ kind: "STATUS_MISMATCH", ref, tenantId: p.tenantId, detail: `the provider has a ${line.kind.toLowerCase()} for ${p.paymentId}; ours is ${p.status}` });
      continue;
    }
    if (line.amount !== p.amount) out.push({ kind: "AMOUNT_MISMATCH", ref, tenantId: p.tenantId, detail: `the provider has ${line.amount} for ${p.paymentId}; ours is ${p.amount}` });
  }

  for (const p of payments) {
    for (const [kind, at] of [["PAYMENT", p.succeededAt], ["REFUND", p.refundedAt]] as const) {
      if (!within(at, day)) continue;
      const ref = `${p.providerTxId ?? p.paymentId}:${kind}`;
      if (!lines.has(ref)) out.push({ kind: "EXTRA", ref, tenantId: p.tenantId, detail: `our ${kind.toLowerCase()} ${p.paymentId} of ${p.amount} is not on the provider's statement` });
    }
  }

  const orderOf = new Map(orders.map((o) => [o.orderId, o]));
  for (const p of payments) {
    if (!within(p.succeededAt, day) && !within(p.refundedAt, day)) continue;
    const o = orderOf.get(p.orderId);
    const want = p.refundedAt !== null ? "refunded or cancelled" : "paid";
    if (!o) out.push({ kind: "ORDER_MISMATCH", ref: p.orderId, tenantId: p.tenantId, detail: `payment ${p.paymentId} is for order ${p.orderId}, which does not exist` });
    else if (o.total !== p.amount) out.push({ kind: "ORDER_MISMATCH", ref: p.orderId, tenantId: p.tenantId, detail: `order total ${o.total}, payment ${p.paymentId} ${p.amount}` });
    else if (p.refundedAt !== null ? o.status !== "REFUNDED" && o.status !== "CANCELLED" : !PAID_ORDER.has(o.status) && o.status !== "REFUNDED")
      out.push({ kind: "ORDER_MISMATCH", ref: p.orderId, tenantId: p.tenantId, detail: `payment ${p.paymentId} is ${p.status}; the order is ${o.status}, not ${want}` });
  }
  return out.sort((a, b) => (a.kind === b.kind ? a.ref.localeCompare(b.ref) : a.kind.localeCompare(b.kind)));
}
