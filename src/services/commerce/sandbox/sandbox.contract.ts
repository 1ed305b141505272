import { z } from "zod";
import type { RouteDef } from "../../../platform/gateway/routes";

const paymentId = z.string().min(1).max(80);

export const SandboxContract = {
  /** Provider API, as a merchant's server calls it: open a hosted checkout for a payment. */
  createCheckout: z.object({ paymentId, amount: z.number().int().min(1), notifyUrl: z.string().url().max(500) }),
  /** The hosted payment page. */
  page: z.object({ paymentId }),
  /** Plays the customer paying (or failing to) on the hosted page. */
  complete: z.object({ paymentId, outcome: z.enum(["SUCCESS", "FAIL"]) }),
  /** Provider API: refund a paid checkout in full (idempotent). */
  refund: z.object({ paymentId }),
  /** Provider API: the daily statement (UTC date), every capture and refund of that day. */
  statement: z.object({ date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "a date as YYYY-MM-DD") }),
  tick: z.object({}),
};

/** The notification body the provider posts to the merchant's callback. */
export interface SandboxNotification {
  notificationId: string;
  providerTxId: string;
  paymentId: string;
  status: "SUCCEEDED" | "FAILED";
  amount: number;
  /** Increases with each outcome of one checkout, so a late, older notification can be told apart. */
  sequence: number;
}

export const sandboxRoutes: RouteDef[] = [
  { method: "GET", path: "/api/payments/sandbox/:paymentId", action: "sandbox.page", auth: "public" },
  { method: "POST", path: "/api/payments/sandbox/:paymentId/complete", action: "sandbox.complete", auth: "public" },
  { method: "GET", path: "/api/payments/sandbox/statements/:date", action: "sandbox.statement", auth: ["admin", "operator"] },
];
