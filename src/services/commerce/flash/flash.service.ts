import type { ServiceBroker, ServiceSchema } from "moleculer";
import { z } from "zod";
import { iso } from "../../../platform/clock/clock";
import { isUniqueViolation } from "../../../platform/db/db";
import { routesWithSchemas } from "../../../platform/gateway/routes";
import { action, type Ctx, requireIdempotencyKey, requireUser } from "../../../platform/runtime/action";
import { badRequest, conflict, notFound, tooMany } from "../../../platform/runtime/errors";
import { newId } from "../../../platform/runtime/ids";
import { crashPoint } from "../../../platform/runtime/faults";
import type { Platform } from "../../../platform/runtime/platform";
import type { AfterCommit } from "../../../platform/runtime/service-host";
import { Sweeper } from "../../../platform/runtime/sweeper";
import { leaseFor, RateLimit } from "../../../platform/guard/rate-limit";
import { initiator, txClient } from "../../../platform/tx/tx.client";
import { isBusinessRefusal } from "../../../platform/tx/tx.domain";
import { OrderEvents, type OrderHold, type OrderView } from "../order/order.contract";
import type { TenantView } from "../tenant/tenant.contract";
import { type AttemptAdmitted, type AttemptView, type CampaignView, FlashContract as C, FlashEvents, flashRoutes } from "./flash.contract";
import { type AdmissionRefusalCode, attemptIdFor, campaignOfAttempt, campaignProblem, countsOf, REFUSAL_MESSAGES, settleRefusal } from "./flash.domain";
import { type AttemptRecord, admitAnswer, admitScript, flashKeys, giveBackScript, publishedScript, settleScript, warmScript } from "./flash.kv";
import { type CampaignRow, type FlashDb, flashMigrations, type FlashTables, TENANT_TABLES } from "./flash.store";

const SWEEP_MS = 1_000;
/** An admitted attempt whose publish has not completed after this long is published again (the process may have died before it). */
const REPUBLISH_AFTER_MS = 10_000;
/** Campaign keys stay in the kv this long past the campaign's end, for late polls and settles. */
const KV_GRACE_MS = 86_400_000;
/** Orders made from admitted attempts per second, by default: what the order service sustains on SQLite with room to spare. */
const DEFAULT_ORDER_RATE = 300;
const OrderRate = z.object({ perSecond: z.number().int().min(1).max(100_000) });

/** How long a tenant's flash-sale QPS share is trusted before it is read again. */
const QUOTA_REFRESH_MS = 10_000;
/** How long the coordinator waits for this service's decision on an allocation before asking. */
const ALLOCATION_DECISION_MS = 15_000;

/**
 * The flash sale (秒杀): campaigns whose stock is allocated from inventory and warmed into the kv;
 * purchase attempts admitted by one atomic kv script and answered at once; admitted attempts carried
 * by the stream to order creation at the pace the order service keeps (peak shaving); orders that
 * are cancelled give their units back to the campaign. The database is the final authority: the
 * kv is the fast gate in front of it.
 */
export function flashService(platform: Platform): ServiceSchema {
  const host = platform.host<FlashTables>("flash", flashMigrations, TENANT_TABLES);
  const { clock, kv, stream } = platform;
  const sweeper = new Sweeper(() => sweep(), SWEEP_MS, host.logger, "flash warm and republish");
  // Peak shaving: the pace admitted attempts become orders, live from the config centre (flash/order-rate).
  const orderRate = platform.configs.watch("flash", "flash", "order-rate", OrderRate, { perSecond: DEFAULT_ORDER_RATE });
  /** Campaigns never change once created: the attempt path reads them from here, not the database. */
  const campaigns = new Map<string, CampaignRow>();
  /** Per tenant: its flash-sale QPS share (tenant quota `flashQps`) as a limiter shared by every node. */
  const shares = new Map<string, { limit: RateLimit; qps: number; readAt: number }>();
  let broker: ServiceBroker;

  async function withinShare(ctx: Ctx<unknown>, tenantId: string): Promise<void> {
    let share = shares.get(tenantId);
    if (!share || clock.now() - share.readAt > QUOTA_REFRESH_MS) {
      const tenant = await ctx.call<TenantView, object>("tenant.profile", { tid: tenantId });
      const qps = tenant.quotas.flashQps;
      const limit = share && share.qps === qps ? share.limit : new RateLimit(kv, { name: `flash-qps:${tenantId}`, points: Math.max(1, qps), durationSeconds: 1, lease: leaseFor(qps) }, "TENANT_FLASH_QPS_EXCEEDED");
      shares.set(tenantId, (share = { limit, qps, readAt: clock.now() }));
    }
    if (share.qps === 0) throw tooMany("TENANT_FLASH_QPS_EXCEEDED", "this shop takes no flash-sale attempts (its flashQps quota is 0)");
    await share.limit.consume(tenantId);
  }

  const missingCampaign = (id: string) => notFound("CAMPAIGN_NOT_FOUND", `no campaign ${id}`);
  const missingAttempt = (id: string) => notFound("ATTEMPT_NOT_FOUND", `no attempt ${id}`);
  const ttlOf = (c: CampaignRow) => Math.max(1, c.ends_at + KV_GRACE_MS - clock.now());

  async function campaign(id: string): Promise<CampaignRow> {
    const cached = campaigns.get(id);
    if (cached) return cached;
    const index = await host.db.selectFrom("campaign_index").select("tenant_id").where("id", "=", id).executeTakeFirst();
    const row = index && (await host.forTenant(index.tenant_id).selectFrom("campaigns").selectAll().where("id", "=", id).executeTakeFirst());
    if (!row) throw missingCampaign(id);
    const c = normalise(row);
    campaigns.set(id, c);
    return c;
  }

  /** The campaign as seen from inside a transaction of its tenant (SQLite has one connection: no second handle while it is open). */
  async function campaignIn(trx: FlashDb, id: string): Promise<CampaignRow> {
    const cached = campaigns.get(id);
    if (cached) return cached;
    const row = await trx.selectFrom("campaigns").selectAll().where("id", "=", id).executeTakeFirst();
    if (!row) throw missingCampaign(id);
    const c = normalise(row);
    campaigns.set(id, c);
    return c;
  }

  /** Engines hand bigint columns back as strings; the cache holds numbers. */
  const normalise = (r: CampaignRow): CampaignRow => ({
    ...r,
    price: Number(r.price),
    stock: Number(r.stock),
    starts_at: Number(r.starts_at),
    ends_at: Number(r.ends_at),
    taken: Number(r.taken),
    created_by: Number(r.created_by),
  });

  /** Puts the campaign's remaining units (by the database) in the kv unless they are there. */
  async function warm(c: CampaignRow): Promise<boolean> {
    const row = await host.forTenant(c.tenant_id).selectFrom("campaigns").select("taken").where("id", "=", c.id).executeTakeFirstOrThrow();
    const [answer] = await kv.run(warmScript, [flashKeys(c.id).stock], [c.stock - Number(row.taken), ttlOf(c)]);
    return answer === "WARMED";
  }

  async function campaignView(c: CampaignRow): Promise<CampaignView> {
    const row = await host.forTenant(c.tenant_id).selectFrom("campaigns").select("taken").where("id", "=", c.id).executeTakeFirstOrThrow();
    const remaining = await kv.get(flashKeys(c.id).stock);
    return {
      id: c.id,
      tenantId: c.tenant_id,
      sku: c.sku,
      price: c.price,
      startsAt: iso(c.starts_at),
      endsAt: iso(c.ends_at),
      perUserLimit: c.per_user_limit,
      ...countsOf(c.stock, Number(row.taken), remaining === null ? null : Number(remaining)),
    };
  }

  /** Puts an admitted attempt on the stream, then takes it off the sweep's list: the stream has it now. */
  async function publish(a: AttemptAdmitted): Promise<void> {
    await stream.publish(FlashEvents.admitted, a, { id: a.attemptId });
    // Left on the list, the sweep publishes it again: a duplicate the consumer's inbox drops.
    await kv.run(publishedScript, [flashKeys(a.campaignId).queued], [a.attemptId]).catch((err) => host.logger.warn({ err, attemptId: a.attemptId }, "published attempt still on the sweep's list"));
  }

  /** Records an attempt's outcome in the kv (and, for a refusal the database did not count, gives its units back). */
  async function settleInKv(c: CampaignRow, a: AttemptAdmitted, record: AttemptRecord, giveBack: boolean): Promise<void> {
    const k = flashKeys(c.id);
    await kv.run(settleScript, [k.stock, k.used(a.userId), k.attempts, k.queued], [a.attemptId, JSON.stringify(record), giveBack ? 1 : 0, a.quantity]);
  }

  /** Refusals from the order pipeline that leave the campaign's units unsold, so the kv may admit them again. */
  const UNSOLD_REFUSALS = new Set(["TENANT_SUSPENDED", "TENANT_QUOTA_EXCEEDED", "PRODUCT_NOT_FOUND"]);

  /**
   * An admitted attempt reaches the database: checked against the campaign's count and the buyer's
   * units (the authority if the kv ever lost its state), then turned into an order. Runs inside the
   * consumer's transaction, with the campaign row locked, so attempts of one campaign settle one by one.
   * The outcome reaches the kv only after that commit (a redelivered attempt may settle otherwise); if
   * that write is lost, the kv keeps the attempt QUEUED (its view reads the database first) and does not
   * offer a refused attempt's units again: the kv can under-sell then, never over-sell.
   */
  async function settle(trx: FlashDb, a: AttemptAdmitted, afterCommit: AfterCommit): Promise<void> {
    if (await trx.selectFrom("attempts").select("id").where("id", "=", a.attemptId).executeTakeFirst()) return;
    const c = await campaignIn(trx, a.campaignId);
    const row = await host.store.forUpdate(trx.selectFrom("campaigns").select("taken").where("id", "=", c.id)).executeTakeFirstOrThrow();
    const taken = Number(row.taken);
    const held = await trx
      .selectFrom("attempts")
      .select((eb) => eb.fn.coalesce(eb.fn.sum<number>("quantity"), eb.lit(0)).as("units"))
      .where("campaign_id", "=", c.id)
      .where("user_id", "=", a.userId)
      .where("status", "=", "ORDERED")
      .where("returned", "=", 0)
      .executeTakeFirstOrThrow();
    const now = clock.now();
    const base = { tenant_id: c.tenant_id, id: a.attemptId, campaign_id: c.id, user_id: a.userId, quantity: a.quantity, returned: 0, created_at: now, updated_at: now };
    const record = (status: AttemptRecord["status"], extra: Partial<AttemptRecord>): AttemptRecord => ({ status, userId: a.userId, quantity: a.quantity, at: now, ...extra });

    const refusal = settleRefusal({ stock: c.stock, taken, userUnits: Number(held.units), perUserLimit: c.per_user_limit }, a.quantity);
    if (refusal) {
      await trx.insertInto("attempts").values({ ...base, status: "REJECTED", order_id: null, reason: refusal }).execute();
      afterCommit(() => settleInKv(c, a, record("REJECTED", { reason: refusal }), false));
      return;
    }
    let order: OrderView;
    try {
      order = await broker.call<OrderView, object>("order.createFlash", {
        tenantId: c.tenant_id,
        buyerId: a.userId,
        attemptId: a.attemptId,
        sku: c.sku,
        quantity: a.quantity,
        warehouse: c.warehouse,
        price: c.price,
      });
    } catch (err) {
      // A refusal is final; anything else (a timeout, a node down) is redelivered and asked again.
      if (!isBusinessRefusal(err)) throw err;
      const code = String((err as { type: string }).type);
      await trx.insertInto("attempts").values({ ...base, status: "REJECTED", order_id: null, reason: code }).execute();
      afterCommit(() => settleInKv(c, a, record("REJECTED", { reason: code }), UNSOLD_REFUSALS.has(code)));
      return;
    }
    await trx.insertInto("attempts").values({ ...base, status: "ORDERED", order_id: order.id, reason: null }).execute();
    await trx.updateTable("campaigns").set({ taken: taken + a.quantity, updated_at: now }).where("id", "=", c.id).execute();
    afterCommit(() => settleInKv(c, a, record("ORDERED", { orderId: order.id }), false));
    crashPoint("flash.settle.recorded");
  }

  /** A flash order was cancelled (by the buyer, or unpaid in time): its units go back to the campaign, once. */
  async function giveBack(trx: FlashDb, orderId: string): Promise<void> {
    const a = await trx.selectFrom("attempts").selectAll().where("order_id", "=", orderId).executeTakeFirst();
    if (!a || a.status !== "ORDERED" || Number(a.returned) === 1) return;
    const c = await campaignIn(trx, a.campaign_id);
    const row = await host.store.forUpdate(trx.selectFrom("campaigns").select("taken").where("id", "=", c.id)).executeTakeFirstOrThrow();
    const now = clock.now();
    await trx.updateTable("attempts").set({ returned: 1, updated_at: now }).where("id", "=", a.id).execute();
    await trx.updateTable("campaigns").set({ taken: Number(row.taken) - Number(a.quantity), updated_at: now }).where("id", "=", c.id).execute();
    const k = flashKeys(c.id);
    // Before the commit, unlike a settlement: the cancellation is a fact, a rollback is redelivered and
    // gives the units back in the database too, and the script gives them back in the kv once.
    const record: AttemptRecord = { status: "ORDERED", userId: Number(a.user_id), quantity: Number(a.quantity), at: now, orderId, returned: true };
    await kv.run(giveBackScript, [k.stock, k.used(Number(a.user_id)), k.attempts], [a.id, JSON.stringify(record)]);
  }

  /** Warms running campaigns the kv lost; republishes admitted attempts whose publish never completed. */
  async function sweep(): Promise<{ warmed: number; republished: number }> {
    const now = clock.now();
    const live = await host.store.acrossTenants().selectFrom("campaigns").selectAll().where("ends_at", ">", now - KV_GRACE_MS).execute();
    let warmed = 0;
    let republished = 0;
    for (const row of live) {
      const c = normalise(row);
      campaigns.set(c.id, c);
      if (c.ends_at > now && (await warm(c))) warmed++;
      const queued = await kv.hgetall(flashKeys(c.id).queued);
      const attempts = Object.entries(queued).filter(([, at]) => Number(at) <= now - REPUBLISH_AFTER_MS);
      if (attempts.length === 0) continue;
      const records = await kv.hgetall(flashKeys(c.id).attempts);
      for (const [attemptId] of attempts) {
        const r = records[attemptId] && (JSON.parse(records[attemptId]) as AttemptRecord);
        if (!r || r.status !== "QUEUED") continue;
        await publish({ attemptId, campaignId: c.id, tenantId: c.tenant_id, userId: r.userId, quantity: r.quantity });
        republished++;
      }
    }
    if (warmed + republished > 0) host.logger.warn({ warmed, republished }, "flash sweep repaired the front gate");
    return { warmed, republished };
  }

  return {
    name: "flash",
    settings: { routes: routesWithSchemas(flashRoutes, C) },
    actions: {
      createCampaign: action(C.createCampaign, async (ctx) => {
        const user = requireUser(ctx);
        const { tenantId, sku, price, stock, startsAt, endsAt, perUserLimit } = ctx.params;
        // Stock leaves the shelf for the sale: asked again here, whoever called.
        await ctx.call("permission.require", { tid: tenantId, permission: "flash:write" });
        const key = ctx.meta.idempotencyKey ?? null;
        if (key !== null) {
          const prior = await host.forTenant(tenantId).selectFrom("campaigns").select("id").where("idem_key", "=", key).executeTakeFirst();
          if (prior) return campaignView(await campaign(prior.id));
        }
        const now = clock.now();
        const problem = campaignProblem({ price, stock, startsAt, endsAt, perUserLimit }, now);
        if (problem) throw badRequest("INVALID_CAMPAIGN", problem.message, problem.field);
        const id = newId(now);
        const warehouse = `flash-${id}`;
        const gid = `campaign:${id}`;
        const tcc = txClient(broker, "flash", ALLOCATION_DECISION_MS);
        try {
          await tcc.tryBranch(gid, {
            action: "inventory.allocate",
            confirm: "inventory.keepAllocation",
            cancel: "inventory.returnAllocation",
            payload: { tenantId, sku, quantity: stock, to: warehouse },
          }, ctx);
        } catch (err) {
          await initiator.abandon(host, tcc, gid, clock.now());
          throw err;
        }
        const row: CampaignRow = {
          tenant_id: tenantId,
          id,
          sku,
          price,
          stock,
          starts_at: startsAt,
          ends_at: endsAt,
          per_user_limit: perUserLimit,
          warehouse,
          taken: 0,
          idem_key: key,
          created_by: user.id,
          created_at: now,
          updated_at: now,
        };
        try {
          await host.tenantTx(tenantId, async (trx) => {
            await initiator.commit(trx, gid, now);
            await trx.insertInto("campaigns").values(row).execute();
            await trx.insertInto("campaign_index").values({ id, tenant_id: tenantId }).execute();
          });
        } catch (err) {
          await initiator.abandon(host, tcc, gid, clock.now());
          if (key !== null && isUniqueViolation(err)) {
            const raced = await host.forTenant(tenantId).selectFrom("campaigns").select("id").where("idem_key", "=", key).executeTakeFirst();
            if (raced) return campaignView(await campaign(raced.id));
          }
          throw err;
        }
        await tcc.commit(gid).catch((err) => host.logger.warn({ err, gid }, "commit not delivered to the coordinator; it will ask"));
        campaigns.set(id, row);
        await warm(row);
        return campaignView(row);
      }),

      getCampaign: action(C.getCampaign, async (ctx) => campaignView(await campaign(ctx.params.id))),

      attempt: action(C.attempt, async (ctx) => {
        const user = requireUser(ctx);
        const key = requireIdempotencyKey(ctx);
        const { id, quantity } = ctx.params;
        const c = await campaign(id);
        await withinShare(ctx, c.tenant_id);
        const k = flashKeys(id);
        const now = clock.now();
        const attemptId = attemptIdFor(id, newId(now));
        const record: AttemptRecord = { status: "QUEUED", userId: user.id, quantity, at: now };
        const tryAdmit = async () =>
          admitAnswer(
            await kv.run(
              admitScript,
              [k.stock, k.used(user.id), k.key(user.id, key), k.attempts, k.queued],
              [now, c.starts_at, c.ends_at, c.per_user_limit, quantity, attemptId, JSON.stringify(record), ttlOf(c)],
            ),
          );
        let answer = await tryAdmit();
        if (answer.outcome === "REFUSED" && answer.code === "NOT_WARM") {
          await warm(c);
          answer = await tryAdmit();
        }
        if (answer.outcome === "REFUSED") {
          const code = answer.code === "NOT_WARM" ? "SOLD_OUT" : answer.code;
          throw conflict(code, REFUSAL_MESSAGES[code as AdmissionRefusalCode]);
        }
        // A repeat is published again too: its first publish may be what the buyer is retrying.
        const admitted: AttemptAdmitted = { attemptId: answer.attemptId, campaignId: id, tenantId: c.tenant_id, userId: user.id, quantity };
        // The kv holds the admission; if the stream is unreachable now, the sweep publishes it later.
        await publish(admitted).catch((err) => host.logger.warn({ err, attemptId: admitted.attemptId }, "admitted attempt not published; the sweep will"));
        return { attemptId: answer.attemptId };
      }),

      getAttempt: action(C.getAttempt, async (ctx) => {
        const user = requireUser(ctx);
        const { id } = ctx.params;
        const campaignId = campaignOfAttempt(id);
        if (!campaignId) throw missingAttempt(id);
        const c = await campaign(campaignId).catch(() => undefined);
        if (!c) throw missingAttempt(id);
        const row = await host.forTenant(c.tenant_id).selectFrom("attempts").selectAll().where("id", "=", id).executeTakeFirst();
        if (row) {
          if (Number(row.user_id) !== user.id) throw missingAttempt(id);
          const view: AttemptView = { attemptId: id, campaignId, status: row.status, quantity: Number(row.quantity) };
          if (row.order_id) view.orderId = row.order_id;
          if (row.reason) view.reason = row.reason;
          return view;
        }
        const raw = await kv.hget(flashKeys(campaignId).attempts, id);
        const r = raw && (JSON.parse(raw) as AttemptRecord);
        if (!r || r.userId !== user.id) throw missingAttempt(id);
        const view: AttemptView = { attemptId: id, campaignId, status: r.status, quantity: r.quantity };
        if (r.orderId) view.orderId = r.orderId;
        if (r.reason) view.reason = r.reason;
        return view;
      }),

      txDecision: initiator.decisionAction(host, () => clock.now()),

      /** Runs the sweep once now (it also runs every second). */
      tick: action(C.tick, () => sweeper.now()),
    },
    created() {
      host.consume(FlashEvents.admitted, (trx, message, _emit, afterCommit) => settle(trx, message.data as AttemptAdmitted, afterCommit), {
        tenantOf: (m) => (m.data as AttemptAdmitted).tenantId,
        maxPerSecond: () => orderRate.value.perSecond,
      });
      host.consume(OrderEvents.cancelled, (trx, message) => giveBack(trx, (message.data as OrderHold).orderId), (m) => (m.data as OrderHold).tenantId);
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
