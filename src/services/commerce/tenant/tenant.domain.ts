/**
 * Tenants (merchants) and who works for them, pure: quotas and their checks, who may manage
 * members, and what a suspended tenant may still do. No I/O.
 */

export type TenantStatus = "ACTIVE" | "SUSPENDED";
export type MemberRole = "OWNER" | "STAFF";

export interface Quotas {
  /** Members (staff and owners) of the tenant. */
  maxUsers: number;
  maxProducts: number;
  maxOrdersPerDay: number;
  /** The tenant's share of the flash-sale admission rate, purchase attempts per second. */
  flashQps: number;
  /** How long an order may wait for payment before it is cancelled and its stock returned. */
  paymentTimeoutSeconds: number;
}

export const DEFAULT_QUOTAS: Quotas = { maxUsers: 20, maxProducts: 10_000, maxOrdersPerDay: 100_000, flashQps: 2_000, paymentTimeoutSeconds: 1800 };

/** Refusal when `adding` more would pass the quota, else null. */
export function quotaRefusal(quotas: Quotas, quota: "maxUsers" | "maxProducts" | "maxOrdersPerDay", used: number, adding = 1): { code: "TENANT_QUOTA_EXCEEDED"; message: string } | null {
  const limit = quotas[quota];
  if (used + adding <= limit) return null;
  return { code: "TENANT_QUOTA_EXCEEDED", message: `quota ${quota} is ${limit}; ${used} used` };
}

export interface Caller {
  userId: number;
  admin: boolean;
  /** The caller's role in the tenant, if a member. */
  role?: MemberRole;
}

/** What a caller may do with a tenant: nothing (not found, to a stranger), read, or manage its members. */
export function accessOf(caller: Caller): "NONE" | "MEMBER" | "MANAGER" {
  if (caller.admin || caller.role === "OWNER") return "MANAGER";
  return caller.role ? "MEMBER" : "NONE";
}

/** A suspended tenant's staff can still read; nothing may change its catalogue, stock or members. */
export function suspendedRefusal(status: TenantStatus, writing: boolean): { code: "TENANT_SUSPENDED"; message: string } | null {
  return status === "SUSPENDED" && writing ? { code: "TENANT_SUSPENDED", message: "the tenant is suspended" } : null;
}
