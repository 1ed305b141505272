import { createHash } from "node:crypto";
import type { ServiceBroker, ServiceSchema } from "moleculer";
import { iso } from "../../../platform/clock/clock";
import { isUniqueViolation } from "../../../platform/db/db";
import { routesWithSchemas } from "../../../platform/gateway/routes";
import { action, type Ctx, hasRole, requireIdempotencyKey, requireUser } from "../../../platform/runtime/action";
import { AppError, conflict, notFound } from "../../../platform/runtime/errors";
import { newId } from "../../../platform/runtime/ids";
import type { Platform } from "../../../platform/runtime/platform";
import type { Emit } from "../../../platform/runtime/service-host";
import { Sweeper } from "../../../platform/runtime/sweeper";
import { initiator, txClient } from "../../../platform/tx/tx.client";
import type { ReservationView } from "../inventory/inventory.contract";
import { PaymentEvents, type PaymentSucceeded } from "../payment/payment.contract";
import type { Access, TenantView } from "../tenant/tenant.contract";
import { quotaRefusal } from "../tenant/tenant.domain";
import { OrderContract as C, type OrderCreated, OrderEvents, type OrderHold, type OrderRefunded, type OrderView, orderRoutes } from "./order.contract";
import { type CancelReason, dayOf, type OrderStatus, totalOf, transitionRefusal } from "./order.domain";
import { type OrderDb, orderMigrations, type OrderRow, type OrderTables, TENANT_TABLES } from "./order.store";

const SWEEP_MS = 1_000;
/** The stock hold outlives the payment deadline: the order is cancelled first; the hold's own expiry is a safety net. */
const HOLD_MARGIN_S = 300;
/** How long the coordinator waits for this service's decision on a stock hold before asking. */
const HOLD_DECISION_MS = 15_000;

/**
 * Orders: cart-less checkout that holds stock as a TCC branch through the coordinator (the order and
 * its commit decision written together), the order state machine, cancellation by the buyer or when
 * payment does not come in time, and the tenant's view of its orders. Stock follows by events: paid
 * orders are sold, cancelled ones returned.
 */
export function orderService(platform: Platform): ServiceSchema {
  const host = platform.host<OrderTables>("order", orderMigrations, TENANT_TABLES);
  const { clock } = platform;
  const sweeper = new Sweeper(() => cancelOverdue(), SWEEP_MS, host.logger, "order payment timeout");
  let broker: ServiceBroker;

  const view = (o: OrderRow): OrderView => ({
    id: o.id,
    tenantId: o.tenant_id,
    buyerId: Number(o.buyer_id),
    status: o.status,
    items: JSON.parse(o.items),
    total: Number(o.total),
    address: JSON.parse(o.address),
    payBy: iso(o.pay_by),
    cancelReason: o.cancel_reason,
    createdAt: iso(o.created_at),
    updatedAt: iso(o.updated_at),
  });
  const missing = (id: string) => notFound("ORDER_NOT_FOUND", `no order ${id}`);
  const hold = (o: OrderRow): OrderHold => ({ orderId: o.id, tenantId: o.tenant_id, reservationId: o.reservation_id, buyerId: Number(o.buyer_id), total: Number(o.total) });

  const lockOrder = (trx: OrderDb, id: string) => host.store.forUpdate(trx.selectFrom("orders").selectAll().where("id", "=", id)).executeTakeFirst();

  /** Moves an order in its tenant's transaction; `then` adds what the move implies (events). */
  async function transition(tid: string, id: string, to: OrderStatus, extra: Partial<OrderRow>, then: (o: OrderRow, emit: Emit) => void): Promise<OrderRow> {
    return host.tenantTx(tid, async (trx, emit) => {
      const o = await lockOrder(trx, id);
      if (!o) throw missing(id);
      const refusal = transitionRefusal(o.status, to);
      if (refusal) throw conflict(refusal.code, refusal.message);
      const moved = { ...o, status: to, ...extra, updated_at: clock.now() };
      await trx.updateTable("orders").set({ status: to, ...extra, updated_at: moved.updated_at }).where("id", "=", id).execute();
      then(moved, emit);
      return moved;
    });
  }

  function cancel(tid: string, id: string, reason: CancelReason) {
    return transition(tid, id, "CANCELLED", { cancel_reason: reason }, (o, emit) => emit(OrderEvents.cancelled, { ...hold(o), reason }, `order-cancelled:${o.id}`));
  }

  /** The buyer's own order, or 404 (also for anyone else's). */
  async function own(ctx: Ctx<unknown>, id: string): Promise<OrderRow> {
    const user = requireUser(ctx);
    const link = await host.db.selectFrom("buyer_orders").select("tenant_id").where("order_id", "=", id).where("buyer_id", "=", user.id).executeTakeFirst();
    const o = link && (await host.forTenant(link.tenant_id).selectFrom("orders").selectAll().where("id", "=", id).executeTakeFirst());
    if (!o) throw missing(id);
    return o;
  }

  function staff(ctx: Ctx<unknown>, tid: string, writing: boolean): Promise<Access> {
    const user = requireUser(ctx);
    return ctx.call<Access, object>("tenant.access", { tid, userId: user.id, admin: hasRole(user, "admin"), writing });
  }

  /** Rolls a stock hold back: recorded here first (a late commit is refused), then the coordinator releases it. */
  function abandon(gid: string): Promise<void> {
    return initiator.abandon(host, txClient(broker, "order"), gid, clock.now());
  }

  async function prior(buyerId: number, key: string, hash: string): Promise<OrderRow | undefined> {
    const link = await host.db.selectFrom("buyer_orders").selectAll().where("buyer_id", "=", buyerId).where("idem_key", "=", key).executeTakeFirst();
    if (!link) return undefined;
    if (link.request_hash !== hash) throw conflict("IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used for a different order", "Idempotency-Key");
    return host.forTenant(link.tenant_id).selectFrom("orders").selectAll().where("id", "=", link.order_id).executeTakeFirstOrThrow();
  }

  interface Placement {
    buyerId: number;
    key: string;
    tenantId: string;
    items: { sku: string; quantity: number; warehouse?: string }[];
    address: unknown;
    /** A price for every unit that replaces the catalogue's (a flash sale's). */
    unitPrice?: number;
  }

  /** Checkout: stock held as a TCC branch, the order and its commit decision written together. Idempotent by (buyer, key). */
  async function place(ctx: Ctx<unknown>, p: Placement): Promise<OrderRow> {
    const { buyerId, key, tenantId, items, address } = p;
    const hash = createHash("sha256").update(JSON.stringify([tenantId, items, address, p.unitPrice ?? null])).digest("hex");
    const again = await prior(buyerId, key, hash);
    if (again) return again;
    const tenant = await ctx.call<TenantView, object>("tenant.profile", { tid: tenantId });
    if (tenant.status !== "ACTIVE") throw conflict("TENANT_SUSPENDED", "this shop is not taking orders");
    const now = clock.now();
    const id = newId(now);
    const gid = `order:${id}`;
    const tcc = txClient(broker, "order", HOLD_DECISION_MS);
    const payBy = now + tenant.quotas.paymentTimeoutSeconds * 1000;
    let held: ReservationView;
    try {
      held = await tcc.tryBranch<ReservationView>(gid, {
        action: "inventory.reserve",
        confirm: "inventory.confirm",
        cancel: "inventory.release",
        payload: { tenantId, items, ttlSeconds: tenant.quotas.paymentTimeoutSeconds + HOLD_MARGIN_S },
      }, ctx);
    } catch (err) {
      await abandon(gid);
      throw err;
    }
    const lines = p.unitPrice === undefined ? held.items : held.items.map((l) => ({ ...l, price: p.unitPrice! }));
    let order: OrderRow;
    try {
      order = await host.tenantTx(tenantId, async (trx, emit) => {
        await initiator.commit(trx, gid, now);
        const day = dayOf(now);
        const counted = await host.store.forUpdate(trx.selectFrom("day_counts").select("orders").where("day", "=", day)).executeTakeFirst();
        const refusal = quotaRefusal(tenant.quotas, "maxOrdersPerDay", Number(counted?.orders ?? 0));
        if (refusal) throw new AppError(429, refusal.code, refusal.message);
        if (counted) await trx.updateTable("day_counts").set({ orders: Number(counted.orders) + 1 }).where("day", "=", day).execute();
        else await trx.insertInto("day_counts").values({ tenant_id: tenantId, day, orders: 1 }).execute();
        const row: OrderRow = {
          tenant_id: tenantId,
          id,
          buyer_id: buyerId,
          status: "PENDING_PAYMENT",
          items: JSON.stringify(lines),
          total: totalOf(lines),
          address: JSON.stringify(address),
          reservation_id: held.reservationId,
          pay_by: payBy,
          cancel_reason: null,
          payment_id: null,
          created_at: now,
          updated_at: now,
        };
        await trx.insertInto("orders").values(row).execute();
        await trx.insertInto("buyer_orders").values({ order_id: id, buyer_id: buyerId, tenant_id: tenantId, idem_key: key, request_hash: hash, created_at: now }).execute();
        const created: OrderCreated = { orderId: id, tenantId, buyerId, total: row.total, at: now };
        emit(OrderEvents.created, created, `order-created:${id}`);
        return row;
      });
    } catch (err) {
      await abandon(gid);
      // The same key raced in from another request: its order is the answer.
      if (isUniqueViolation(err)) {
        const raced = await prior(buyerId, key, hash);
        if (raced) return raced;
      }
      throw err;
    }
    // Committed here; if telling the coordinator fails, its query back finds the commit.
    await tcc.commit(gid).catch((err) => host.logger.warn({ err, gid }, "commit not delivered to the coordinator; it will ask"));
    return order;
  }

  async function cancelOverdue(): Promise<number> {
    const now = clock.now();
    const due = await host.store
      .acrossTenants()
      .selectFrom("orders")
      .select(["tenant_id", "id"])
      .where("status", "=", "PENDING_PAYMENT")
      .where("pay_by", "<=", now)
      .limit(500)
      .execute();
    let cancelled = 0;
    for (const { tenant_id, id } of due) {
      try {
        await cancel(tenant_id, id, "PAYMENT_TIMEOUT");
        cancelled++;
      } catch (err) {
        // Paid between the look and the lock: nothing to cancel.
        if (!(err instanceof AppError)) throw err;
      }
    }
    return cancelled;
  }

  return {
    name: "order",
    settings: { routes: routesWithSchemas(orderRoutes, C) },
    actions: {
      create: action(C.create, async (ctx) => {
        const buyer = requireUser(ctx);
        const key = requireIdempotencyKey(ctx);
        const { tenantId, items, address } = ctx.params;
        return view(await place(ctx, { buyerId: buyer.id, key, tenantId, items, address }));
      }),

      /**
       * A flash sale's order, for an admitted attempt (called by the flash service, never routed): the
       * campaign's warehouse, the campaign's price, the attempt as the idempotency key.
       */
      createFlash: action(C.createFlash, async (ctx) => {
        const { tenantId, buyerId, attemptId, sku, quantity, warehouse, price } = ctx.params;
        return view(await place(ctx, { buyerId, key: `flash:${attemptId}`, tenantId, items: [{ sku, quantity, warehouse }], address: {}, unitPrice: price }));
      }),

      byIds: action(C.byIds, async (ctx) => {
        const found: OrderView[] = [];
        const byTenant = new Map<string, string[]>();
        for (const { tenantId, id } of ctx.params.orders) byTenant.set(tenantId, [...(byTenant.get(tenantId) ?? []), id]);
        for (const [tenantId, ids] of byTenant) {
          const rows = await host.forTenant(tenantId).selectFrom("orders").selectAll().where("id", "in", ids).execute();
          found.push(...rows.map(view));
        }
        return found;
      }),

      mine: action(C.mine, async (ctx) => {
        const buyer = requireUser(ctx);
        const { status, limit, cursor } = ctx.params;
        let q = host.db.selectFrom("buyer_orders").select(["order_id", "tenant_id"]).where("buyer_id", "=", buyer.id);
        if (cursor) q = q.where("order_id", "<", cursor);
        const links = await q.orderBy("order_id", "desc").limit(limit + 1).execute();
        const page = links.slice(0, limit);
        const items: OrderView[] = [];
        for (const link of page) {
          const o = await host.forTenant(link.tenant_id).selectFrom("orders").selectAll().where("id", "=", link.order_id).executeTakeFirst();
          // A status filter applies within the page; the cursor still walks every order.
          if (o && (!status || o.status === status)) items.push(view(o));
        }
        return { items, nextCursor: links.length > limit ? page[page.length - 1].order_id : null };
      }),

      get: action(C.get, async (ctx) => view(await own(ctx, ctx.params.id))),

      cancel: action(C.cancel, async (ctx) => {
        const o = await own(ctx, ctx.params.id);
        return view(await cancel(o.tenant_id, o.id, "BUYER"));
      }),

      complete: action(C.complete, async (ctx) => {
        const o = await own(ctx, ctx.params.id);
        return view(await transition(o.tenant_id, o.id, "COMPLETED", {}, (m, emit) => emit(OrderEvents.completed, hold(m), `order-completed:${m.id}`)));
      }),

      tenantOrders: action(C.tenantOrders, async (ctx) => {
        const { tid, status, limit, cursor } = ctx.params;
        await staff(ctx, tid, false);
        let q = host.forTenant(tid).selectFrom("orders").selectAll();
        if (status) q = q.where("status", "=", status as OrderStatus);
        if (cursor) q = q.where("id", "<", cursor);
        const rows = await q.orderBy("id", "desc").limit(limit + 1).execute();
        const page = rows.slice(0, limit);
        return { items: page.map(view), nextCursor: rows.length > limit ? page[page.length - 1].id : null };
      }),

      tenantOrder: action(C.tenantOrder, async (ctx) => {
        const { tid, id } = ctx.params;
        await staff(ctx, tid, false);
        const o = await host.forTenant(tid).selectFrom("orders").selectAll().where("id", "=", id).executeTakeFirst();
        if (!o) throw missing(id);
        return view(o);
      }),

      ship: action(C.ship, async (ctx) => {
        const { tid, id } = ctx.params;
        await staff(ctx, tid, true);
        return view(await transition(tid, id, "SHIPPED", {}, (m, emit) => emit(OrderEvents.shipped, hold(m), `order-shipped:${m.id}`)));
      }),

      refund: action(C.refund, async (ctx) => {
        const { tid, id, reason } = ctx.params;
        // Money leaves: asked again here, whoever called.
        await ctx.call("permission.require", { tid, permission: "orders:refund" });
        return view(
          await host.tenantTx(tid, async (trx, emit) => {
            const o = await lockOrder(trx, id);
            if (!o) throw missing(id);
            const refusal = transitionRefusal(o.status, "REFUNDED");
            if (refusal) throw conflict(refusal.code, refusal.message);
            const now = clock.now();
            await trx.updateTable("orders").set({ status: "REFUNDED", updated_at: now }).where("id", "=", id).execute();
            const refunded: OrderRefunded = { ...hold(o), paymentId: o.payment_id!, restock: o.status === "PAID", reason, orderWasPaid: true };
            emit(OrderEvents.refunded, refunded, `order-refunded:${o.id}`);
            return { ...o, status: "REFUNDED" as const, updated_at: now };
          }),
        );
      }),

      txDecision: initiator.decisionAction(host, () => clock.now()),

      /** Runs the payment-timeout sweep once now (it also runs every second); answers how many orders it cancelled. */
      tick: action(C.tick, () => sweeper.now()),
    },
    created() {
      // A payment that succeeded marks its order paid, in the tenant's scope, once.
      host.consume(
        PaymentEvents.succeeded,
        async (trx, message, emit) => {
          const p = message.data as PaymentSucceeded;
          const o = await lockOrder(trx, p.orderId);
          if (!o || (o.status === "PAID" && o.payment_id === p.paymentId)) return;
          if (o.status !== "PENDING_PAYMENT") {
            // Paid after it was cancelled (or paid twice): the money goes back; the order stays as it is.
            host.logger.warn({ orderId: o.id, status: o.status, paymentId: p.paymentId }, "payment for an order that can no longer be paid; refunding it");
            const refund: OrderRefunded = { ...hold(o), paymentId: p.paymentId, restock: false, reason: `paid while ${o.status.toLowerCase()}`, orderWasPaid: false };
            emit(OrderEvents.refunded, refund, `order-refunded:${p.paymentId}`);
            return;
          }
          const now = clock.now();
          await trx.updateTable("orders").set({ status: "PAID", payment_id: p.paymentId, updated_at: now }).where("id", "=", o.id).execute();
          emit(OrderEvents.paid, hold(o), `order-paid:${o.id}`);
        },
        (m) => (m.data as PaymentSucceeded).tenantId,
      );
    },
    async started() {
      broker = this.broker;
      await host.start();
      sweeper.start();
    },
    async stopped() {
      await sweeper.stop();
      await host.stop();
    },
  };
}
