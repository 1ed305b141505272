import type { ActionSchema, Context, Middleware } from "moleculer";
import { z } from "zod";
import type { BranchCall } from "../tx/barrier";
import { AppError, badRequest, forbidden, unauthorized } from "./errors";

export const ROLES = ["user", "reviewer", "operator", "admin"] as const;
export type Role = (typeof ROLES)[number];

export interface AuthUser {
  id: number;
  username: string;
  roles: Role[];
  /** The sign-in session the token belongs to (revocable). */
  sid?: string;
  /** The tenant the user signed in to, and their role in it. */
  tenant?: { id: string; role: string };
}

/** What travels in ctx.meta on every hop. */
export interface Meta {
  user?: AuthUser;
  requestId?: string;
  idempotencyKey?: string;
  ip?: string;
  /** On routes that ask for it: the exact request body and the request headers. */
  rawBody?: string;
  headers?: Record<string, string>;
  /** The release lane (node version) this request is routed to, decided once at the gateway. */
  lane?: string;
  /** Set by the transaction coordinator on a branch call: which global transaction, branch and operation. */
  tx?: BranchCall;
}

export type Ctx<P> = Context<P, Meta>;

/**
 * An action whose params are parsed by its contract's zod schema before the handler runs
 * (by the validation middleware, so remote and local calls are checked alike).
 */
export function action<S extends z.ZodType, R>(
  input: S,
  handler: (ctx: Ctx<z.infer<S>>) => Promise<R>,
): ActionSchema {
  // A closure, not the schema itself: Moleculer deep-clones action definitions, which breaks zod objects.
  const parse = (params: unknown) => input.safeParse(params);
  return { input: parse, handler } as ActionSchema;
}

export function requireUser(ctx: Ctx<unknown>): AuthUser {
  if (!ctx.meta.user) throw unauthorized();
  return ctx.meta.user;
}

export function hasRole(user: AuthUser, ...roles: Role[]): boolean {
  return user.roles.includes("admin") || roles.some((r) => user.roles.includes(r));
}

/** Re-checks a role inside the service: the gateway's check is not the only line. */
export function requireRole(ctx: Ctx<unknown>, ...roles: Role[]): AuthUser {
  const user = requireUser(ctx);
  if (!hasRole(user, ...roles)) throw forbidden("FORBIDDEN", `requires role ${roles.join(" or ")}`);
  return user;
}

export function requireIdempotencyKey(ctx: Ctx<unknown>): string {
  const key = ctx.meta.idempotencyKey;
  if (!key) throw badRequest("IDEMPOTENCY_KEY_REQUIRED", "the Idempotency-Key header is required", "Idempotency-Key");
  if (key.length > 64 || !/^[\x21-\x7e]+$/.test(key))
    throw badRequest("IDEMPOTENCY_KEY_INVALID", "Idempotency-Key must be 1-64 visible ASCII characters", "Idempotency-Key");
  return key;
}

/** First failing field of a zod error, as the 400 a caller can act on. */
export function validationError(error: z.ZodError): AppError {
  const issue = error.issues[0];
  const field = issue.path.map(String).join(".");
  return badRequest("VALIDATION_FAILED", field ? `${field}: ${issue.message}` : issue.message, field || undefined);
}

export const ValidationMiddleware = {
  name: "ZodInput",
  localAction(next: (ctx: Context) => Promise<unknown>, def: ActionSchema) {
    const parse = (def as { input?: (params: unknown) => ReturnType<z.ZodType["safeParse"]> }).input;
    if (!parse) return next;
    return (ctx: Context) => {
      const parsed = parse(ctx.params ?? {});
      if (!parsed.success) return Promise.reject(validationError(parsed.error));
      ctx.params = parsed.data as object;
      return next(ctx);
    };
  },
} as unknown as Middleware;

/** Pagination shared by list endpoints: newest first, opaque cursor = last id seen. */
export const pageInput = {
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(64).optional(),
};
