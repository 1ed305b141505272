import { z } from "zod";
import type { RouteDef } from "../../../platform/gateway/routes";

const id = z.string().min(1).max(40);
const instant = z.iso.datetime({ offset: true }).transform((s) => Date.parse(s));

export const FlashContract = {
  /** Tenant staff open a campaign: its stock leaves the SKU's main warehouse for the campaign's own. */
  createCampaign: z.object({
    tenantId: id,
    sku: z.string().trim().min(1).max(64),
    price: z.number().int().min(0).max(1_000_000_000_000),
    stock: z.number().int().min(1).max(10_000_000),
    startsAt: instant,
    endsAt: instant,
    perUserLimit: z.number().int().min(1).max(10_000),
  }),
  getCampaign: z.object({ id }),
  /** A purchase attempt: answered at once (202 with its id) or refused with a 409 code. Needs an Idempotency-Key. */
  attempt: z.object({ id, quantity: z.number().int().min(1).max(10_000).default(1) }),
  getAttempt: z.object({ id: z.string().min(1).max(80) }),
  /** The sweep: warms campaigns the kv lost, republishes admitted attempts that never reached the pipeline. */
  tick: z.object({}),
};

export interface CampaignView {
  id: string;
  tenantId: string;
  sku: string;
  price: number;
  startsAt: string;
  endsAt: string;
  perUserLimit: number;
  stock: number;
  admitted: number;
  ordered: number;
  remaining: number;
}

export interface AttemptView {
  attemptId: string;
  campaignId: string;
  status: "QUEUED" | "ORDERED" | "REJECTED";
  quantity: number;
  orderId?: string;
  reason?: string;
}

export const FlashEvents = {
  /** An attempt the kv admitted, on its way to order creation (published directly: its state is in the kv). */
  admitted: "commerce.flash.admitted",
} as const;

export interface AttemptAdmitted {
  attemptId: string;
  campaignId: string;
  tenantId: string;
  userId: number;
  quantity: number;
}

export const flashRoutes: RouteDef[] = [
  { method: "POST", path: "/api/flash/campaigns", action: "flash.createCampaign", auth: "user", status: 201, permission: "flash:write" },
  { method: "GET", path: "/api/flash/campaigns/:id", action: "flash.getCampaign", auth: "user" },
  { method: "POST", path: "/api/flash/campaigns/:id/attempts", action: "flash.attempt", auth: "user", status: 202 },
  { method: "GET", path: "/api/flash/attempts/:id", action: "flash.getAttempt", auth: "user" },
];
