import type { Kysely } from "kysely";
import type { ServiceSchema } from "moleculer";
import { routesWithSchemas } from "../../../platform/gateway/routes";
import { action } from "../../../platform/runtime/action";
import { AppError } from "../../../platform/runtime/errors";
import type { Platform } from "../../../platform/runtime/platform";
import { verify } from "../sandbox/sandbox.domain";
import { CallbackContract as C, callbackRoutes } from "./callback.contract";

interface CallbackTables {
  /** Every notification taken, once: a repeat is acknowledged and changes nothing. */
  received: { notification_id: string; payment_id: string; code: string; received_at: number };
}

/**
 * The endpoint payment providers call. Checks the signature and that the timestamp is fresh (a replay
 * of an old notification fails), applies the notification through the payment service — idempotent
 * by the provider's transaction and sequence — and acknowledges only once that is durable. A
 * notification for a payment we do not know is logged and acknowledged with a code, never answered
 * with a 5xx the provider would retry forever.
 */
export function callbackService(platform: Platform): ServiceSchema {
  const host = platform.host<CallbackTables>("callback", {
    "0001_commerce_callback": {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable("received")
          .addColumn("notification_id", "varchar(80)", (c) => c.primaryKey())
          .addColumn("payment_id", "varchar(80)", (c) => c.notNull())
          .addColumn("code", "varchar(32)", (c) => c.notNull())
          .addColumn("received_at", "bigint", (c) => c.notNull())
          .execute();
      },
    },
  });
  const { clock, config } = platform;

  return {
    name: "callback",
    settings: { routes: routesWithSchemas(callbackRoutes, C) },
    actions: {
      sandbox: action(C.sandbox, async (ctx) => {
        const headers = ctx.meta.headers ?? {};
        const failure = verify(config.sandboxSecret, headers["x-sandbox-timestamp"], headers["x-sandbox-signature"], ctx.meta.rawBody ?? "", clock.now());
        if (failure) throw new AppError(401, failure.code, failure.message);
        const n = ctx.params;
        const seen = await host.db.selectFrom("received").select("code").where("notification_id", "=", n.notificationId).executeTakeFirst();
        if (seen) return { ack: true, duplicate: true, code: seen.code };
        const outcome = await ctx.call<{ applied: boolean; code?: string }, object>("payment.applyNotification", {
          paymentId: n.paymentId,
          providerTxId: n.providerTxId,
          status: n.status,
          amount: n.amount,
          sequence: n.sequence,
        });
        const code = outcome.applied ? "APPLIED" : (outcome.code ?? "IGNORED");
        if (code === "UNKNOWN_PAYMENT") host.logger.warn({ notificationId: n.notificationId, paymentId: n.paymentId }, "notification for an unknown payment");
        await host.store.insertIfAbsent(host.db.insertInto("received").values({ notification_id: n.notificationId, payment_id: n.paymentId, code, received_at: clock.now() }));
        return { ack: true, code };
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
