import type { ServiceSchema } from "moleculer";
import { iso } from "../../../platform/clock/clock";
import { action, requireIdempotencyKey, requireRole, requireUser } from "../../../platform/runtime/action";
import { isUniqueViolation } from "../../../platform/db/db";
import { AppError, notFound } from "../../../platform/runtime/errors";
import { newId } from "../../../platform/runtime/ids";
import { routesWithSchemas } from "../../../platform/gateway/routes";
import type { Platform } from "../../../platform/runtime/platform";
import { PerTransaction } from "../../../platform/runtime/per-transaction";
import { type CaseDecided, ReportEvents } from "../report/report.contract";
import { type CasePaid, type Redemption, RewardContract as C, RewardEvents, rewardRoutes } from "./reward.contract";
import { grantsFor, redemptionRefusal } from "./reward.domain";
import { type Grant, grantCoins, moveCoins, refsPaid, type RewardDb, rewardMigrations, type RewardTables } from "./reward.store";

/** Coins for reviewers and the points mall they spend them in. */
export function rewardService(platform: Platform): ServiceSchema {
  const host = platform.host<RewardTables>("reward", rewardMigrations);
  const { clock } = platform;
  const coinsGranted = platform.metrics.counter("bazaar_reward_coins_granted_total", "coins granted to reviewers", ["coherent"]);
  const redemptions = platform.metrics.counter("bazaar_reward_redemptions_total", "points-mall redemptions", []);

  async function balanceOf(db: RewardDb, userId: number): Promise<number> {
    const row = await db.selectFrom("accounts").select("balance").where("user_id", "=", userId).executeTakeFirst();
    return Number(row?.balance ?? 0);
  }

  /** The grants due in a consumer's transaction (its whole batch of verdicts), paid together just before it commits. */
  const pending = new PerTransaction(() => ({ grants: [] as Grant[], refs: new Set<string>() }));
  async function payGrants(trx: RewardDb): Promise<void> {
    const batch = pending.take(trx);
    if (batch) await grantCoins(trx, batch.grants, clock.now());
  }

  async function priorRedemption(db: RewardDb, idemKey: string): Promise<Redemption | undefined> {
    const r = await db.selectFrom("redemptions").selectAll().where("idem_key", "=", idemKey).executeTakeFirst();
    return r && { redemptionId: r.id, itemId: Number(r.item_id), price: Number(r.price), balance: Number(r.balance_after), at: iso(r.at) };
  }

  return {
    name: "reward",
    settings: { routes: routesWithSchemas(rewardRoutes, C) },
    actions: {
      balance: action(C.balance, async (ctx) => {
        const user = requireUser(ctx);
        return { userId: user.id, balance: await balanceOf(host.db, user.id) };
      }),

      ledger: action(C.ledger, async (ctx) => {
        const user = requireUser(ctx);
        const { limit, cursor } = ctx.params;
        let q = host.db.selectFrom("ledger").selectAll().where("user_id", "=", user.id);
        if (cursor) q = q.where("id", "<", Number(cursor));
        const rows = await q.orderBy("id", "desc").limit(limit + 1).execute();
        const page = rows.slice(0, limit);
        return {
          items: page.map((l) => ({ id: Number(l.id), amount: Number(l.amount), kind: l.kind, ref: l.ref, balanceAfter: Number(l.balance_after), at: iso(l.at) })),
          nextCursor: rows.length > limit ? String(page[page.length - 1].id) : null,
        };
      }),

      listItems: action(C.listItems, async () => {
        const rows = await host.db.selectFrom("items").selectAll().orderBy("id").execute();
        return rows.map((i) => ({ id: Number(i.id), name: i.name, price: Number(i.price), stock: Number(i.stock) }));
      }),

      createItem: action(C.createItem, async (ctx) => {
        const operator = requireRole(ctx, "operator");
        const now = clock.now();
        return host.tx(async (trx, emit) => {
          const id = await host.store.insertId(trx.insertInto("items").values({ ...ctx.params, created_at: now }));
          const item = { id, ...ctx.params };
          emit(ReportEvents.audit, { actorId: operator.id, action: "mall-item.create", subject: `item:${item.id}`, detail: item, at: now });
          return item;
        });
      }),

      redeem: action(C.redeem, async (ctx) => {
        const user = requireUser(ctx);
        const idemKey = `${user.id}:${requireIdempotencyKey(ctx)}`;
        const prior = await priorRedemption(host.db, idemKey);
        if (prior) return prior;
        try {
          const redeemed = await host.tx(async (trx) => {
            const now = clock.now();
            const item = await host.store.forUpdate(trx.selectFrom("items").selectAll().where("id", "=", ctx.params.itemId)).executeTakeFirst();
            if (!item) throw notFound("ITEM_NOT_FOUND", `no item ${ctx.params.itemId}`);
            const price = Number(item.price);
            const refusal = redemptionRefusal(await balanceOf(trx, user.id), price, Number(item.stock));
            if (refusal) throw new AppError(409, refusal.code, refusal.message);
            const taken = await trx
              .updateTable("items")
              .set((eb) => ({ stock: eb("stock", "-", 1) }))
              .where("id", "=", item.id)
              .where("stock", ">=", 1)
              .executeTakeFirst();
            if (Number(taken.numUpdatedRows) !== 1) throw new AppError(409, "OUT_OF_STOCK", "this item is out of stock");
            const redemptionId = newId(now);
            const balance = await moveCoins(trx, user.id, -price, "REDEEM", `redeem:${redemptionId}`, now);
            if (balance === null) throw new AppError(409, "INSUFFICIENT_COINS", `the item costs ${price} coins`);
            await trx
              .insertInto("redemptions")
              .values({ id: redemptionId, user_id: user.id, item_id: Number(item.id), price, idem_key: idemKey, balance_after: balance, at: now })
              .execute();
            return { redemptionId, itemId: Number(item.id), price, balance, at: iso(now) };
          });
          redemptions.inc();
          return redeemed;
        } catch (err) {
          // The same key raced in from another request; its result is the answer.
          if (isUniqueViolation(err)) {
            const raced = await priorRedemption(host.db, idemKey);
            if (raced) return raced;
          }
          throw err;
        }
      }),
    },
    created() {
      host.onCommitted((events) => {
        for (const e of events) {
          if (e.subject !== RewardEvents.paid) continue;
          for (const g of (e.data as CasePaid).grants) coinsGranted.inc({ coherent: String(g.coherent) }, g.amount);
        }
      });
      host.consume(
        ReportEvents.decided,
        async (trx, message, emit) => {
          const decided = message.data as CaseDecided;
          const grants = grantsFor(decided).map((g) => ({ ...g, ref: `grant:${decided.caseId}:${g.userId}` }));
          if (grants.length === 0) return;
          // The inbox drops redeliveries; the refs also hold against the same verdict arriving under another
          // event id, earlier in the ledger or earlier in this batch.
          const batch = pending.of(trx);
          const paid = await refsPaid(trx, grants.map((g) => g.ref));
          const due = grants.filter((g) => !paid.has(g.ref) && !batch.refs.has(g.ref));
          for (const g of due) {
            batch.refs.add(g.ref);
            batch.grants.push(g);
          }
          if (due.length > 0) {
            const event: CasePaid = { caseId: decided.caseId, grants: due.map(({ userId, amount, coherent }) => ({ userId, amount, coherent })) };
            emit(RewardEvents.paid, event, `case-paid:${decided.caseId}`);
          }
        },
        { beforeCommit: (trx) => payGrants(trx) },
      );
    },
    async started() {
      await host.start();
    },
    async stopped() {
      await host.stop();
    },
  };
}
