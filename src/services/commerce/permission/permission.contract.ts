import { z } from "zod";
import type { RouteDef } from "../../../platform/gateway/routes";
import { pageInput } from "../../../platform/runtime/action";

const tid = z.string().min(1).max(40);
const roleName = z
  .string()
  .trim()
  .min(1)
  .max(40)
  .regex(/^[A-Za-z][A-Za-z0-9_-]*$/, "letters, digits, '_' or '-', starting with a letter");
const permission = z.string().min(3).max(40);

export const PermissionContract = {
  /**
   * The caller may do `permission` (`resource:action`) in the tenant: 404 to strangers (as the tenant
   * service answers), 403 PERMISSION_DENIED to members without it; platform admins may do anything.
   * Answers the caller's standing, like `tenant.access`.
   */
  require: z.object({ tid, permission, writing: z.boolean().optional() }),
  mine: z.object({ tid }),
  listRoles: z.object({ tid }),
  putRole: z.object({ tid, name: roleName, permissions: z.array(permission).min(1).max(50) }),
  deleteRole: z.object({ tid, name: roleName }),
  assignRoles: z.object({ tid, userId: z.coerce.number().int().positive(), roles: z.array(roleName).max(20) }),
  audit: z.object({ tid, ...pageInput }),
};

export interface RoleView {
  name: string;
  builtIn: boolean;
  permissions: string[];
}

export const permissionRoutes: RouteDef[] = [
  { method: "GET", path: "/api/commerce/tenants/:tid/permissions/me", action: "permission.mine", auth: "user" },
  { method: "GET", path: "/api/commerce/tenants/:tid/roles", action: "permission.listRoles", auth: "user", permission: "roles:read" },
  { method: "PUT", path: "/api/commerce/tenants/:tid/roles/:name", action: "permission.putRole", auth: "user", permission: "roles:write" },
  { method: "DELETE", path: "/api/commerce/tenants/:tid/roles/:name", action: "permission.deleteRole", auth: "user", permission: "roles:write" },
  { method: "PUT", path: "/api/commerce/tenants/:tid/members/:userId/roles", action: "permission.assignRoles", auth: "user", permission: "roles:write" },
  { method: "GET", path: "/api/commerce/tenants/:tid/permissions/audit", action: "permission.audit", auth: "user", permission: "roles:read" },
];
