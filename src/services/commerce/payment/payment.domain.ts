/**
 * Payments, pure: what a provider's notification may do to a payment. Notifications can arrive late,
 * twice, or out of order; a payment only moves forward, and a success is final. No I/O.
 */

export type PaymentStatus = "CREATED" | "SUCCEEDED" | "FAILED" | "REFUNDED";

export interface PaymentFacts {
  status: PaymentStatus;
  amount: number;
  providerTxId: string | null;
  /** The sequence of the last notification applied. */
  sequence: number;
}

export interface Notification {
  providerTxId: string;
  status: "SUCCEEDED" | "FAILED";
  amount: number;
  sequence: number;
}

export type NotificationOutcome =
  | { apply: true; status: PaymentStatus }
  | { apply: false; code: "STALE_NOTIFICATION" | "ALREADY_SUCCEEDED" | "ALREADY_REFUNDED" | "AMOUNT_MISMATCH" | "PROVIDER_TX_MISMATCH" };

export function onNotification(payment: PaymentFacts, n: Notification): NotificationOutcome {
  if (payment.providerTxId !== null && payment.providerTxId !== n.providerTxId) return { apply: false, code: "PROVIDER_TX_MISMATCH" };
  if (n.amount !== payment.amount) return { apply: false, code: "AMOUNT_MISMATCH" };
  if (payment.status === "SUCCEEDED") return { apply: false, code: "ALREADY_SUCCEEDED" };
  if (payment.status === "REFUNDED") return { apply: false, code: "ALREADY_REFUNDED" };
  if (n.sequence <= payment.sequence) return { apply: false, code: "STALE_NOTIFICATION" };
  return { apply: true, status: n.status };
}
