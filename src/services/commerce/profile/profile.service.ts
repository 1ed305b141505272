import type { Kysely } from "kysely";
import type { ServiceSchema } from "moleculer";
import { iso } from "../../../platform/clock/clock";
import { routesWithSchemas } from "../../../platform/gateway/routes";
import { action, requireUser } from "../../../platform/runtime/action";
import { notFound } from "../../../platform/runtime/errors";
import type { Platform } from "../../../platform/runtime/platform";
import type { Emit } from "../../../platform/runtime/service-host";
import { type CaseDecided, ReportEvents } from "../../governance/report/report.contract";
import { IdentityEvents, type UserActive, type UserRegistered } from "../identity/identity.contract";
import { type OrderCreated, OrderEvents, type OrderHold, type OrderRefunded } from "../order/order.contract";
import { type ProfileChanged, ProfileContract as C, ProfileEvents, profileRoutes, type ProfileView } from "./profile.contract";
import { tagsOf } from "./profile.domain";
import { insertProfile, lastViolationAt, lockProfile, profileMigrations, type ProfileTables, setViolation, updateProfile } from "./profile.store";

type Row = ProfileTables["profiles"];
type Db = Kysely<ProfileTables>;

/**
 * User profiles built from what users do: sign-up and activity (identity), orders (commerce), and
 * violations upheld against their content (governance, appeals included). Tags are computed on read.
 * What the reviewer pool decides eligibility on leaves as `commerce.profile.changed`, versioned.
 */
export function profileService(platform: Platform): ServiceSchema {
  const host = platform.host<ProfileTables>("profile", profileMigrations);
  const { clock } = platform;

  const num = (v: number | null) => (v === null ? null : Number(v));
  const facts = (r: Row) => ({
    accountCreatedAt: num(r.account_created_at),
    lastActiveAt: num(r.last_active_at),
    ordersPlaced: Number(r.orders_placed),
    ordersPaid: Number(r.orders_paid),
    ordersCompleted: Number(r.orders_completed),
    spent: Number(r.spent),
    violationsUpheld: Number(r.violations_upheld),
    lastViolationAt: num(r.last_violation_at),
  });

  function view(r: Row): ProfileView {
    const f = facts(r);
    return {
      userId: Number(r.user_id),
      accountCreatedAt: f.accountCreatedAt === null ? null : iso(f.accountCreatedAt),
      lastActiveAt: f.lastActiveAt === null ? null : iso(f.lastActiveAt),
      orders: { placed: f.ordersPlaced, paid: f.ordersPaid, completed: f.ordersCompleted },
      spent: f.spent,
      violationsUpheld: f.violationsUpheld,
      lastViolationAt: f.lastViolationAt === null ? null : iso(f.lastViolationAt),
      tags: tagsOf(f, clock.now()),
    };
  }

  /** A user nothing has been heard of yet. */
  const emptyRow = (userId: number): Row => ({
    user_id: userId,
    account_created_at: null,
    last_active_at: null,
    orders_placed: 0,
    orders_paid: 0,
    orders_completed: 0,
    spent: 0,
    violations_upheld: 0,
    last_violation_at: null,
    version: 0,
    updated_at: clock.now(),
  });

  /** The user's row, created empty the first time anything is heard of them. */
  async function rowOf(db: Db, userId: number): Promise<Row> {
    const found = await lockProfile(db, userId);
    if (found) return found;
    const row = emptyRow(userId);
    await insertProfile(db, row);
    return row;
  }

  /** Applies a change; when it touches what the reviewer pool reads, the row's version moves and the change is published. */
  async function change(db: Db, emit: Emit, userId: number, patch: (r: Row) => Partial<Row>): Promise<void> {
    const before = await rowOf(db, userId);
    const after = { ...before, ...patch(before) };
    const eligibility = (r: Row) => [num(r.account_created_at), num(r.last_active_at), Number(r.violations_upheld), num(r.last_violation_at)].join();
    const moved = eligibility(before) !== eligibility(after);
    const version = Number(before.version) + (moved ? 1 : 0);
    await updateProfile(db, userId, { ...patch(before), version, updated_at: clock.now() });
    if (!moved) return;
    const f = facts(after);
    const event: ProfileChanged = {
      userId,
      version,
      accountCreatedAt: f.accountCreatedAt,
      lastActiveAt: f.lastActiveAt,
      violationsUpheld: f.violationsUpheld,
      lastViolationAt: f.lastViolationAt,
    };
    emit(ProfileEvents.changed, event, `profile-changed:${userId}:${version}`);
  }

  /** Makes the violation of case `caseId` stand or not, and the user's count and latest follow. */
  async function recordViolation(db: Db, emit: Emit, caseId: string, userId: number, at: number, stands: boolean): Promise<void> {
    const moved = await setViolation(db, caseId, userId, at, stands);
    if (moved === 0) return;
    const last = await lastViolationAt(db, userId);
    await change(db, emit, userId, (r) => ({ violations_upheld: Number(r.violations_upheld) + moved, last_violation_at: last }));
  }

  return {
    name: "profile",
    settings: { routes: routesWithSchemas(profileRoutes, C) },
    actions: {
      me: action(C.me, async (ctx) => {
        const user = requireUser(ctx);
        const row = await host.db.selectFrom("profiles").selectAll().where("user_id", "=", user.id).executeTakeFirst();
        // Reading writes nothing: a user with no events yet has the empty profile.
        return view(row ?? emptyRow(user.id));
      }),
      get: action(C.get, async (ctx) => {
        const row = await host.db.selectFrom("profiles").selectAll().where("user_id", "=", ctx.params.userId).executeTakeFirst();
        if (!row) throw notFound("PROFILE_NOT_FOUND", `no profile for user ${ctx.params.userId}`);
        return view(row);
      }),
    },
    created() {
      host.consume(IdentityEvents.registered, async (trx, message, emit) => {
        const e = message.data as UserRegistered;
        await change(trx, emit, e.userId, (r) => ({ account_created_at: r.account_created_at ?? e.createdAt }));
      });
      host.consume(IdentityEvents.active, async (trx, message, emit) => {
        const e = message.data as UserActive;
        await change(trx, emit, e.userId, (r) => ({
          account_created_at: r.account_created_at ?? e.createdAt,
          last_active_at: Math.max(Number(r.last_active_at ?? 0), e.at),
        }));
      });
      host.consume(OrderEvents.created, async (trx, message, emit) => {
        const e = message.data as OrderCreated;
        await change(trx, emit, e.buyerId, (r) => ({ orders_placed: Number(r.orders_placed) + 1 }));
      });
      host.consume(OrderEvents.paid, async (trx, message, emit) => {
        const e = message.data as OrderHold;
        await change(trx, emit, e.buyerId, (r) => ({ orders_paid: Number(r.orders_paid) + 1, spent: Number(r.spent) + e.total }));
      });
      host.consume(OrderEvents.completed, async (trx, message, emit) => {
        const e = message.data as OrderHold;
        await change(trx, emit, e.buyerId, (r) => ({ orders_completed: Number(r.orders_completed) + 1 }));
      });
      host.consume(OrderEvents.refunded, async (trx, message, emit) => {
        const e = message.data as OrderRefunded;
        // A payment that arrived after the order was cancelled went straight back: it was never spent.
        if (!e.orderWasPaid) return;
        await change(trx, emit, e.buyerId, (r) => ({ spent: Number(r.spent) - e.total }));
      });
      host.consume(ReportEvents.decided, async (trx, message, emit) => {
        const e = message.data as CaseDecided;
        const author = e.target.authorId;
        if (e.appealOf === null) {
          if (e.verdict === "UPHELD") await recordViolation(trx, emit, e.caseId, author, e.decidedAt, true);
        } else if (e.verdict === "UPHELD") {
          // The appeal confirms (or finds, over a rejection) the violation.
          await recordViolation(trx, emit, e.appealOf, author, e.decidedAt, true);
        } else if (e.verdict === "REJECTED") await recordViolation(trx, emit, e.appealOf, author, e.decidedAt, false);
      });
    },
    async started() {
      await host.start();
    },
    async stopped() {
      await host.stop();
    },
  };
}
