/**
 * Tenant RBAC, pure: the permission vocabulary, the built-in roles, and the casbin policy a tenant's
 * roles and members make. Enforcement itself is casbin's (permission.service.ts). No I/O.
 */

export const RESOURCES = ["products", "stock", "orders", "flash", "reconciliation", "members", "roles"] as const;
export const ACTIONS = ["read", "write", "ship", "refund"] as const;
export type Resource = (typeof RESOURCES)[number];

/** A permission is `resource:action`; `*` stands for every resource or every action. */
export type Permission = string;

/** Roles every tenant has. A member's membership role (OWNER, STAFF) is one of them. */
export const BUILT_IN_ROLES: Record<string, readonly Permission[]> = {
  OWNER: ["*:*"],
  STAFF: ["products:*", "stock:*", "orders:*", "flash:*", "reconciliation:read", "members:read", "roles:read"],
};

export function isBuiltIn(role: string): boolean {
  return Object.hasOwn(BUILT_IN_ROLES, role);
}

/** What is wrong with a permission string, or null. */
export function permissionProblem(p: string): string | null {
  const [resource, action, extra] = p.split(":");
  if (extra !== undefined || action === undefined) return `${p} is not resource:action`;
  if (resource !== "*" && !(RESOURCES as readonly string[]).includes(resource)) return `unknown resource ${resource} (one of ${RESOURCES.join(", ")}, or *)`;
  if (action !== "*" && !(ACTIONS as readonly string[]).includes(action)) return `unknown action ${action} (one of ${ACTIONS.join(", ")}, or *)`;
  return null;
}

export const MODEL = `
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub, r.dom) && r.dom == p.dom && (p.obj == "*" || r.obj == p.obj) && (p.act == "*" || r.act == p.act)
`;

export interface TenantPolicy {
  /** p rules: [role, tenant, resource, action]. */
  policies: string[][];
  /** g rules: [user, role, tenant]. */
  groupings: string[][];
}

export const subjectOf = (userId: number) => `user:${userId}`;
export const roleSubject = (role: string) => `role:${role}`;

/**
 * The casbin rules of one tenant. A member holds its membership role unless it was given custom roles,
 * which then replace it — that is how an owner narrows what a staff member may do. An owner keeps
 * OWNER whatever else it holds.
 */
export function tenantPolicy(
  tenantId: string,
  customRoles: readonly { name: string; permissions: readonly Permission[] }[],
  members: readonly { userId: number; role: string }[],
  assignments: readonly { userId: number; role: string }[],
): TenantPolicy {
  const policies: string[][] = [];
  const roles = new Map<string, readonly Permission[]>([...Object.entries(BUILT_IN_ROLES), ...customRoles.map((r) => [r.name, r.permissions] as const)]);
  for (const [role, permissions] of roles)
    for (const p of permissions) {
      const [resource, action] = p.split(":");
      policies.push([roleSubject(role), tenantId, resource, action]);
    }
  const groupings: string[][] = [];
  const assigned = new Map<number, string[]>();
  for (const a of assignments) if (roles.has(a.role)) assigned.set(a.userId, [...(assigned.get(a.userId) ?? []), a.role]);
  for (const m of members) {
    const custom = assigned.get(m.userId) ?? [];
    const held = m.role === "OWNER" ? ["OWNER", ...custom] : custom.length > 0 ? custom : [m.role];
    for (const role of new Set(held)) groupings.push([subjectOf(m.userId), roleSubject(role), tenantId]);
  }
  return { policies, groupings };
}
