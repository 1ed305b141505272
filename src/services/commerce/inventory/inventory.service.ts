import type { ServiceSchema } from "moleculer";
import { iso } from "../../../platform/clock/clock";
import { isUniqueViolation, retryOnUniqueViolation } from "../../../platform/db/db";
import { routesWithSchemas } from "../../../platform/gateway/routes";
import { action, type Ctx, hasRole, requireUser } from "../../../platform/runtime/action";
import { AppError, conflict, notFound } from "../../../platform/runtime/errors";
import type { Platform } from "../../../platform/runtime/platform";
import { Sweeper } from "../../../platform/runtime/sweeper";
import { branchCallOf } from "../../../platform/tx/barrier";
import type { StreamMessage } from "../../../platform/stream/stream";
import { OrderEvents, type OrderHold, type OrderRefunded } from "../order/order.contract";
import type { Access } from "../tenant/tenant.contract";
import { quotaRefusal } from "../tenant/tenant.domain";
import { InventoryContract as C, inventoryRoutes, type ProductView, type ReservationView } from "./inventory.contract";
import { canTransition, isHeld, isRefusal, type Level, type MovementKind, move, normaliseItems, type ReservationStatus } from "./inventory.domain";
import { type InventoryDb, inventoryMigrations, type InventoryTables, type ReservationRow, TENANT_TABLES } from "./inventory.store";

const SWEEP_MS = 1_000;

type Line = { sku: string; warehouse: string; quantity: number; price: number };

/**
 * A tenant's catalogue and stock: products, stock per SKU and warehouse (never negative, never below
 * what is held), reservations as transaction branches (reserve / confirm / release, expiring when left
 * too long), and every movement kept. Staff reach it through the tenant service's access check.
 */
export function inventoryService(platform: Platform): ServiceSchema {
  const host = platform.host<InventoryTables>("inventory", inventoryMigrations, TENANT_TABLES);
  const { clock } = platform;
  const sweeper = new Sweeper(() => expireDue(), SWEEP_MS, host.logger, "reservation expiry");

  /** The caller's standing in the tenant: 404 to strangers, 409 for writes to a suspended tenant. */
  function access(ctx: Ctx<unknown>, tid: string, writing: boolean): Promise<Access> {
    const user = requireUser(ctx);
    return ctx.call<Access, object>("tenant.access", { tid, userId: user.id, admin: hasRole(user, "admin"), writing });
  }

  /** One movement on one level, locked, with its history row; a refusal is a 409 naming the SKU. */
  async function apply(trx: InventoryDb, tid: string, sku: string, warehouse: string, kind: MovementKind, quantity: number, ref: string, now: number): Promise<Level> {
    const row = await host.store.forUpdate(trx.selectFrom("stock").selectAll().where("sku", "=", sku).where("warehouse", "=", warehouse)).executeTakeFirst();
    const level = row ? { onHand: Number(row.on_hand), reserved: Number(row.reserved) } : { onHand: 0, reserved: 0 };
    const next = move(level, kind, quantity);
    if (isRefusal(next)) throw conflict(next.code, `${sku} in ${warehouse}: ${next.message}`);
    if (row) await trx.updateTable("stock").set({ on_hand: next.onHand, reserved: next.reserved, updated_at: now }).where("sku", "=", sku).where("warehouse", "=", warehouse).execute();
    else await trx.insertInto("stock").values({ tenant_id: tid, sku, warehouse, on_hand: next.onHand, reserved: next.reserved, updated_at: now }).execute();
    await trx
      .insertInto("movements")
      .values({ tenant_id: tid, sku, warehouse, kind, quantity, on_hand_after: next.onHand, reserved_after: next.reserved, ref, at: now })
      .execute();
    return next;
  }

  async function productView(db: InventoryDb, sku: string): Promise<ProductView | undefined> {
    const product = await db.selectFrom("products").selectAll().where("sku", "=", sku).executeTakeFirst();
    if (!product) return undefined;
    const levels = await db.selectFrom("stock").selectAll().where("sku", "=", sku).orderBy("warehouse").execute();
    const warehouses = levels.map((l) => ({ warehouse: l.warehouse, onHand: Number(l.on_hand), reserved: Number(l.reserved), available: Number(l.on_hand) - Number(l.reserved) }));
    const sum = (k: "onHand" | "reserved" | "available") => warehouses.reduce((s, w) => s + w[k], 0);
    return {
      sku: product.sku,
      name: product.name,
      price: Number(product.price),
      stock: { onHand: sum("onHand"), reserved: sum("reserved"), available: sum("available") },
      warehouses,
      createdAt: iso(product.created_at),
    };
  }

  async function sell(trx: InventoryDb, tid: string, id: string): Promise<ReservationView> {
    const r = await host.store.forUpdate(trx.selectFrom("reservations").selectAll().where("id", "=", id)).executeTakeFirst();
    if (!r) throw notFound("RESERVATION_UNKNOWN", `no reservation ${id}`);
    if (r.status === "SOLD") return reservationView(r);
    return settle(trx, tid, r, "SOLD", "SELL", clock.now());
  }

  async function unhold(trx: InventoryDb, tid: string, id: string): Promise<void> {
    const r = await host.store.forUpdate(trx.selectFrom("reservations").selectAll().where("id", "=", id)).executeTakeFirst();
    if (r && isHeld(r.status)) await settle(trx, tid, r, "RELEASED", "RELEASE", clock.now());
  }

  const reservationView = (r: ReservationRow): ReservationView => ({ reservationId: r.id, status: r.status, items: JSON.parse(r.items) as Line[], expiresAt: iso(r.expires_at) });

  /** Moves a held reservation to `to`, returning or selling its items; answers its view. */
  async function settle(trx: InventoryDb, tid: string, r: ReservationRow, to: ReservationStatus, kind: MovementKind, now: number) {
    if (!canTransition(r.status, to)) throw conflict(`RESERVATION_${r.status}`, `reservation ${r.id} is ${r.status.toLowerCase()}`);
    for (const line of JSON.parse(r.items) as Line[]) await apply(trx, tid, line.sku, line.warehouse, kind, line.quantity, `reservation:${r.id}`, now);
    await trx.updateTable("reservations").set({ status: to, updated_at: now }).where("id", "=", r.id).execute();
    return reservationView({ ...r, status: to });
  }

  /** Holds left past their expiry go back to stock (the sweep runs over every tenant). */
  async function expireDue(): Promise<number> {
    const now = clock.now();
    const due = await host.store
      .acrossTenants()
      .selectFrom("reservations")
      .select(["tenant_id", "id"])
      .where("status", "in", ["RESERVED", "CONFIRMED"])
      .where("expires_at", "<=", now)
      .limit(500)
      .execute();
    for (const { tenant_id, id } of due)
      await host.tenantTx(tenant_id, async (trx) => {
        const r = await host.store.forUpdate(trx.selectFrom("reservations").selectAll().where("id", "=", id)).executeTakeFirst();
        if (r && isHeld(r.status) && r.expires_at <= clock.now()) await settle(trx, tenant_id, r, "EXPIRED", "EXPIRE", clock.now());
      });
    return due.length;
  }

  /** A reservation is named by the branch that holds it; a call without one is refused (400). */
  const reservationId = (ctx: Ctx<unknown>) => {
    const call = branchCallOf(ctx.meta);
    return `${call.gid}:${call.branchId}`;
  };

  return {
    name: "inventory",
    settings: { routes: routesWithSchemas(inventoryRoutes, C) },
    actions: {
      createProduct: action(C.createProduct, async (ctx) => {
        const { tid, sku, name, price } = ctx.params;
        const { tenant } = await access(ctx, tid, true);
        try {
          return await host.tenantTx(tid, async (trx) => {
            const now = clock.now();
            const count = await trx.selectFrom("products").select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow();
            const refusal = quotaRefusal(tenant.quotas, "maxProducts", Number(count.n));
            if (refusal) throw new AppError(429, refusal.code, refusal.message);
            await trx.insertInto("products").values({ tenant_id: tid, sku, name, price, created_at: now, updated_at: now }).execute();
            return (await productView(trx, sku))!;
          });
        } catch (err) {
          if (isUniqueViolation(err)) throw conflict("SKU_EXISTS", `product ${sku} exists`, "sku");
          throw err;
        }
      }),

      listProducts: action(C.listProducts, async (ctx) => {
        const { tid, limit, cursor } = ctx.params;
        await access(ctx, tid, false);
        const db = host.forTenant(tid);
        let q = db.selectFrom("products").select("sku");
        if (cursor) q = q.where("sku", ">", cursor);
        const rows = await q.orderBy("sku").limit(limit + 1).execute();
        const page = rows.slice(0, limit);
        const items = [];
        for (const { sku } of page) items.push((await productView(db, sku))!);
        return { items, nextCursor: rows.length > limit ? page[page.length - 1].sku : null };
      }),

      getProduct: action(C.getProduct, async (ctx) => {
        const { tid, sku } = ctx.params;
        await access(ctx, tid, false);
        const view = await productView(host.forTenant(tid), sku);
        if (!view) throw notFound("PRODUCT_NOT_FOUND", `no product ${sku}`);
        return view;
      }),

      setStock: action(C.setStock, async (ctx) => {
        const { tid, sku, quantity, warehouse } = ctx.params;
        await access(ctx, tid, true);
        const user = requireUser(ctx);
        // Two first counts of one SKU race to create its row; the loser runs again against it.
        return retryOnUniqueViolation(() =>
          host.tenantTx(tid, async (trx) => {
            if (!(await trx.selectFrom("products").select("sku").where("sku", "=", sku).executeTakeFirst())) throw notFound("PRODUCT_NOT_FOUND", `no product ${sku}`);
            await apply(trx, tid, sku, warehouse, "SET", quantity, `count:${user.id}`, clock.now());
            return (await productView(trx, sku))!;
          }),
        );
      }),

      movements: action(C.movements, async (ctx) => {
        const { tid, sku, limit, cursor } = ctx.params;
        await access(ctx, tid, false);
        const db = host.forTenant(tid);
        if (!(await db.selectFrom("products").select("sku").where("sku", "=", sku).executeTakeFirst())) throw notFound("PRODUCT_NOT_FOUND", `no product ${sku}`);
        let q = db.selectFrom("movements").selectAll().where("sku", "=", sku);
        if (cursor) q = q.where("id", "<", Number(cursor));
        const rows = await q.orderBy("id", "desc").limit(limit + 1).execute();
        const page = rows.slice(0, limit);
        return {
          items: page.map((m) => ({
            id: Number(m.id),
            warehouse: m.warehouse,
            kind: m.kind,
            quantity: Number(m.quantity),
            onHandAfter: Number(m.on_hand_after),
            reservedAfter: Number(m.reserved_after),
            ref: m.ref,
            at: iso(m.at),
          })),
          nextCursor: rows.length > limit ? String(page[page.length - 1].id) : null,
        };
      }),

      reserve: action(C.reserve, async (ctx) => {
        const { tenantId, items, ttlSeconds } = ctx.params;
        const id = reservationId(ctx);
        const outcome = await host.branch(
          ctx.meta,
          async (trx) => {
            const now = clock.now();
            const lines: Line[] = [];
            for (const item of normaliseItems(items)) {
              const product = await trx.selectFrom("products").select("price").where("sku", "=", item.sku).executeTakeFirst();
              if (!product) throw notFound("PRODUCT_NOT_FOUND", `no product ${item.sku}`);
              await apply(trx, tenantId, item.sku, item.warehouse, "RESERVE", item.quantity, `reservation:${id}`, now);
              lines.push({ ...item, price: Number(product.price) });
            }
            const row: ReservationRow = { tenant_id: tenantId, id, items: JSON.stringify(lines), status: "RESERVED", expires_at: now + ttlSeconds * 1000, created_at: now, updated_at: now };
            await trx.insertInto("reservations").values(row).execute();
            return reservationView(row);
          },
          tenantId,
        );
        return outcome.result!;
      }),

      /** TCC confirm: the hold is the order's now; it stays held until sold, released or expired. */
      confirm: action(C.confirm, async (ctx) => {
        const { tenantId } = ctx.params;
        const id = reservationId(ctx);
        await host.branch(
          ctx.meta,
          async (trx) => {
            const r = await host.store.forUpdate(trx.selectFrom("reservations").selectAll().where("id", "=", id)).executeTakeFirst();
            if (!r) throw notFound("RESERVATION_UNKNOWN", `no reservation ${id}`);
            if (r.status === "RESERVED") await trx.updateTable("reservations").set({ status: "CONFIRMED", updated_at: clock.now() }).where("id", "=", id).execute();
            else if (r.status !== "CONFIRMED" && r.status !== "SOLD") throw conflict(`RESERVATION_${r.status}`, `reservation ${id} is ${r.status.toLowerCase()}`);
          },
          tenantId,
        );
        return { reservationId: id, status: "CONFIRMED" };
      }),

      /** TCC cancel: the hold goes back to stock. */
      release: action(C.release, async (ctx) => {
        const { tenantId } = ctx.params;
        const id = reservationId(ctx);
        // A release with no reservation before it is an empty compensation: the barrier records it.
        await host.branch(ctx.meta, (trx) => unhold(trx, tenantId, id), tenantId);
        return { reservationId: id };
      }),

      /** The order was paid: the held items are sold. Idempotent by the reservation's state. */
      sell: action(C.sell, async (ctx) => {
        const { tenantId, reservationId: id } = ctx.params;
        return host.tenantTx(tenantId, (trx) => sell(trx, tenantId, id));
      }),

      /** The order was cancelled: the hold goes back to stock. Idempotent by the reservation's state. */
      unhold: action(C.unhold, async (ctx) => {
        const { tenantId, reservationId: id } = ctx.params;
        await host.tenantTx(tenantId, (trx) => unhold(trx, tenantId, id));
        return { reservationId: id };
      }),

      /** TCC try of an allocation: the units leave `from` for `to`, both movements under the branch's name. */
      allocate: action(C.allocate, async (ctx) => {
        const { tenantId, sku, quantity, from, to } = ctx.params;
        const ref = `transfer:${reservationId(ctx)}`;
        await host.branch(
          ctx.meta,
          async (trx) => {
            if (!(await trx.selectFrom("products").select("sku").where("sku", "=", sku).executeTakeFirst())) throw notFound("PRODUCT_NOT_FOUND", `no product ${sku}`);
            const now = clock.now();
            await apply(trx, tenantId, sku, from, "TRANSFER_OUT", quantity, ref, now);
            await apply(trx, tenantId, sku, to, "TRANSFER_IN", quantity, ref, now);
          },
          tenantId,
        );
        return { transferId: ref, sku, quantity, from, to };
      }),

      /** TCC confirm of an allocation: the units stay where they went. */
      keepAllocation: action(C.keepAllocation, async (ctx) => {
        await host.branch(ctx.meta, async () => undefined, ctx.params.tenantId);
        return { transferId: `transfer:${reservationId(ctx)}` };
      }),

      /** TCC cancel of an allocation: whatever the try moved goes back (nothing, for an empty compensation). */
      returnAllocation: action(C.returnAllocation, async (ctx) => {
        const { tenantId } = ctx.params;
        const ref = `transfer:${reservationId(ctx)}`;
        await host.branch(
          ctx.meta,
          async (trx) => {
            const moved = await trx.selectFrom("movements").select(["sku", "warehouse", "kind", "quantity"]).where("ref", "=", ref).execute();
            const out = moved.find((m) => m.kind === "TRANSFER_OUT");
            const into = moved.find((m) => m.kind === "TRANSFER_IN");
            if (!out || !into) return;
            const now = clock.now();
            await apply(trx, tenantId, into.sku, into.warehouse, "TRANSFER_OUT", Number(into.quantity), `${ref}:back`, now);
            await apply(trx, tenantId, out.sku, out.warehouse, "TRANSFER_IN", Number(out.quantity), `${ref}:back`, now);
          },
          tenantId,
        );
        return { transferId: ref };
      }),

      /** Runs the expiry sweep once now (it also runs every second); answers how many holds were due. */
      tick: action(C.tick, () => sweeper.now()),
    },
    created() {
      const tenantOf = (m: StreamMessage) => (m.data as OrderHold).tenantId;
      host.consume(
        OrderEvents.paid,
        async (trx, message) => {
          const e = message.data as OrderHold;
          try {
            await sell(trx, e.tenantId, e.reservationId);
          } catch (err) {
            // A hold gone before its order was paid cannot be sold; redelivering will not change that.
            if (!(err instanceof AppError) || Number(err.code) >= 500) throw err;
            host.logger.error({ orderId: e.orderId, reservationId: e.reservationId, code: err.type }, "paid order's stock hold was no longer held");
          }
        },
        tenantOf,
      );
      host.consume(OrderEvents.cancelled, (trx, message) => unhold(trx, (message.data as OrderHold).tenantId, (message.data as OrderHold).reservationId), tenantOf);
      // Refunded before it was shipped: the goods are still here; back on the shelf, once.
      host.consume(
        OrderEvents.refunded,
        async (trx, message) => {
          const e = message.data as OrderRefunded;
          if (!e.restock) return;
          const r = await trx.selectFrom("reservations").select("items").where("id", "=", e.reservationId).executeTakeFirst();
          if (!r) return;
          for (const line of JSON.parse(r.items) as Line[]) await apply(trx, e.tenantId, line.sku, line.warehouse, "RETURN", line.quantity, `refund:${e.orderId}`, clock.now());
        },
        tenantOf,
      );
    },
    async started() {
      await host.start();
      sweeper.start();
    },
    async stopped() {
      await sweeper.stop();
      await host.stop();
    },
  };
}
