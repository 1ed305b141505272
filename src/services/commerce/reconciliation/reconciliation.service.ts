import type { ServiceSchema } from "moleculer";
import { iso } from "../../../platform/clock/clock";
import { routesWithSchemas } from "../../../platform/gateway/routes";
import { action, type Ctx, hasRole, requireUser } from "../../../platform/runtime/action";
import { badRequest, notFound } from "../../../platform/runtime/errors";
import type { Platform } from "../../../platform/runtime/platform";
import { Sweeper } from "../../../platform/runtime/sweeper";
import type { OrderView } from "../order/order.contract";
import type { Access } from "../tenant/tenant.contract";
import { ReconciliationContract as C, type DiscrepancyView, reconciliationRoutes, type ReportView } from "./reconciliation.contract";
import { type Day, dayOfDate, type OrderRecord, type PaymentRecord, previousDate, reconcile, type StatementLine } from "./reconciliation.domain";
import { reconciliationMigrations, type ReconciliationTables, TENANT_TABLES } from "./reconciliation.store";

/** How often the nightly job looks whether yesterday is done. */
const SWEEP_MS = 60_000;
/** Yesterday is reconciled once today is this old: late notifications and refunds have landed. */
const NIGHTLY_AFTER_MS = 30 * 60_000;
/** Ids per call to the payment and order services. */
const CHUNK = 1000;

/**
 * Reconciliation: a UTC day of the payment provider's statement against our payments, and our
 * payments against their orders; the findings written as that day's report (replaced whole by a
 * re-run), readable by operators and, for their own books, by each tenant. Runs nightly for
 * yesterday, and on demand (`bazaar reconcile --date`).
 */
export function reconciliationService(platform: Platform): ServiceSchema {
  const host = platform.host<ReconciliationTables>("reconciliation", reconciliationMigrations, TENANT_TABLES);
  const { clock } = platform;
  const sweeper = new Sweeper(() => nightly(), SWEEP_MS, host.logger, "nightly reconciliation");
  let call: <T>(action: string, params: object) => Promise<T>;
  /** Whether the services the nightly run reads are registered (at start-up they may come a moment later). */
  let sourcesUp: () => boolean = () => false;

  function parseDay(date: string): Day {
    const day = dayOfDate(date);
    if (!day) throw badRequest("INVALID_DATE", `${date} is not a date`, "date");
    if (day.from > clock.now()) throw badRequest("DATE_IN_FUTURE", `${date} has not begun`, "date");
    return day;
  }

  async function run(date: string): Promise<ReportView> {
    const day = parseDay(date);
    const statement = await call<{ lines: StatementLine[] }>("sandbox.statement", { date });
    const payments = await call<PaymentRecord[]>("payment.settled", { from: day.from, to: day.to, providerTxIds: [] });
    const known = new Set(payments.map((p) => p.providerTxId));
    const unmatched = [...new Set(statement.lines.map((l) => l.providerTxId).filter((id) => !known.has(id)))];
    for (let i = 0; i < unmatched.length; i += CHUNK)
      payments.push(...(await call<PaymentRecord[]>("payment.settled", { from: 0, to: 0, providerTxIds: unmatched.slice(i, i + CHUNK) })));
    const orders: OrderRecord[] = [];
    for (let i = 0; i < payments.length; i += CHUNK) {
      const found = await call<OrderView[]>("order.byIds", { orders: payments.slice(i, i + CHUNK).map((p) => ({ tenantId: p.tenantId, id: p.orderId })) });
      orders.push(...found.map((o) => ({ orderId: o.id, tenantId: o.tenantId, total: o.total, status: o.status })));
    }
    const found = reconcile(day, statement.lines, payments, orders);
    const now = clock.now();
    // A system job over every tenant's findings: one transaction replaces the day's report whole.
    await host.store
      .acrossTenants()
      .transaction()
      .execute(async (trx) => {
        await trx.deleteFrom("discrepancies").where("date", "=", date).execute();
        await trx.deleteFrom("reports").where("date", "=", date).execute();
        await trx.insertInto("reports").values({ date, ran_at: now, statement_lines: statement.lines.length, payments: payments.length, discrepancies: found.length }).execute();
        for (let i = 0; i < found.length; i += 500)
          await trx
            .insertInto("discrepancies")
            .values(found.slice(i, i + 500).map((d, j) => ({ tenant_id: d.tenantId, date, seq: i + j, kind: d.kind, ref: d.ref.slice(0, 200), detail: d.detail.slice(0, 500) })))
            .execute();
      });
    if (found.length > 0) host.logger.warn({ date, discrepancies: found.length }, "reconciliation found discrepancies");
    return {
      date,
      ranAt: iso(now),
      statementLines: statement.lines.length,
      payments: payments.length,
      discrepancies: found.map((d) => ({ kind: d.kind, ref: d.ref, tenantId: d.tenantId || null, detail: d.detail })),
    };
  }

  async function nightly(): Promise<string | null> {
    const now = clock.now();
    const today = Date.parse(`${new Date(now).toISOString().slice(0, 10)}T00:00:00.000Z`);
    if (now - today < NIGHTLY_AFTER_MS) return null;
    const date = previousDate(now);
    if (await host.db.selectFrom("reports").select("date").where("date", "=", date).executeTakeFirst()) return null;
    // Not an error: the next sweep runs it once they are there.
    if (!sourcesUp()) return null;
    await run(date);
    return date;
  }

  async function reportMeta(date: string) {
    const report = await host.db.selectFrom("reports").selectAll().where("date", "=", date).executeTakeFirst();
    if (!report) throw notFound("REPORT_NOT_FOUND", `${date} has not been reconciled`);
    return report;
  }

  const view = (d: { kind: DiscrepancyView["kind"]; ref: string; tenant_id: string; detail: string }): DiscrepancyView => ({
    kind: d.kind,
    ref: d.ref,
    tenantId: d.tenant_id || null,
    detail: d.detail,
  });

  function member(ctx: Ctx<unknown>, tid: string): Promise<Access> {
    const user = requireUser(ctx);
    return ctx.call<Access, object>("tenant.access", { tid, userId: user.id, admin: hasRole(user, "admin"), writing: false });
  }

  return {
    name: "reconciliation",
    settings: { routes: routesWithSchemas(reconciliationRoutes, C) },
    actions: {
      run: action(C.run, (ctx) => run(ctx.params.date)),

      report: action(C.report, async (ctx) => {
        const { date } = ctx.params;
        parseDay(date);
        const report = await reportMeta(date);
        const rows = await host.store.acrossTenants().selectFrom("discrepancies").selectAll().where("date", "=", date).orderBy("seq").execute();
        return { date, ranAt: iso(Number(report.ran_at)), statementLines: report.statement_lines, payments: report.payments, discrepancies: rows.map(view) };
      }),

      tenantReport: action(C.tenantReport, async (ctx) => {
        const { tid, date } = ctx.params;
        await member(ctx, tid);
        parseDay(date);
        const report = await reportMeta(date);
        const rows = await host.forTenant(tid).selectFrom("discrepancies").selectAll().where("date", "=", date).orderBy("seq").execute();
        return { date, ranAt: iso(Number(report.ran_at)), discrepancies: rows.map(view) };
      }),

      tick: action(C.tick, async () => ({ reconciled: await sweeper.now() })),
    },
    async started() {
      const broker = this.broker;
      call = <T>(name: string, params: object) => broker.call<T, object>(name, params);
      sourcesUp = () => {
        const up = new Set(broker.registry.getServiceList({ skipInternal: true }).map((s) => s.name));
        return ["sandbox", "payment", "order"].every((name) => up.has(name));
      };
      await host.start();
      sweeper.start();
    },
    async stopped() {
      await sweeper.stop();
      await host.stop();
    },
  };
}
