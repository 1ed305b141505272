import type { ServiceSchema } from "moleculer";
import { iso } from "../../../platform/clock/clock";
import { routesWithSchemas } from "../../../platform/gateway/routes";
import { action } from "../../../platform/runtime/action";
import { badRequest, conflict, notFound } from "../../../platform/runtime/errors";
import { newId } from "../../../platform/runtime/ids";
import type { Platform } from "../../../platform/runtime/platform";
import { Sweeper } from "../../../platform/runtime/sweeper";
import { SandboxContract as C, type SandboxNotification, sandboxRoutes } from "./sandbox.contract";
import { afterOutcome, redeliveryDelayMs, sign } from "./sandbox.domain";
import { type CheckoutRow, sandboxMigrations, type SandboxTables } from "./sandbox.store";

const SWEEP_MS = 500;

/**
 * The built-in sandbox payment provider, behaving like a real one: a hosted page per checkout, the
 * customer's outcome notified to the merchant's callback URL, signed (HMAC-SHA256 over timestamp and
 * body) and retried with backoff until the merchant acknowledges with a 2xx and `{"ack": true}`.
 * It is a third party: it talks to us over HTTP only.
 */
export function sandboxService(platform: Platform): ServiceSchema {
  const host = platform.host<SandboxTables>("sandbox", sandboxMigrations);
  const { clock, config } = platform;
  const sweeper = new Sweeper(() => deliverDue(), SWEEP_MS, host.logger, "sandbox notification delivery");

  const pageUrl = (paymentId: string) => `${config.publicUrl ?? platform.endpoint.url ?? ""}/api/payments/sandbox/${encodeURIComponent(paymentId)}`;
  const page = (c: CheckoutRow) => ({ paymentId: c.payment_id, providerTxId: c.provider_tx_id, amount: Number(c.amount), status: c.status, payUrl: pageUrl(c.payment_id), updatedAt: iso(c.updated_at) });

  async function deliver(id: string): Promise<void> {
    const n = await host.db.selectFrom("notifications").selectAll().where("id", "=", id).executeTakeFirst();
    if (!n || n.delivered_at !== null) return;
    const checkout = await host.db.selectFrom("checkouts").select("notify_url").where("payment_id", "=", n.payment_id).executeTakeFirstOrThrow();
    const timestamp = String(Math.floor(clock.now() / 1000));
    let error: string | null = null;
    try {
      const res = await fetch(checkout.notify_url, {
        method: "POST",
        headers: { "content-type": "application/json", "x-sandbox-timestamp": timestamp, "x-sandbox-signature": sign(config.sandboxSecret, timestamp, n.body) },
        body: n.body,
        signal: AbortSignal.timeout(10_000),
      });
      const answer = (await res.json().catch(() => null)) as { ack?: boolean } | null;
      if (!res.ok || answer?.ack !== true) error = `HTTP ${res.status} ${JSON.stringify(answer)}`.slice(0, 500);
    } catch (err) {
      error = (err as Error).message;
    }
    const now = clock.now();
    if (error === null) await host.db.updateTable("notifications").set({ delivered_at: now, attempts: n.attempts + 1, last_error: null }).where("id", "=", id).execute();
    else
      await host.db
        .updateTable("notifications")
        .set({ attempts: n.attempts + 1, next_attempt_at: now + redeliveryDelayMs(n.attempts + 1), last_error: error })
        .where("id", "=", id)
        .execute();
  }

  async function deliverDue(): Promise<number> {
    const due = await host.db.selectFrom("notifications").select("id").where("delivered_at", "is", null).where("next_attempt_at", "<=", clock.now()).orderBy("next_attempt_at").limit(100).execute();
    for (const { id } of due) await deliver(id);
    return due.length;
  }

  return {
    name: "sandbox",
    settings: { routes: routesWithSchemas(sandboxRoutes, C) },
    actions: {
      createCheckout: action(C.createCheckout, async (ctx) => {
        const { paymentId, amount, notifyUrl } = ctx.params;
        const now = clock.now();
        // One checkout per payment: asking again answers the same one.
        await host.store.insertIfAbsent(
          host.db.insertInto("checkouts").values({ payment_id: paymentId, provider_tx_id: `sbx_${newId(now)}`, amount, notify_url: notifyUrl, status: "PENDING", sequence: 0, created_at: now, updated_at: now }),
        );
        const c = await host.db.selectFrom("checkouts").selectAll().where("payment_id", "=", paymentId).executeTakeFirstOrThrow();
        if (Number(c.amount) !== amount) throw conflict("AMOUNT_MISMATCH", `checkout ${paymentId} was opened for ${c.amount}`);
        return page(c);
      }),

      page: action(C.page, async (ctx) => {
        const c = await host.db.selectFrom("checkouts").selectAll().where("payment_id", "=", ctx.params.paymentId).executeTakeFirst();
        if (!c) throw notFound("CHECKOUT_NOT_FOUND", `no checkout ${ctx.params.paymentId}`);
        // The sandbox shows its deliveries too, as a provider's dashboard would.
        const notifications = await host.db.selectFrom("notifications").selectAll().where("payment_id", "=", c.payment_id).orderBy("id").execute();
        return {
          ...page(c),
          notifications: notifications.map((n) => ({ id: n.id, attempts: n.attempts, delivered: n.delivered_at !== null, lastError: n.last_error })),
        };
      }),

      complete: action(C.complete, async (ctx) => {
        const { paymentId, outcome } = ctx.params;
        const result = await host.tx(async (trx) => {
          const c = await host.store.forUpdate(trx.selectFrom("checkouts").selectAll().where("payment_id", "=", paymentId)).executeTakeFirst();
          if (!c) throw notFound("CHECKOUT_NOT_FOUND", `no checkout ${paymentId}`);
          const next = afterOutcome(c.status, outcome);
          if (!next) throw conflict("CHECKOUT_PAID", "this checkout is paid already");
          const now = clock.now();
          const sequence = c.sequence + 1;
          await trx.updateTable("checkouts").set({ status: next, sequence, updated_at: now }).where("payment_id", "=", paymentId).execute();
          if (next === "SUCCEEDED")
            await trx.insertInto("statement_lines").values({ provider_tx_id: c.provider_tx_id, kind: "PAYMENT", payment_id: paymentId, amount: c.amount, at: now }).execute();
          const notification: SandboxNotification = { notificationId: `ntf_${newId(now)}`, providerTxId: c.provider_tx_id, paymentId, status: next, amount: Number(c.amount), sequence };
          await trx
            .insertInto("notifications")
            .values({ id: notification.notificationId, payment_id: paymentId, body: JSON.stringify(notification), attempts: 0, next_attempt_at: now, delivered_at: null, last_error: null })
            .execute();
          return { checkout: { ...c, status: next, sequence, updated_at: now }, notificationId: notification.notificationId };
        });
        sweeper.soon();
        return { ...page(result.checkout), notificationId: result.notificationId };
      }),

      refund: action(C.refund, async (ctx) => {
        const { paymentId } = ctx.params;
        return host.tx(async (trx) => {
          const c = await host.store.forUpdate(trx.selectFrom("checkouts").selectAll().where("payment_id", "=", paymentId)).executeTakeFirst();
          if (!c) throw notFound("CHECKOUT_NOT_FOUND", `no checkout ${paymentId}`);
          if (c.status === "REFUNDED") return page(c);
          if (c.status !== "SUCCEEDED") throw conflict("CHECKOUT_NOT_PAID", `checkout ${paymentId} is ${c.status.toLowerCase()}`);
          const now = clock.now();
          await trx.updateTable("checkouts").set({ status: "REFUNDED", updated_at: now }).where("payment_id", "=", paymentId).execute();
          await trx.insertInto("statement_lines").values({ provider_tx_id: c.provider_tx_id, kind: "REFUND", payment_id: paymentId, amount: c.amount, at: now }).execute();
          return page({ ...c, status: "REFUNDED", updated_at: now });
        });
      }),

      statement: action(C.statement, async (ctx) => {
        const { date } = ctx.params;
        const from = Date.parse(`${date}T00:00:00.000Z`);
        if (Number.isNaN(from)) throw badRequest("INVALID_DATE", `${date} is not a date`, "date");
        const rows = await host.db.selectFrom("statement_lines").selectAll().where("at", ">=", from).where("at", "<", from + 86_400_000).orderBy("at").orderBy("provider_tx_id").execute();
        const lines = rows.map((l) => ({ providerTxId: l.provider_tx_id, paymentId: l.payment_id, kind: l.kind, amount: Number(l.amount), at: Number(l.at) }));
        // The file a merchant would download: CSV, one line per movement of money.
        const csv = ["provider_tx_id,payment_id,kind,amount,at", ...lines.map((l) => `${l.providerTxId},${l.paymentId},${l.kind},${l.amount},${iso(l.at)}`)].join("\n");
        return { date, lines, csv };
      }),

      /** Delivers what is due now (it also runs twice a second); answers how many were due. */
      tick: action(C.tick, () => sweeper.now()),
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
