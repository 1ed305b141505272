import type { ServiceBroker, ServiceSchema } from "moleculer";
import { retryOnUniqueViolation } from "../../../platform/db/db";
import { routesWithSchemas } from "../../../platform/gateway/routes";
import { action, requireUser } from "../../../platform/runtime/action";
import { AppError, conflict } from "../../../platform/runtime/errors";
import { newId } from "../../../platform/runtime/ids";
import type { Platform } from "../../../platform/runtime/platform";
import { OrderEvents, type OrderRefunded, type OrderView } from "../order/order.contract";
import { PaymentContract as C, PaymentEvents, type PaymentSucceeded, paymentRoutes } from "./payment.contract";
import { onNotification } from "./payment.domain";
import { paymentMigrations, type PaymentRow, type PaymentTables } from "./payment.store";

/**
 * Payment intents for orders, through a provider port (today the built-in sandbox provider). A payment
 * moves only on a verified provider notification (see the callback service); a success is final and
 * leaves through the outbox, which marks the order paid.
 */
export function paymentService(platform: Platform): ServiceSchema {
  const host = platform.host<PaymentTables>("payment", paymentMigrations);
  const { clock, config } = platform;
  /** Where the provider must notify us: this system's public address (or this node's gateway). */
  const notifyUrl = () => {
    const base = config.publicUrl ?? platform.endpoint.url;
    // A node with no gateway and no public address cannot be notified: say so instead of opening a checkout nobody hears back from.
    if (!base) throw new AppError(503, "PAYMENTS_NOT_CONFIGURED", "set BAZAAR_PUBLIC_URL: the payment provider needs an address to notify");
    return `${base}/api/payments/callback/sandbox`;
  };
  let broker: ServiceBroker;
  const answer = (p: PaymentRow) => ({ paymentId: p.id, orderId: p.order_id, amount: Number(p.amount), status: p.status, payUrl: p.pay_url });

  return {
    name: "payment",
    settings: { routes: routesWithSchemas(paymentRoutes, C) },
    actions: {
      create: action(C.create, async (ctx) => {
        const buyer = requireUser(ctx);
        // The buyer's own order (anyone else's is a 404 from the order service).
        const order = await ctx.call<OrderView, object>("order.get", { id: ctx.params.id });
        if (order.status !== "PENDING_PAYMENT") throw conflict(`ORDER_${order.status}`, `the order is ${order.status.toLowerCase().replace("_", " ")}`);
        const notify = notifyUrl();
        const now = clock.now();
        // One payment per order: a second request resumes it (also after a crash before the provider answered).
        let payment = await retryOnUniqueViolation(async () => {
          const found = await host.db.selectFrom("payments").selectAll().where("order_id", "=", order.id).executeTakeFirst();
          if (found) return found;
          const row: PaymentRow = {
            id: `pay_${newId(now)}`,
            order_id: order.id,
            tenant_id: order.tenantId,
            buyer_id: buyer.id,
            amount: order.total,
            status: "CREATED",
            provider: "sandbox",
            provider_tx_id: null,
            pay_url: null,
            sequence: 0,
            succeeded_at: null,
            refunded_at: null,
            created_at: now,
            updated_at: now,
          };
          await host.db.insertInto("payments").values(row).execute();
          return row;
        });
        if (payment.status === "SUCCEEDED") throw conflict("PAYMENT_SUCCEEDED", "this order is paid");
        if (!payment.pay_url) {
          const checkout = await ctx.call<{ providerTxId: string; payUrl: string }, object>("sandbox.createCheckout", { paymentId: payment.id, amount: Number(payment.amount), notifyUrl: notify });
          await host.db.updateTable("payments").set({ provider_tx_id: checkout.providerTxId, pay_url: checkout.payUrl, updated_at: clock.now() }).where("id", "=", payment.id).execute();
          payment = { ...payment, provider_tx_id: checkout.providerTxId, pay_url: checkout.payUrl };
        }
        return answer(payment);
      }),

      applyNotification: action(C.applyNotification, async (ctx) => {
        const n = ctx.params;
        return host.tx(async (trx, emit) => {
          const p = await host.store.forUpdate(trx.selectFrom("payments").selectAll().where("id", "=", n.paymentId)).executeTakeFirst();
          if (!p) return { applied: false, code: "UNKNOWN_PAYMENT" };
          const outcome = onNotification({ status: p.status, amount: Number(p.amount), providerTxId: p.provider_tx_id, sequence: p.sequence }, n);
          if (!outcome.apply) return { applied: false, code: outcome.code, status: p.status };
          const now = clock.now();
          await trx
            .updateTable("payments")
            .set({ status: outcome.status, sequence: n.sequence, provider_tx_id: n.providerTxId, updated_at: now, ...(outcome.status === "SUCCEEDED" ? { succeeded_at: now } : {}) })
            .where("id", "=", p.id)
            .execute();
          if (outcome.status === "SUCCEEDED") {
            const event: PaymentSucceeded = { paymentId: p.id, orderId: p.order_id, tenantId: p.tenant_id, amount: Number(p.amount) };
            emit(PaymentEvents.succeeded, event, `payment-succeeded:${p.id}`);
          }
          return { applied: true, status: outcome.status };
        });
      }),

      /** Reconciliation's view: payments captured or refunded in [from, to), and those the provider names. */
      settled: action(C.settled, async (ctx) => {
        const { from, to, providerTxIds } = ctx.params;
        const rows = await host.db
          .selectFrom("payments")
          .selectAll()
          .where((eb) =>
            eb.or([
              eb.and([eb("succeeded_at", ">=", from), eb("succeeded_at", "<", to)]),
              eb.and([eb("refunded_at", ">=", from), eb("refunded_at", "<", to)]),
              ...(providerTxIds.length > 0 ? [eb("provider_tx_id", "in", providerTxIds)] : []),
            ]),
          )
          .execute();
        return rows.map((p) => ({
          paymentId: p.id,
          orderId: p.order_id,
          tenantId: p.tenant_id,
          providerTxId: p.provider_tx_id,
          amount: Number(p.amount),
          status: p.status,
          succeededAt: p.succeeded_at === null ? null : Number(p.succeeded_at),
          refundedAt: p.refunded_at === null ? null : Number(p.refunded_at),
        }));
      }),
    },
    created() {
      // A refunded order's money goes back through the provider (idempotent there), then the payment says so.
      host.consume(OrderEvents.refunded, async (trx, message) => {
        const e = message.data as OrderRefunded;
        const p = await host.store.forUpdate(trx.selectFrom("payments").selectAll().where("id", "=", e.paymentId)).executeTakeFirst();
        if (!p || p.status === "REFUNDED") return;
        await broker.call("sandbox.refund", { paymentId: p.id });
        const now = clock.now();
        await trx.updateTable("payments").set({ status: "REFUNDED", refunded_at: now, updated_at: now }).where("id", "=", p.id).execute();
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
