import { z } from "zod";
import type { RouteDef } from "../../../platform/gateway/routes";

/** The sandbox provider's notification body (see sandbox.contract.ts). */
export const SandboxNotificationBody = z.object({
  notificationId: z.string().min(1).max(80),
  providerTxId: z.string().min(1).max(80),
  paymentId: z.string().min(1).max(80),
  status: z.enum(["SUCCEEDED", "FAILED"]),
  amount: z.number().int().min(0),
  sequence: z.number().int().min(1),
});

export const CallbackContract = {
  sandbox: SandboxNotificationBody,
};

export const callbackRoutes: RouteDef[] = [{ method: "POST", path: "/api/payments/callback/sandbox", action: "callback.sandbox", auth: "public", rawBody: true }];
