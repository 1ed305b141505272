import { z } from "zod";
import type { RouteDef } from "../../../platform/gateway/routes";

export const PaymentContract = {
  /** Starts (or resumes) paying an order: answers where to send the buyer. */
  create: z.object({ id: z.string().min(1).max(40) }),
  /** For the callback endpoint: a verified provider notification. */
  applyNotification: z.object({
    paymentId: z.string().min(1).max(80),
    providerTxId: z.string().min(1).max(80),
    status: z.enum(["SUCCEEDED", "FAILED"]),
    amount: z.number().int().min(0),
    sequence: z.number().int().min(1),
  }),
  /** Payments captured or refunded in [from, to), plus those with the given provider transaction ids (for reconciliation; not routed). */
  settled: z.object({ from: z.number().int().min(0), to: z.number().int().min(0), providerTxIds: z.array(z.string().min(1).max(80)).max(100_000).default([]) }),
};

export const PaymentEvents = {
  succeeded: "commerce.payment.succeeded",
} as const;

export interface PaymentSucceeded {
  paymentId: string;
  orderId: string;
  tenantId: string;
  amount: number;
}

export const paymentRoutes: RouteDef[] = [{ method: "POST", path: "/api/commerce/orders/:id/payments", action: "payment.create", auth: "user", status: 201 }];
