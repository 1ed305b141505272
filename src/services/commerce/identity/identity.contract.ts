import { z } from "zod";
import type { RouteDef } from "../../../platform/gateway/routes";
import { ROLES } from "../../../platform/runtime/action";

export const username = z
  .string()
  .min(3)
  .max(32)
  .regex(/^[a-z0-9_.-]+$/, "use 3-32 lower-case letters, digits, '.', '_' or '-'");
const password = z.string().min(8, "at least 8 characters").max(128);
const role = z.enum(ROLES);

const limit = z.object({
  points: z.number().int().min(1).max(1_000_000),
  durationSeconds: z.number().int().min(1).max(86_400),
  blockSeconds: z.number().int().min(0).max(86_400).optional(),
});

/** Config centre value identity/login-limits: attempts per account and per client address. */
export const LoginLimits = z.object({ perAccount: limit, perIp: limit });
export type LoginLimits = z.infer<typeof LoginLimits>;

export const DEFAULT_LOGIN_LIMITS: LoginLimits = {
  perAccount: { points: 10, durationSeconds: 300, blockSeconds: 300 },
  perIp: { points: 300, durationSeconds: 60 },
};

export const IdentityContract = {
  register: z.object({ username, password }),
  login: z.object({
    username: z.string().min(1).max(64),
    password: z.string().min(1).max(128),
    /** A name for this sign-in, shown in the session list (default: the client's user agent). */
    device: z.string().trim().min(1).max(100).optional(),
    /** Sign in to a tenant the user belongs to: the token then carries it and the user's role there. */
    tenantId: z.string().min(1).max(40).optional(),
  }),
  /** Trades a refresh token for a new pair; the old refresh token is spent (a second use revokes the session). */
  refresh: z.object({ refreshToken: z.string().min(1).max(200) }),
  logout: z.object({}),
  sessions: z.object({}),
  revokeSession: z.object({ sid: z.string().min(1).max(40) }),
  changePassword: z.object({ currentPassword: z.string().min(1).max(128), newPassword: password }),
  me: z.object({}),
  get: z.object({ id: z.coerce.number().int().positive() }),
  setRoles: z.object({ id: z.coerce.number().int().positive(), roles: z.array(role).min(1).max(ROLES.length) }),
  grantRole: z.object({ userId: z.number().int().positive(), role }),
  /** Users seen active, and when (the start of the window they were seen in). */
  recordActivity: z.object({ userIds: z.array(z.number().int().positive()).min(1).max(1000), at: z.number().int().min(0) }),
  /** Bulk creation with one shared password (demo data, migrations from another system). */
  importUsers: z.object({ usernames: z.array(username).min(1).max(10_000), password, roles: z.array(role).default(["user"]) }),
  ensureAdmin: z.object({ password: z.string().min(8).max(128).optional() }),
  count: z.object({}),
  findByUsernames: z.object({ usernames: z.array(z.string().max(64)).min(1).max(10_000) }),
};

export interface UserView {
  id: number;
  username: string;
  roles: string[];
  createdAt: string;
}

/** Facts identity publishes (stream subjects). */
export const IdentityEvents = {
  registered: "identity.user.registered",
  active: "identity.user.active",
  rolesChanged: "identity.user.roles-changed",
} as const;

/** An administrator set a user's roles (who may operate governance changes with it). */
export interface RolesChanged {
  userId: number;
  roles: string[];
  previous: string[];
  by: number;
  at: number;
}

export interface UserRegistered {
  userId: number;
  username: string;
  createdAt: number;
}

export interface UserActive {
  userId: number;
  at: number;
  createdAt: number;
}

export const identityRoutes: RouteDef[] = [
  { method: "POST", path: "/api/auth/register", action: "identity.register", auth: "public", status: 201 },
  { method: "POST", path: "/api/auth/login", action: "identity.login", auth: "public" },
  { method: "POST", path: "/api/auth/refresh", action: "identity.refresh", auth: "public" },
  { method: "POST", path: "/api/auth/logout", action: "identity.logout", auth: "user" },
  { method: "GET", path: "/api/auth/sessions", action: "identity.sessions", auth: "user" },
  { method: "DELETE", path: "/api/auth/sessions/:sid", action: "identity.revokeSession", auth: "user" },
  { method: "POST", path: "/api/auth/password", action: "identity.changePassword", auth: "user" },
  { method: "GET", path: "/api/me", action: "identity.me", auth: "user" },
  { method: "GET", path: "/api/admin/users/:id", action: "identity.get", auth: ["admin"] },
  { method: "PUT", path: "/api/admin/users/:id/roles", action: "identity.setRoles", auth: ["admin"] },
];
