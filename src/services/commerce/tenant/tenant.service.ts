import type { ServiceSchema } from "moleculer";
import { iso } from "../../../platform/clock/clock";
import { routesWithSchemas } from "../../../platform/gateway/routes";
import { type AuthUser, action, hasRole, requireRole, requireUser } from "../../../platform/runtime/action";
import { AppError, conflict, forbidden, notFound } from "../../../platform/runtime/errors";
import { newId } from "../../../platform/runtime/ids";
import type { Platform } from "../../../platform/runtime/platform";
import { type Access, type MemberView, TenantContract as C, TenantEvents, type TenantView, tenantRoutes } from "./tenant.contract";
import { accessOf, DEFAULT_QUOTAS, type MemberRole, type Quotas, quotaRefusal, suspendedRefusal } from "./tenant.domain";
import { TENANT_TABLES, type TenantRow, tenantMigrations, type TenantTables } from "./tenant.store";

/**
 * Tenants (merchants): their status and quotas, and their members. Other commerce services ask
 * `tenant.access` before touching a tenant's data: a stranger gets the same 404 as for a tenant that
 * does not exist.
 */
export function tenantService(platform: Platform): ServiceSchema {
  const host = platform.host<TenantTables>("tenant", tenantMigrations, TENANT_TABLES);
  const { clock } = platform;

  const quotasOf = (t: TenantRow): Quotas => ({ ...DEFAULT_QUOTAS, ...(JSON.parse(t.quotas) as Partial<Quotas>) });
  const view = (t: TenantRow): TenantView => ({ id: t.id, name: t.name, status: t.status, quotas: quotasOf(t), createdAt: iso(t.created_at) });
  const missing = (tid: string) => notFound("TENANT_NOT_FOUND", `no tenant ${tid}`);

  async function standing(tid: string, userId: number, admin: boolean, writing: boolean) {
    const tenant = await host.db.selectFrom("tenants").selectAll().where("id", "=", tid).executeTakeFirst();
    if (!tenant) throw missing(tid);
    const member = await host.forTenant(tid).selectFrom("members").select("role").where("user_id", "=", userId).executeTakeFirst();
    const access = accessOf({ userId, admin, role: member?.role });
    // A stranger learns nothing, not even that the tenant exists.
    if (access === "NONE") throw missing(tid);
    const refusal = suspendedRefusal(tenant.status, writing);
    if (refusal) throw conflict(refusal.code, refusal.message);
    return { tenant, role: member?.role ?? null, access };
  }

  const forUser = (user: AuthUser, tid: string, writing: boolean) => standing(tid, user.id, hasRole(user, "admin"), writing);

  async function mustManage(user: AuthUser, tid: string) {
    const s = await forUser(user, tid, true);
    if (s.access !== "MANAGER") throw forbidden("TENANT_OWNER_ONLY", "only the tenant's owners and administrators manage its members");
    return s;
  }

  return {
    name: "tenant",
    settings: { routes: routesWithSchemas(tenantRoutes, C) },
    actions: {
      create: action(C.create, async (ctx) => {
        const admin = requireRole(ctx, "admin");
        const { name, ownerId, quotas } = ctx.params;
        const now = clock.now();
        const id = newId(now);
        const row = await host.tenantTx(id, async (trx, emit) => {
          const tenant: TenantRow = { id, name, status: "ACTIVE", quotas: JSON.stringify({ ...DEFAULT_QUOTAS, ...quotas }), created_by: admin.id, created_at: now, updated_at: now };
          await trx.insertInto("tenants").values(tenant).execute();
          if (ownerId) await trx.insertInto("members").values({ tenant_id: id, user_id: ownerId, role: "OWNER", added_by: admin.id, added_at: now }).execute();
          emit(TenantEvents.created, { tenantId: id, name, ownerId: ownerId ?? null, at: now }, `tenant-created:${id}`);
          return tenant;
        });
        return view(row);
      }),

      list: action(C.list, async (ctx) => {
        requireRole(ctx, "admin");
        const { limit, cursor } = ctx.params;
        let q = host.db.selectFrom("tenants").selectAll();
        if (cursor) q = q.where("id", "<", cursor);
        const rows = await q.orderBy("id", "desc").limit(limit + 1).execute();
        const page = rows.slice(0, limit);
        return { items: page.map(view), nextCursor: rows.length > limit ? page[page.length - 1].id : null };
      }),

      get: action(C.get, async (ctx) => {
        const s = await forUser(requireUser(ctx), ctx.params.tid, false);
        return { ...view(s.tenant), role: s.role };
      }),

      setStatus: action(C.setStatus, async (ctx) => {
        const admin = requireRole(ctx, "admin");
        const { tid, status, reason } = ctx.params;
        const row = await host.tx(async (trx, emit) => {
          const now = clock.now();
          const tenant = await host.store.forUpdate(trx.selectFrom("tenants").selectAll().where("id", "=", tid)).executeTakeFirst();
          if (!tenant) throw missing(tid);
          await trx.updateTable("tenants").set({ status, updated_at: now }).where("id", "=", tid).execute();
          emit(TenantEvents.statusChanged, { tenantId: tid, status, previous: tenant.status, reason, by: admin.id, at: now });
          return { ...tenant, status, updated_at: now };
        });
        return view(row);
      }),

      setQuotas: action(C.setQuotas, async (ctx) => {
        requireRole(ctx, "admin");
        const { tid, quotas } = ctx.params;
        const row = await host.tx(async (trx) => {
          const tenant = await host.store.forUpdate(trx.selectFrom("tenants").selectAll().where("id", "=", tid)).executeTakeFirst();
          if (!tenant) throw missing(tid);
          const merged = JSON.stringify({ ...quotasOf(tenant), ...quotas });
          await trx.updateTable("tenants").set({ quotas: merged, updated_at: clock.now() }).where("id", "=", tid).execute();
          return { ...tenant, quotas: merged };
        });
        return view(row);
      }),

      members: action(C.members, async (ctx): Promise<MemberView[]> => {
        const { tid } = ctx.params;
        await forUser(requireUser(ctx), tid, false);
        const rows = await host.forTenant(tid).selectFrom("members").selectAll().orderBy("added_at").orderBy("user_id").execute();
        return rows.map((m) => ({ userId: Number(m.user_id), role: m.role, addedAt: iso(m.added_at) }));
      }),

      memberRoles: action(C.memberRoles, async (ctx) => {
        const rows = await host.forTenant(ctx.params.tid).selectFrom("members").select(["user_id", "role"]).execute();
        return rows.map((m) => ({ userId: Number(m.user_id), role: m.role }));
      }),

      addMember: action(C.addMember, async (ctx) => {
        const user = requireUser(ctx);
        const { tid, userId, role } = ctx.params;
        await mustManage(user, tid);
        return host.tenantTx(tid, async (trx, emit) => {
          const now = clock.now();
          // The tenant row serialises member changes, so two adds cannot both take the last place.
          const tenant = await host.store.forUpdate(trx.selectFrom("tenants").selectAll().where("id", "=", tid)).executeTakeFirstOrThrow();
          const existing = await host.store.forUpdate(trx.selectFrom("members").selectAll().where("user_id", "=", userId)).executeTakeFirst();
          if (existing) {
            if (existing.role !== role) await trx.updateTable("members").set({ role }).where("user_id", "=", userId).execute();
          } else {
            const count = await trx.selectFrom("members").select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow();
            const refusal = quotaRefusal(quotasOf(tenant), "maxUsers", Number(count.n));
            if (refusal) throw new AppError(429, refusal.code, refusal.message);
            await trx.insertInto("members").values({ tenant_id: tid, user_id: userId, role, added_by: user.id, added_at: now }).execute();
          }
          emit(TenantEvents.memberChanged, { tenantId: tid, userId, role, previous: existing?.role ?? null, by: user.id, at: now });
          return { userId, role, addedAt: iso(existing?.added_at ?? now) } satisfies MemberView;
        });
      }),

      removeMember: action(C.removeMember, async (ctx) => {
        const user = requireUser(ctx);
        const { tid, userId } = ctx.params;
        await mustManage(user, tid);
        await host.tenantTx(tid, async (trx, emit) => {
          await host.store.forUpdate(trx.selectFrom("tenants").select("id").where("id", "=", tid)).executeTakeFirstOrThrow();
          const members = await trx.selectFrom("members").select(["user_id", "role"]).execute();
          const target = members.find((m) => Number(m.user_id) === userId);
          if (!target) throw notFound("MEMBER_NOT_FOUND", `user ${userId} is not a member of ${tid}`);
          if (target.role === "OWNER" && members.filter((m) => m.role === "OWNER").length === 1)
            throw conflict("LAST_OWNER", "a tenant keeps at least one owner; add another first");
          await trx.deleteFrom("members").where("user_id", "=", userId).execute();
          emit(TenantEvents.memberChanged, { tenantId: tid, userId, role: null, previous: target.role as MemberRole, by: user.id, at: clock.now() });
        });
      }),

      profile: action(C.profile, async (ctx): Promise<TenantView> => {
        const tenant = await host.db.selectFrom("tenants").selectAll().where("id", "=", ctx.params.tid).executeTakeFirst();
        if (!tenant) throw missing(ctx.params.tid);
        return view(tenant);
      }),

      access: action(C.access, async (ctx): Promise<Access> => {
        const { tid, userId, admin, writing } = ctx.params;
        const s = await standing(tid, userId, admin, writing);
        return { tenant: view(s.tenant), role: s.role };
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
