import type { ServiceSchema } from "moleculer";
import { z } from "zod";
import type { RouteDef } from "../../src/platform/gateway/routes";
import { action, type Ctx } from "../../src/platform/runtime/action";
import { AppError, conflict } from "../../src/platform/runtime/errors";
import type { Platform } from "../../src/platform/runtime/platform";
import { initiator, submitSaga, txClient } from "../../src/platform/tx/tx.client";

/**
 * A small participant for the coordinator's tests: accounts with a balance and a frozen part, moved
 * by TCC (freeze, then settle or unfreeze) and by saga steps (debit / credit, each the other's
 * compensation). `failNext` makes the next calls of an action fail as an outage would.
 */
export const failNext = new Map<string, number>();

function maybeFail(name: string): void {
  const left = failNext.get(name) ?? 0;
  if (left > 0) {
    failNext.set(name, left - 1);
    throw new AppError(503, "BANK_UNAVAILABLE", `${name} is down (injected)`);
  }
}

interface BankTables {
  accounts: { id: string; balance: number; frozen: number };
}

const move = z.object({ account: z.string(), amount: z.number().int().positive() });

export function bankService(platform: Platform): ServiceSchema {
  const host = platform.host<BankTables>("bank", {
    "0001_bank": {
      async up(db) {
        await db.schema
          .createTable("accounts")
          .addColumn("id", "varchar(64)", (c) => c.primaryKey())
          .addColumn("balance", "bigint", (c) => c.notNull())
          .addColumn("frozen", "bigint", (c) => c.notNull())
          .execute();
      },
    },
  });
  const account = async (trx: Parameters<Parameters<typeof host.tx>[0]>[0], id: string) => {
    const row = await host.store.forUpdate(trx.selectFrom("accounts").selectAll().where("id", "=", id)).executeTakeFirst();
    if (!row) throw new AppError(404, "ACCOUNT_NOT_FOUND", `no account ${id}`);
    return { balance: Number(row.balance), frozen: Number(row.frozen) };
  };
  const branch = (name: string, work: (a: { balance: number; frozen: number }, amount: number) => { balance: number; frozen: number }) =>
    action(move, async (ctx: Ctx<z.infer<typeof move>>) => {
      maybeFail(name);
      const outcome = await host.branch(ctx.meta, async (trx) => {
        const next = work(await account(trx, ctx.params.account), ctx.params.amount);
        await trx.updateTable("accounts").set(next).where("id", "=", ctx.params.account).execute();
        return next;
      });
      return outcome.result ?? null;
    });
  const refuseOverdraft = (a: { balance: number; frozen: number }, amount: number) => {
    if (a.balance - a.frozen < amount) throw conflict("INSUFFICIENT_FUNDS", `available ${a.balance - a.frozen}, needed ${amount}`);
  };
  return {
    name: "bank",
    settings: {
      routes: [
        { method: "POST", path: "/api/test/bank/accounts", action: "bank.open", auth: "public" },
        { method: "GET", path: "/api/test/bank/accounts/:account", action: "bank.get", auth: "public" },
      ] satisfies RouteDef[],
    },
    actions: {
      open: action(z.object({ account: z.string(), balance: z.number().int().min(0) }), async (ctx) => {
        await host.db.insertInto("accounts").values({ id: ctx.params.account, balance: ctx.params.balance, frozen: 0 }).execute();
        return null;
      }),
      get: action(z.object({ account: z.string() }), async (ctx) => host.tx((trx) => account(trx, ctx.params.account))),
      freeze: branch("freeze", (a, n) => {
        refuseOverdraft(a, n);
        return { balance: a.balance, frozen: a.frozen + n };
      }),
      settle: branch("settle", (a, n) => ({ balance: a.balance - n, frozen: a.frozen - n })),
      unfreeze: branch("unfreeze", (a, n) => ({ balance: a.balance, frozen: a.frozen - n })),
      debit: branch("debit", (a, n) => {
        refuseOverdraft(a, n);
        return { balance: a.balance - n, frozen: a.frozen };
      }),
      credit: branch("credit", (a, n) => ({ balance: a.balance + n, frozen: a.frozen })),
    },
    async started() {
      await host.start();
    },
    async stopped() {
      await host.stop();
    },
  };
}

/**
 * A TCC initiator with local state of its own: an order that moves funds between two accounts,
 * written in the same local transaction that records its commit decision.
 */
interface ShopTables {
  orders: { id: string; state: string };
}

export function shopService(platform: Platform): ServiceSchema {
  const host = platform.host<ShopTables>("shop", {
    "0001_shop": {
      async up(db) {
        await db.schema.createTable("orders").addColumn("id", "varchar(160)", (c) => c.primaryKey()).addColumn("state", "varchar(16)", (c) => c.notNull()).execute();
      },
    },
  });
  const clock = platform.clock;
  return {
    name: "shop",
    settings: {
      routes: [
        { method: "POST", path: "/api/test/shop/pay", action: "shop.pay", auth: "public" },
        { method: "POST", path: "/api/test/shop/order", action: "shop.order", auth: "public" },
        { method: "POST", path: "/api/test/shop/transfer", action: "shop.transfer", auth: "public" },
        { method: "GET", path: "/api/test/shop/orders/:gid", action: "shop.getOrder", auth: "public" },
      ] satisfies RouteDef[],
    },
    actions: {
      /** Pays: freezes the amount, records the order and the commit locally, then commits at the coordinator. */
      pay: action(z.object({ gid: z.string(), from: z.string(), amount: z.number().int().positive() }), async (ctx) => {
        const { gid, from, amount } = ctx.params;
        const tx = txClient(ctx.broker, "shop", 5_000);
        try {
          await tx.tryBranch(gid, { action: "bank.freeze", confirm: "bank.settle", cancel: "bank.unfreeze", payload: { account: from, amount } });
        } catch (err) {
          await initiator.abandon(host, tx, gid, clock.now());
          throw err;
        }
        await host.tx(async (trx) => {
          await initiator.commit(trx, gid, clock.now());
          await trx.insertInto("orders").values({ id: gid, state: "PAID" }).execute();
        });
        await tx.commit(gid);
        return { gid };
      }),
      /** Commits locally without telling the coordinator: its query back must find the commit. */
      payThenVanish: action(z.object({ gid: z.string(), from: z.string(), amount: z.number().int().positive() }), async (ctx) => {
        const { gid, from, amount } = ctx.params;
        const tx = txClient(ctx.broker, "shop", 5_000);
        await tx.tryBranch(gid, { action: "bank.freeze", confirm: "bank.settle", cancel: "bank.unfreeze", payload: { account: from, amount } });
        await host.tx(async (trx) => {
          await initiator.commit(trx, gid, clock.now());
          await trx.insertInto("orders").values({ id: gid, state: "PAID" }).execute();
        });
        return { gid };
      }),
      /** Tries, then goes silent before deciding anything. */
      tryThenVanish: action(z.object({ gid: z.string(), from: z.string(), amount: z.number().int().positive() }), async (ctx) => {
        const { gid, from, amount } = ctx.params;
        const tx = txClient(ctx.broker, "shop", 5_000);
        await tx.tryBranch(gid, { action: "bank.freeze", confirm: "bank.settle", cancel: "bank.unfreeze", payload: { account: from, amount } });
        return { gid };
      }),
      /** A local change that hands a transfer saga to the coordinator through the outbox. */
      order: action(z.object({ gid: z.string(), from: z.string(), to: z.string(), amount: z.number().int().positive() }), async (ctx) => {
        const { gid, from, to, amount } = ctx.params;
        await host.tx(async (trx, emit) => {
          await trx.insertInto("orders").values({ id: gid, state: "PLACED" }).execute();
          submitSaga(emit, gid, [
            { action: "bank.debit", compensate: "bank.credit", payload: { account: from, amount } },
            { action: "bank.credit", compensate: "bank.debit", payload: { account: to, amount } },
          ]);
        });
        return { gid };
      }),
      /** A saga started by a direct call to the coordinator. */
      transfer: action(z.object({ gid: z.string(), from: z.string(), to: z.string(), amount: z.number().int().positive() }), async (ctx) => {
        const { gid, from, to, amount } = ctx.params;
        return txClient(ctx.broker, "shop").saga(gid, [
          { action: "bank.debit", compensate: "bank.credit", payload: { account: from, amount } },
          { action: "bank.credit", compensate: "bank.debit", payload: { account: to, amount } },
        ]);
      }),
      getOrder: action(z.object({ gid: z.string() }), async (ctx) => (await host.db.selectFrom("orders").selectAll().where("id", "=", ctx.params.gid).executeTakeFirst()) ?? null),
      txDecision: initiator.decisionAction(host, () => clock.now()),
    },
    async started() {
      await host.start();
    },
    async stopped() {
      await host.stop();
    },
  };
}
