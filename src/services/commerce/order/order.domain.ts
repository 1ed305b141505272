/**
 * Orders, pure: the state machine, totals in integer minor units, the payment deadline. No I/O.
 */

export type OrderStatus = "PENDING_PAYMENT" | "PAID" | "SHIPPED" | "COMPLETED" | "CANCELLED" | "REFUNDED";

export const ORDER_STATUSES: readonly OrderStatus[] = ["PENDING_PAYMENT", "PAID", "SHIPPED", "COMPLETED", "CANCELLED", "REFUNDED"];

const NEXT: Record<OrderStatus, readonly OrderStatus[]> = {
  PENDING_PAYMENT: ["PAID", "CANCELLED"],
  PAID: ["SHIPPED", "REFUNDED"],
  SHIPPED: ["COMPLETED", "REFUNDED"],
  COMPLETED: ["REFUNDED"],
  CANCELLED: [],
  REFUNDED: [],
};

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return NEXT[from].includes(to);
}

/** Why an order may not move to `to`, as a 409 code and message; null when it may. */
export function transitionRefusal(from: OrderStatus, to: OrderStatus): { code: string; message: string } | null {
  if (canTransition(from, to)) return null;
  return { code: `ORDER_${from}`, message: `the order is ${from.toLowerCase().replace("_", " ")}; it cannot become ${to.toLowerCase().replace("_", " ")}` };
}

export type CancelReason = "BUYER" | "PAYMENT_TIMEOUT";

export interface PricedLine {
  sku: string;
  quantity: number;
  price: number;
}

/** The order total in minor units; refuses a total past the safe-integer range rather than round it. */
export function totalOf(lines: readonly PricedLine[]): number {
  let total = 0;
  for (const line of lines) total += line.price * line.quantity;
  if (!Number.isSafeInteger(total)) throw new RangeError("order total out of range");
  return total;
}

/** The UTC day an instant falls on, as yyyymmdd: the unit of the orders-per-day quota. */
export function dayOf(ms: number): number {
  const d = new Date(ms);
  return d.getUTCFullYear() * 10_000 + (d.getUTCMonth() + 1) * 100 + d.getUTCDate();
}
