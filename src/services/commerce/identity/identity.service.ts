import { randomBytes } from "node:crypto";
import { hash, verify } from "@node-rs/argon2";
import type { ServiceSchema } from "moleculer";
import { iso } from "../../../platform/clock/clock";
import { TokenSigner } from "../../../platform/gateway/jwt";
import { RateLimit } from "../../../platform/guard/rate-limit";
import { action, type AuthUser, requireRole, requireUser } from "../../../platform/runtime/action";
import { isUniqueViolation } from "../../../platform/db/db";
import { AppError, conflict, notFound } from "../../../platform/runtime/errors";
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
import { findById, findByUsername, identityMigrations, type IdentityTables, type UserRow } from "./identity.store";

export const ADMIN_USERNAME = "admin";

/** Accounts, passwords and access tokens: the minimum every domain signs in with. */
export function identityService(platform: Platform): ServiceSchema {
  const host = platform.host<IdentityTables>("identity", identityMigrations);
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
        const { username, password } = ctx.params;
        const { perIp, perAccount } = limiters;
        await perIp.consume(ctx.meta.ip ?? "unknown");
        await perAccount.consume(username);
        const user = await findByUsername(host.db, username);
        decoyHash ??= hash(randomBytes(16).toString("hex"));
        const ok = await verify(user?.password_hash ?? (await decoyHash), password);
        if (!user || !ok) throw new AppError(401, "INVALID_CREDENTIALS", "wrong username or password");
        await limiters.perAccount.reset(username);
        const authUser: AuthUser = { id: Number(user.id), username: user.username, roles: decodeRoles(user.roles) };
        return {
          accessToken: await signer.sign(authUser, config.tokenTtlSeconds, clock.now()),
          expiresIn: config.tokenTtlSeconds,
          user: authUser,
        };
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
          const found = await findById(trx, ctx.params.id);
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
          const found = await findById(trx, ctx.params.userId);
          if (!found) throw notFound("USER_NOT_FOUND", `no user ${ctx.params.userId}`);
          const roles = withRole(found.roles, ctx.params.role);
          if (roles !== found.roles) await trx.updateTable("users").set({ roles }).where("id", "=", found.id).execute();
        });
      }),

      recordActivity: action(C.recordActivity, async (ctx) => {
        const now = clock.now();
        await host.tx(async (trx, emit) => {
          const found = await findById(trx, ctx.params.userId);
          if (!found) return;
          await trx.updateTable("users").set({ last_active_at: now }).where("id", "=", found.id).execute();
          const event: UserActive = { userId: Number(found.id), at: now, createdAt: Number(found.created_at) };
          emit(IdentityEvents.active, event);
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
      await host.start();
    },
    async stopped() {
      await host.stop();
    },
  };
}
