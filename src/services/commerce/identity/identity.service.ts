import { createHash, randomBytes } from "node:crypto";
import { hash, verify } from "@node-rs/argon2";
import type { ServiceBroker, ServiceSchema } from "moleculer";
import { iso } from "../../../platform/clock/clock";
import { revokedSessionKey, SESSION_REVOKED, TokenSigner } from "../../../platform/gateway/jwt";
import { RateLimit } from "../../../platform/guard/rate-limit";
import { action, type AuthUser, requireRole, requireUser } from "../../../platform/runtime/action";
import { isUniqueViolation } from "../../../platform/db/db";
import { AppError, conflict, notFound } from "../../../platform/runtime/errors";
import { newId } from "../../../platform/runtime/ids";
import { routesWithSchemas } from "../../../platform/gateway/routes";
import type { Platform } from "../../../platform/runtime/platform";
import {
  IdentityContract as C,
  IdentityEvents,
  identityRoutes,
  type RolesChanged,
  type UserActive,
  type UserRegistered,
  type UserView,
  DEFAULT_LOGIN_LIMITS,
  LoginLimits,
} from "./identity.contract";
import { decodeRoles, encodeRoles, withRole } from "./identity.domain";
import { findById, findByUsername, identityMigrations, type IdentityTables, lockUser, sessionMigrations, type UserRow } from "./identity.store";

export const ADMIN_USERNAME = "admin";
/** How long a sign-in lasts without being refreshed. */
const REFRESH_TTL_MS = 30 * 86_400_000;

/** Accounts, passwords and access tokens: the minimum every domain signs in with. */
export function identityService(platform: Platform): ServiceSchema {
  const host = platform.host<IdentityTables>("identity", { ...identityMigrations, ...sessionMigrations });
  const { clock, config, kv } = platform;
  const signer = TokenSigner.fromConfig(config);
  // Login limits live in the config centre (identity/login-limits) and change without a restart.
  const limits = platform.configs.watch("identity", "identity", "login-limits", LoginLimits, DEFAULT_LOGIN_LIMITS);
  const limitersFor = (l: LoginLimits) => ({
    perAccount: new RateLimit(kv, { name: "login-account", ...l.perAccount }, "LOGIN_RATE_LIMITED"),
    perIp: new RateLimit(kv, { name: "login-ip", ...l.perIp }, "LOGIN_RATE_LIMITED"),
  });
  let limiters = limitersFor(limits.value);
  limits.onChange((l) => {
    limiters = limitersFor(l);
  });
  // Compared against when the username is unknown, so a miss costs as much as a wrong password.
  let decoyHash: Promise<string> | undefined;

  let broker: ServiceBroker;
  const sha256 = (value: string) => createHash("sha256").update(value).digest("hex");

  async function tokens(user: AuthUser, refreshToken: string) {
    return { accessToken: await signer.sign(user, config.tokenTtlSeconds, clock.now()), refreshToken, expiresIn: config.tokenTtlSeconds, user };
  }

  /** A new sign-in session on `device`: an access token bound to it and a refresh token (sid.secret). */
  async function openSession(user: AuthUser, device: string) {
    const now = clock.now();
    const sid = newId(now);
    const secret = randomBytes(32).toString("base64url");
    await host.db
      .insertInto("sessions")
      .values({
        id: sid,
        user_id: user.id,
        device: device.slice(0, 100),
        tenant: user.tenant ? JSON.stringify(user.tenant) : null,
        refresh_hash: sha256(secret),
        created_at: now,
        last_used_at: now,
        expires_at: now + REFRESH_TTL_MS,
        revoked_at: null,
        revoked_reason: null,
      })
      .execute();
    return tokens({ ...user, sid }, `${sid}.${secret}`);
  }

  /** Ends one of the user's sessions; its access tokens stop working on every gateway at once. */
  async function revoke(userId: number, sid: string, reason: string): Promise<boolean> {
    const result = await host.db
      .updateTable("sessions")
      .set({ revoked_at: clock.now(), revoked_reason: reason })
      .where("id", "=", sid)
      .where("user_id", "=", userId)
      .where("revoked_at", "is", null)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) return false;
    await announceRevoked(sid);
    return true;
  }

  async function announceRevoked(sid: string) {
    // Listed for as long as an access token of the session can live; broadcast for the gateways running now.
    await kv.set(revokedSessionKey(sid), "1", config.tokenTtlSeconds * 1000);
    await broker.broadcast(SESSION_REVOKED, { sid });
  }

  const view = (u: UserRow): UserView => ({
    id: Number(u.id),
    username: u.username,
    roles: decodeRoles(u.roles),
    createdAt: iso(u.created_at),
  });

  async function createUsers(usernames: string[], passwordHash: string, roles: string[]) {
    const now = clock.now();
    return host.tx(async (trx, emit) => {
      const created: UserView[] = [];
      for (const username of usernames) {
        const id = await host.store.insertId(
          trx.insertInto("users").values({ username, password_hash: passwordHash, roles: encodeRoles(roles), created_at: now, last_active_at: null }),
        );
        const event: UserRegistered = { userId: id, username, createdAt: now };
        emit(IdentityEvents.registered, event, `user-registered:${id}`);
        created.push({ id, username, roles: encodeRoles(roles).split(","), createdAt: iso(now) });
      }
      return created;
    });
  }

  return {
    name: "identity",
    settings: { routes: routesWithSchemas(identityRoutes, C) },
    actions: {
      register: action(C.register, async (ctx) => {
        const passwordHash = await hash(ctx.params.password);
        try {
          const [user] = await createUsers([ctx.params.username], passwordHash, ["user"]);
          return { id: user.id, username: user.username };
        } catch (err) {
          if (isUniqueViolation(err)) throw conflict("USERNAME_TAKEN", "that username is taken", "username");
          throw err;
        }
      }),

      login: action(C.login, async (ctx) => {
        const { username, password, device, tenantId } = ctx.params;
        const { perIp, perAccount } = limiters;
        await perIp.consume(ctx.meta.ip ?? "unknown");
        await perAccount.consume(username);
        const user = await findByUsername(host.db, username);
        decoyHash ??= hash(randomBytes(16).toString("hex"));
        const ok = await verify(user?.password_hash ?? (await decoyHash), password);
        if (!user || !ok) throw new AppError(401, "INVALID_CREDENTIALS", "wrong username or password");
        await limiters.perAccount.reset(username);
        const authUser: AuthUser = { id: Number(user.id), username: user.username, roles: decodeRoles(user.roles) };
        if (tenantId) {
          // Only a tenant the user works for (anything else is the tenant service's 404).
          const access = await ctx.call<{ role: string | null }, object>("tenant.access", { tid: tenantId, userId: authUser.id });
          authUser.tenant = { id: tenantId, role: access.role ?? "ADMIN" };
        }
        return openSession(authUser, device ?? ctx.meta.headers?.["user-agent"] ?? "unknown device");
      }),

      refresh: action(C.refresh, async (ctx) => {
        const [sid, secret] = ctx.params.refreshToken.split(".");
        const invalid = () => new AppError(401, "INVALID_REFRESH_TOKEN", "the refresh token is not valid");
        if (!sid || !secret) throw invalid();
        const now = clock.now();
        const outcome = await host.tx(async (trx) => {
          const s = await host.store.forUpdate(trx.selectFrom("sessions").selectAll().where("id", "=", sid)).executeTakeFirst();
          if (!s || s.revoked_at !== null || s.expires_at <= now) throw invalid();
          if (s.refresh_hash !== sha256(secret)) {
            // A spent refresh token came back: someone holds a copy. End the session for everyone.
            await trx.updateTable("sessions").set({ revoked_at: now, revoked_reason: "REFRESH_REUSED" }).where("id", "=", sid).execute();
            return { reused: true as const };
          }
          const user = await findById(trx, Number(s.user_id));
          if (!user) throw invalid();
          const next = randomBytes(32).toString("base64url");
          await trx.updateTable("sessions").set({ refresh_hash: sha256(next), last_used_at: now }).where("id", "=", sid).execute();
          const authUser: AuthUser = { id: Number(user.id), username: user.username, roles: decodeRoles(user.roles), sid };
          if (s.tenant) authUser.tenant = JSON.parse(s.tenant) as AuthUser["tenant"];
          return { reused: false as const, authUser, refreshToken: `${sid}.${next}` };
        });
        if (outcome.reused) {
          await announceRevoked(sid);
          throw new AppError(401, "REFRESH_TOKEN_REUSED", "this refresh token was already used; the session is closed");
        }
        return tokens(outcome.authUser, outcome.refreshToken);
      }),

      logout: action(C.logout, async (ctx) => {
        const user = requireUser(ctx);
        if (user.sid) await revoke(user.id, user.sid, "LOGOUT");
        return { loggedOut: true };
      }),

      sessions: action(C.sessions, async (ctx) => {
        const user = requireUser(ctx);
        const rows = await host.db
          .selectFrom("sessions")
          .selectAll()
          .where("user_id", "=", user.id)
          .where("revoked_at", "is", null)
          .where("expires_at", ">", clock.now())
          .orderBy("id", "desc")
          .execute();
        return rows.map((s) => ({ sid: s.id, device: s.device, current: s.id === user.sid, createdAt: iso(s.created_at), lastUsedAt: iso(s.last_used_at), expiresAt: iso(s.expires_at) }));
      }),

      revokeSession: action(C.revokeSession, async (ctx) => {
        const user = requireUser(ctx);
        if (!(await revoke(user.id, ctx.params.sid, "REVOKED"))) throw notFound("SESSION_NOT_FOUND", `no session ${ctx.params.sid}`);
        return { sid: ctx.params.sid, revoked: true };
      }),

      changePassword: action(C.changePassword, async (ctx) => {
        const user = requireUser(ctx);
        const { currentPassword, newPassword } = ctx.params;
        await limiters.perAccount.consume(user.username);
        const row = await findById(host.db, user.id);
        if (!row || !(await verify(row.password_hash, currentPassword))) throw new AppError(401, "INVALID_CREDENTIALS", "the current password is wrong");
        const passwordHash = await hash(newPassword);
        // The new password and the end of every other sign-in commit together: whoever knew the old one is out.
        const ended = await host.tx(async (trx) => {
          await trx.updateTable("users").set({ password_hash: passwordHash }).where("id", "=", user.id).execute();
          const others = (await trx.selectFrom("sessions").select("id").where("user_id", "=", user.id).where("revoked_at", "is", null).execute())
            .map((s) => s.id)
            .filter((sid) => sid !== user.sid);
          if (others.length > 0)
            await trx.updateTable("sessions").set({ revoked_at: clock.now(), revoked_reason: "PASSWORD_CHANGED" }).where("id", "in", others).execute();
          return others;
        });
        for (const sid of ended) await announceRevoked(sid);
        return { changed: true, sessionsEnded: ended.length };
      }),

      me: action(C.me, async (ctx) => {
        const user = await findById(host.db, requireUser(ctx).id);
        if (!user) throw notFound("USER_NOT_FOUND", "this account no longer exists");
        return view(user);
      }),

      get: action(C.get, async (ctx) => {
        const user = await findById(host.db, ctx.params.id);
        if (!user) throw notFound("USER_NOT_FOUND", `no user ${ctx.params.id}`);
        return view(user);
      }),

      count: action(C.count, async () => {
        const row = await host.db.selectFrom("users").select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow();
        return Number(row.n);
      }),

      findByUsernames: action(C.findByUsernames, async (ctx) => {
        const rows = await host.db.selectFrom("users").select(["id", "username"]).where("username", "in", ctx.params.usernames).orderBy("id").execute();
        return rows.map((r) => ({ id: Number(r.id), username: r.username }));
      }),

      setRoles: action(C.setRoles, async (ctx) => {
        const admin = requireRole(ctx, "admin");
        const user = await host.tx(async (trx, emit) => {
          const found = await lockUser(trx, ctx.params.id);
          if (!found) throw notFound("USER_NOT_FOUND", `no user ${ctx.params.id}`);
          const roles = encodeRoles(ctx.params.roles);
          await trx.updateTable("users").set({ roles }).where("id", "=", found.id).execute();
          const changed: RolesChanged = {
            userId: Number(found.id),
            roles: decodeRoles(roles),
            previous: decodeRoles(found.roles),
            by: admin.id,
            at: clock.now(),
          };
          emit(IdentityEvents.rolesChanged, changed);
          return { ...found, roles };
        });
        return view(user);
      }),

      grantRole: action(C.grantRole, async (ctx) => {
        await host.tx(async (trx) => {
          const found = await lockUser(trx, ctx.params.userId);
          if (!found) throw notFound("USER_NOT_FOUND", `no user ${ctx.params.userId}`);
          const roles = withRole(found.roles, ctx.params.role);
          if (roles !== found.roles) await trx.updateTable("users").set({ roles }).where("id", "=", found.id).execute();
        });
      }),

      /** Users the gateways saw active, in a batch: one transaction, one event per known user. */
      recordActivity: action(C.recordActivity, async (ctx) => {
        const now = ctx.params.at;
        await host.tx(async (trx, emit) => {
          const found = await trx.selectFrom("users").select(["id", "created_at"]).where("id", "in", ctx.params.userIds).execute();
          if (found.length === 0) return;
          await trx.updateTable("users").set({ last_active_at: now }).where("id", "in", found.map((u) => u.id)).execute();
          for (const u of found) {
            const event: UserActive = { userId: Number(u.id), at: now, createdAt: Number(u.created_at) };
            emit(IdentityEvents.active, event, `user-active:${u.id}:${now}`);
          }
        });
      }),

      importUsers: action(C.importUsers, async (ctx) => {
        const passwordHash = await hash(ctx.params.password);
        try {
          return await createUsers(ctx.params.usernames, passwordHash, ctx.params.roles);
        } catch (err) {
          if (isUniqueViolation(err)) throw conflict("USERNAME_TAKEN", "one of the usernames is taken", "usernames");
          throw err;
        }
      }),

      /** Creates the bootstrap admin once; answers the generated password only on that first call. */
      ensureAdmin: action(C.ensureAdmin, async (ctx) => {
        const existing = await findByUsername(host.db, ADMIN_USERNAME);
        if (existing) return { created: false, username: ADMIN_USERNAME };
        const password = ctx.params.password ?? randomBytes(12).toString("base64url");
        try {
          await createUsers([ADMIN_USERNAME], await hash(password), ["admin", "operator"]);
        } catch (err) {
          if (isUniqueViolation(err)) return { created: false, username: ADMIN_USERNAME };
          throw err;
        }
        return { created: true, username: ADMIN_USERNAME, password: ctx.params.password ? undefined : password };
      }),
    },
    async started() {
      broker = this.broker;
      await host.start();
    },
    async stopped() {
      await host.stop();
    },
  };
}
