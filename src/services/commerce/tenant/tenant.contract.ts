import { z } from "zod";
import type { RouteDef } from "../../../platform/gateway/routes";
import { pageInput } from "../../../platform/runtime/action";

const tid = z.string().min(1).max(40);
const quotas = z
  .object({
    maxUsers: z.number().int().min(1).max(100_000),
    maxProducts: z.number().int().min(0).max(10_000_000),
    maxOrdersPerDay: z.number().int().min(0).max(100_000_000),
    flashQps: z.number().int().min(0).max(1_000_000),
    paymentTimeoutSeconds: z.number().int().min(60).max(7 * 86_400),
  })
  .partial();

export const TenantContract = {
  create: z.object({ name: z.string().trim().min(1).max(100), ownerId: z.number().int().positive().optional(), quotas: quotas.optional() }),
  list: z.object({ ...pageInput }),
  get: z.object({ tid }),
  setStatus: z.object({ tid, status: z.enum(["ACTIVE", "SUSPENDED"]), reason: z.string().trim().min(1).max(500) }),
  setQuotas: z.object({ tid, quotas }),
  addMember: z.object({ tid, userId: z.number().int().positive(), role: z.enum(["OWNER", "STAFF"]) }),
  removeMember: z.object({ tid, userId: z.coerce.number().int().positive() }),
  members: z.object({ tid }),
  /** Every member's role, for the permission service (not routed). */
  memberRoles: z.object({ tid }),
  /**
   * For other commerce services: the caller's standing in a tenant. 404 to strangers (never "it
   * exists but you may not"), 409 TENANT_SUSPENDED for writes to a suspended tenant.
   */
  access: z.object({ tid, userId: z.number().int().positive(), admin: z.boolean().default(false), writing: z.boolean().default(false) }),
  /** For other commerce services acting for buyers (who are not members): the tenant, or 404. */
  profile: z.object({ tid }),
};

export interface TenantView {
  id: string;
  name: string;
  status: "ACTIVE" | "SUSPENDED";
  quotas: { maxUsers: number; maxProducts: number; maxOrdersPerDay: number; flashQps: number; paymentTimeoutSeconds: number };
  createdAt: string;
}

export interface MemberView {
  userId: number;
  role: "OWNER" | "STAFF";
  addedAt: string;
}

export interface Access {
  tenant: TenantView;
  role: "OWNER" | "STAFF" | null;
}

export const TenantEvents = {
  created: "commerce.tenant.created",
  memberChanged: "commerce.tenant.member-changed",
  statusChanged: "commerce.tenant.status-changed",
} as const;

export const tenantRoutes: RouteDef[] = [
  { method: "POST", path: "/api/commerce/tenants", action: "tenant.create", auth: ["admin"], status: 201 },
  { method: "GET", path: "/api/commerce/tenants", action: "tenant.list", auth: ["admin"] },
  { method: "GET", path: "/api/commerce/tenants/:tid", action: "tenant.get", auth: "user" },
  { method: "PUT", path: "/api/commerce/tenants/:tid/status", action: "tenant.setStatus", auth: ["admin"] },
  { method: "PUT", path: "/api/commerce/tenants/:tid/quotas", action: "tenant.setQuotas", auth: ["admin"] },
  { method: "GET", path: "/api/commerce/tenants/:tid/members", action: "tenant.members", auth: "user" },
  { method: "POST", path: "/api/commerce/tenants/:tid/members", action: "tenant.addMember", auth: "user", status: 201 },
  { method: "DELETE", path: "/api/commerce/tenants/:tid/members/:userId", action: "tenant.removeMember", auth: "user" },
];
