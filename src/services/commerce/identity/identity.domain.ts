import { ROLES, type Role } from "../../../platform/runtime/action";

/** Roles are stored as a sorted, de-duplicated comma list; `user` is always present. */
export function normaliseRoles(roles: readonly string[]): Role[] {
  const set = new Set<Role>(["user"]);
  for (const r of roles) if ((ROLES as readonly string[]).includes(r)) set.add(r as Role);
  return ROLES.filter((r) => set.has(r));
}

export function encodeRoles(roles: readonly string[]): string {
  return normaliseRoles(roles).join(",");
}

export function decodeRoles(stored: string): Role[] {
  return normaliseRoles(stored.split(","));
}

export function withRole(stored: string, role: Role): string {
  return encodeRoles([...decodeRoles(stored), role]);
}
