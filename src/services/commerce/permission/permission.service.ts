import { type Enforcer, newEnforcer, newModelFromString } from "casbin";
import type { ServiceBroker, ServiceSchema } from "moleculer";
import { iso } from "../../../platform/clock/clock";
import { writeAudit } from "../../../platform/db/audit";
import { retryOnUniqueViolation } from "../../../platform/db/db";
import { routesWithSchemas } from "../../../platform/gateway/routes";
import { action, type Ctx, hasRole, requireUser } from "../../../platform/runtime/action";
import { badRequest, conflict, forbidden, notFound } from "../../../platform/runtime/errors";
import type { Platform } from "../../../platform/runtime/platform";
import { type Access, TenantEvents } from "../tenant/tenant.contract";
import { PermissionContract as C, permissionRoutes, type RoleView } from "./permission.contract";
import { BUILT_IN_ROLES, isBuiltIn, MODEL, permissionProblem, subjectOf, tenantPolicy } from "./permission.domain";
import { permissionMigrations, type PermissionTables, TENANT_TABLES } from "./permission.store";

/** Broadcast to every permission node when a tenant's roles, assignments or members change. */
const CHANGED = "permission.changed";

interface Loaded {
  enforcer: Enforcer;
  /** Membership roles the enforcer was built with: a check that sees another one rebuilds it. */
  members: Map<number, string>;
}

/**
 * Tenant RBAC on casbin (RBAC with domains, the tenant as domain): built-in roles OWNER and STAFF,
 * roles each tenant defines, and their assignment to members, every change audited. The gateway asks
 * `permission.require` before routes that name a permission; services ask it again for sensitive
 * actions. Membership stays the tenant service's: a stranger is a 404 before any rule is read.
 */
export function permissionService(platform: Platform): ServiceSchema {
  const host = platform.host<PermissionTables>("permission", permissionMigrations, TENANT_TABLES);
  const { clock } = platform;
  const loaded = new Map<string, Promise<Loaded>>();
  let broker: ServiceBroker;

  async function build(tid: string): Promise<Loaded> {
    const db = host.forTenant(tid);
    const [roles, assignments, members] = await Promise.all([
      db.selectFrom("roles").selectAll().execute(),
      db.selectFrom("assignments").selectAll().execute(),
      broker.call<{ userId: number; role: string }[], object>("tenant.memberRoles", { tid }),
    ]);
    const policy = tenantPolicy(
      tid,
      roles.map((r) => ({ name: r.name, permissions: JSON.parse(r.permissions) as string[] })),
      members,
      assignments.map((a) => ({ userId: Number(a.user_id), role: a.role })),
    );
    // A casbin model holds its policy: one per tenant, never shared.
    const enforcer = await newEnforcer(newModelFromString(MODEL));
    if (policy.policies.length > 0) await enforcer.addPolicies(policy.policies);
    if (policy.groupings.length > 0) await enforcer.addGroupingPolicies(policy.groupings);
    return { enforcer, members: new Map(members.map((m) => [m.userId, m.role])) };
  }

  function enforcerOf(tid: string): Promise<Loaded> {
    let found = loaded.get(tid);
    if (!found) {
      found = build(tid);
      loaded.set(tid, found);
      found.catch(() => loaded.delete(tid));
    }
    return found;
  }

  function changed(tid: string): void {
    loaded.delete(tid);
    broker.broadcast(CHANGED, { tid });
  }

  /** The caller's standing in the tenant and, unless a platform admin, the permission through casbin. */
  async function require(ctx: Ctx<unknown>, tid: string, permission: string, writing?: boolean): Promise<Access> {
    const problem = permissionProblem(permission);
    if (problem) throw badRequest("INVALID_PERMISSION", problem, "permission");
    const user = requireUser(ctx);
    const admin = hasRole(user, "admin");
    const [resource, act] = permission.split(":");
    const access = await ctx.call<Access, object>("tenant.access", { tid, userId: user.id, admin, writing: writing ?? act !== "read" });
    if (admin) return access;
    let l = await enforcerOf(tid);
    if (access.role !== null && l.members.get(user.id) !== access.role) {
      // The membership moved since the rules were built (its event is still on its way): rebuild now.
      loaded.delete(tid);
      l = await enforcerOf(tid);
    }
    if (!(await l.enforcer.enforce(subjectOf(user.id), tid, resource, act)))
      throw forbidden("PERMISSION_DENIED", `this needs ${permission} in tenant ${tid}`);
    return access;
  }

  const audit = (tid: string, actorId: number, act: string, subject: string, detail: unknown, trx: ReturnType<typeof host.forTenant>) =>
    writeAudit(trx, { tenantId: tid, actorId, action: act, subject, detail, at: clock.now() });

  async function roleViews(tid: string): Promise<RoleView[]> {
    const custom = await host.forTenant(tid).selectFrom("roles").selectAll().orderBy("name").execute();
    return [
      ...Object.entries(BUILT_IN_ROLES).map(([name, permissions]) => ({ name, builtIn: true, permissions: [...permissions] })),
      ...custom.map((r) => ({ name: r.name, builtIn: false, permissions: JSON.parse(r.permissions) as string[] })),
    ];
  }

  return {
    name: "permission",
    settings: { routes: routesWithSchemas(permissionRoutes, C) },
    events: {
      [CHANGED](ctx: { params: { tid: string } }) {
        loaded.delete(ctx.params.tid);
      },
    },
    actions: {
      require: action(C.require, (ctx) => require(ctx, ctx.params.tid, ctx.params.permission, ctx.params.writing)),

      mine: action(C.mine, async (ctx) => {
        const { tid } = ctx.params;
        const user = requireUser(ctx);
        const access = await ctx.call<Access, object>("tenant.access", { tid, userId: user.id, admin: hasRole(user, "admin"), writing: false });
        if (hasRole(user, "admin")) return { role: access.role, permissions: ["*:*"] };
        const { enforcer } = await enforcerOf(tid);
        const implicit = await enforcer.getImplicitPermissionsForUser(subjectOf(user.id), tid);
        return { role: access.role, permissions: [...new Set(implicit.map((p) => `${p[2]}:${p[3]}`))].sort() };
      }),

      listRoles: action(C.listRoles, async (ctx) => {
        await require(ctx, ctx.params.tid, "roles:read");
        return roleViews(ctx.params.tid);
      }),

      putRole: action(C.putRole, async (ctx) => {
        const { tid, name, permissions } = ctx.params;
        await require(ctx, tid, "roles:write");
        if (isBuiltIn(name)) throw conflict("ROLE_BUILT_IN", `${name} is a built-in role and cannot be changed`, "name");
        for (const p of permissions) {
          const problem = permissionProblem(p);
          if (problem) throw badRequest("INVALID_PERMISSION", problem, "permissions");
        }
        const user = requireUser(ctx);
        const now = clock.now();
        const sorted = [...new Set(permissions)].sort();
        // Two first writes of a role race past the read (a row not there yet locks nothing on PostgreSQL):
        // the loser's insert meets the winner's row, and runs again as an update.
        await retryOnUniqueViolation(() => host.tenantTx(tid, async (trx) => {
          const existing = await host.store.forUpdate(trx.selectFrom("roles").select("permissions").where("name", "=", name)).executeTakeFirst();
          if (existing) await trx.updateTable("roles").set({ permissions: JSON.stringify(sorted), updated_at: now }).where("name", "=", name).execute();
          else await trx.insertInto("roles").values({ tenant_id: tid, name, permissions: JSON.stringify(sorted), created_at: now, updated_at: now }).execute();
          await audit(tid, user.id, existing ? "role.update" : "role.create", `role:${name}`, { before: existing ? JSON.parse(existing.permissions) : null, after: sorted }, trx);
        }));
        changed(tid);
        return { name, builtIn: false, permissions: sorted } satisfies RoleView;
      }),

      deleteRole: action(C.deleteRole, async (ctx) => {
        const { tid, name } = ctx.params;
        await require(ctx, tid, "roles:write");
        if (isBuiltIn(name)) throw conflict("ROLE_BUILT_IN", `${name} is a built-in role and cannot be deleted`, "name");
        const user = requireUser(ctx);
        await host.tenantTx(tid, async (trx) => {
          const existing = await trx.selectFrom("roles").select("permissions").where("name", "=", name).executeTakeFirst();
          if (!existing) throw notFound("ROLE_NOT_FOUND", `no role ${name}`);
          const holders = await trx.selectFrom("assignments").select("user_id").where("role", "=", name).execute();
          await trx.deleteFrom("assignments").where("role", "=", name).execute();
          await trx.deleteFrom("roles").where("name", "=", name).execute();
          await audit(tid, user.id, "role.delete", `role:${name}`, { permissions: JSON.parse(existing.permissions), heldBy: holders.map((h) => Number(h.user_id)) }, trx);
        });
        changed(tid);
      }),

      assignRoles: action(C.assignRoles, async (ctx) => {
        const { tid, userId, roles } = ctx.params;
        await require(ctx, tid, "roles:write");
        const user = requireUser(ctx);
        const members = await ctx.call<{ userId: number; role: string }[], object>("tenant.memberRoles", { tid });
        if (!members.some((m) => m.userId === userId)) throw notFound("MEMBER_NOT_FOUND", `user ${userId} is not a member of ${tid}`);
        if (roles.includes("OWNER")) throw badRequest("ROLE_NOT_ASSIGNABLE", "OWNER comes with membership (tenant members API), not from a role assignment", "roles");
        const wanted = [...new Set(roles)].sort();
        await host.tenantTx(tid, async (trx) => {
          const custom = new Set((await trx.selectFrom("roles").select("name").execute()).map((r) => r.name));
          const unknown = wanted.filter((r) => !custom.has(r) && !isBuiltIn(r));
          if (unknown.length > 0) throw notFound("ROLE_NOT_FOUND", `no role ${unknown.join(", ")}`);
          const before = (await trx.selectFrom("assignments").select("role").where("user_id", "=", userId).execute()).map((a) => a.role).sort();
          await trx.deleteFrom("assignments").where("user_id", "=", userId).execute();
          if (wanted.length > 0) await trx.insertInto("assignments").values(wanted.map((role) => ({ tenant_id: tid, user_id: userId, role }))).execute();
          await audit(tid, user.id, "member.roles", `user:${userId}`, { before, after: wanted }, trx);
        });
        changed(tid);
        return { userId, roles: wanted };
      }),

      audit: action(C.audit, async (ctx) => {
        const { tid, limit, cursor } = ctx.params;
        await require(ctx, tid, "roles:read");
        let q = host.forTenant(tid).selectFrom("audit").selectAll();
        if (cursor) q = q.where("seq", "<", Number(cursor));
        const rows = await q.orderBy("seq", "desc").limit(limit + 1).execute();
        const page = rows.slice(0, limit);
        return {
          items: page.map((a) => ({ actorId: Number(a.actor_id), action: a.action, subject: a.subject, detail: JSON.parse(a.detail), at: iso(Number(a.at)) })),
          nextCursor: rows.length > limit ? String(page[page.length - 1].seq) : null,
        };
      }),
    },
    created() {
      // Membership is the tenant service's: a change there rebuilds this tenant's rules on every node.
      host.consume(TenantEvents.memberChanged, async (_trx, message) => {
        changed((message.data as { tenantId: string }).tenantId);
      });
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
