import type { ServiceSchema } from "moleculer";
import { writeAudit } from "../../../platform/db/audit";
import { isUniqueViolation } from "../../../platform/db/db";
import { routesWithSchemas } from "../../../platform/gateway/routes";
import { action, requireIdempotencyKey, requireRole, requireUser } from "../../../platform/runtime/action";
import { AppError, badRequest, conflict, notFound } from "../../../platform/runtime/errors";
import type { Platform } from "../../../platform/runtime/platform";
import { branchCallOf } from "../../../platform/tx/barrier";
import { answerSoleTries } from "../../../platform/tx/tx.client";
import { AccountContract as C, accountRoutes, type BalanceView } from "./account.contract";
import {
  adjustment,
  applyEach,
  applyIndependently,
  balanceKey,
  type Bucket,
  type Entry,
  deposit,
  freeze,
  fromUnits,
  isRefusal,
  type Journal,
  type Refusal,
  ledgerSums,
  settlement,
  toUnits,
  unfreeze,
  userAccount,
  withdrawal,
} from "./account.domain";
import { type AccountDb, accountMigrations, type AccountTables } from "./account.store";

/**
 * Exchange accounts (ucenter): assets with their precision, and every user's balances as a
 * double-entry ledger — each movement a journal whose entries add up to zero, applied once by its
 * ref. Operators credit and debit against the equity account (audited); order entry freezes and
 * unfreezes, and trades settle from both sides' frozen funds with fees to the fee account.
 */
export function accountService(platform: Platform): ServiceSchema {
  const host = platform.host<AccountTables>("account", accountMigrations);
  const { clock } = platform;

  async function decimalsOf(db: AccountDb, code: string): Promise<number> {
    const a = await db.selectFrom("assets").select("decimals").where("code", "=", code).executeTakeFirst();
    if (!a) throw notFound("ASSET_NOT_FOUND", `no asset ${code}`);
    return Number(a.decimals);
  }

  /** The ledger's statements: a journal list posts in the same few, whatever its length. */
  const q = {
    applied: host.prepare((db, $: { refs: string[] }) => db.selectFrom("journals").select("ref").where("ref", "in", $.refs)),
    balances: host.prepare((db, $: { accounts: string[] }) =>
      host.store.forUpdate(db.selectFrom("balances").select(["account", "asset", "bucket", "amount"]).where("account", "in", $.accounts)),
    ),
    addJournals: host.prepare((db, $: { rows: { ref: string; kind: Journal["kind"]; at: number }[] }) => db.insertInto("journals").values($.rows.map((r) => ({ ref: r.ref, kind: r.kind, at: r.at })))),
    addEntries: host.prepare((db, $: { rows: { ref: string; account: string; asset: string; bucket: Bucket; amount: string }[] }) =>
      db.insertInto("entries").values($.rows.map((r) => ({ ref: r.ref, account: r.account, asset: r.asset, bucket: r.bucket, amount: r.amount }))),
    ),
    setBalances: host.prepare((db, $: { rows: { account: string; asset: string; bucket: Bucket; amount: string; now: number }[] }) =>
      host.store.upsert(
        db.insertInto("balances").values($.rows.map((r) => ({ account: r.account, asset: r.asset, bucket: r.bucket, amount: r.amount, updated_at: r.now }))),
        ["account", "asset", "bucket"],
        ["amount", "updated_at"],
      ),
    ),
  };

  /**
   * Applies journals, each once: a ref seen before (or earlier in the list) changes nothing. Set-based
   * — one read of the journals, one of the balances, one write each of journals, entries and balances
   * for the whole list — because the trading service posts a whole batch of trades at once. All apply
   * or none (the first that cannot is refused with its reason). Answers how many applied.
   */
  async function post(db: AccountDb, journals: readonly Journal[]): Promise<number> {
    return (await postJournals(db, journals, false)).applied;
  }

  /**
   * `post`, but each journal on its own: one that cannot apply is left out and named with its reason,
   * the others apply (a batch of order freezes, one of them short of funds).
   */
  function postEach(db: AccountDb, journals: readonly Journal[]): Promise<{ applied: number; refused: ReadonlyMap<string, Refusal> }> {
    return postJournals(db, journals, true);
  }

  async function postJournals(db: AccountDb, journals: readonly Journal[], independently: boolean): Promise<{ applied: number; refused: ReadonlyMap<string, Refusal> }> {
    const now = clock.now();
    const seen = new Set<string>();
    for (const r of await q.applied.all(db, { refs: journals.map((j) => j.ref) })) seen.add(r.ref);
    const fresh: Journal[] = [];
    for (const j of journals) {
      if (seen.has(j.ref)) continue;
      seen.add(j.ref);
      fresh.push(j);
    }
    if (fresh.length === 0) return { applied: 0, refused: new Map() };
    const accounts = [...new Set(fresh.flatMap((j) => j.entries.map((e) => e.account)))].sort();
    // Every balance of the accounts involved, locked (in key order, so posters cannot deadlock).
    const lockBalances = async () => new Map((await q.balances.all(db, { accounts })).map((r) => [balanceKey(r.account, r.asset, r.bucket), BigInt(r.amount)]));
    let current = await lockBalances();
    const missing = new Map<string, Entry>();
    for (const j of fresh)
      for (const e of j.entries) {
        const key = balanceKey(e.account, e.asset, e.bucket);
        if (!current.has(key)) missing.set(key, e);
      }
    if (missing.size > 0) {
      // A balance seen for the first time exists (at zero) before it is read and locked: a poster racing
      // to create the same one waits for ours, and reads it again, rather than overwriting it.
      const zero = [...missing.values()].map((e) => ({ account: e.account, asset: e.asset, bucket: e.bucket, amount: "0", updated_at: now }));
      await host.store.insertIfAbsent(db.insertInto("balances").values(zero));
      current = await lockBalances();
    }
    let next: Map<string, bigint>;
    let refused: ReadonlyMap<string, Refusal> = new Map();
    if (independently) ({ balances: next, refused } = applyIndependently(current, fresh));
    else {
      const all = applyEach(current, fresh);
      if (isRefusal(all)) throw new AppError(all.journal.kind === "ADJUST" || all.journal.kind === "FREEZE" ? 409 : 500, all.code, all.message);
      next = all;
    }
    const applied = refused.size === 0 ? fresh : fresh.filter((j) => !refused.has(j.ref));
    if (applied.length === 0) return { applied: 0, refused };
    await q.addJournals.run(db, { rows: applied.map((j) => ({ ref: j.ref, kind: j.kind, at: now })) });
    await q.addEntries.run(db, { rows: applied.flatMap((j) => j.entries.map((e) => ({ ref: j.ref, account: e.account, asset: e.asset, bucket: e.bucket, amount: e.amount.toString() }))) });
    const changed = [...next].filter(([key, amount]) => current.get(key) !== amount);
    const rows = changed.map(([key, amount]) => {
      const [account, asset, bucket] = key.split("|") as [string, string, Bucket];
      return { account, asset, bucket, amount: amount.toString(), now };
    });
    if (rows.length > 0) await q.setBalances.run(db, { rows });
    return { applied: applied.length, refused };
  }

  /** Runs `post` in its own transaction; a same-ref race ends with the journal applied once. */
  async function postOnce(j: Journal): Promise<{ applied: boolean }> {
    try {
      return { applied: (await host.tx((trx) => post(trx, [j]))) > 0 };
    } catch (err) {
      if (isUniqueViolation(err)) return { applied: false };
      throw err;
    }
  }

  return {
    name: "account",
    settings: { routes: routesWithSchemas(accountRoutes, C) },
    actions: {
      createAsset: action(C.createAsset, async (ctx) => {
        requireRole(ctx, "operator");
        const { code, decimals } = ctx.params;
        try {
          await host.db.insertInto("assets").values({ code, decimals, created_at: clock.now() }).execute();
        } catch (err) {
          if (isUniqueViolation(err)) throw conflict("ASSET_EXISTS", `asset ${code} exists`, "code");
          throw err;
        }
        return { code, decimals };
      }),

      listAssets: action(C.listAssets, async () => (await host.db.selectFrom("assets").selectAll().orderBy("code").execute()).map((a) => ({ code: a.code, decimals: Number(a.decimals) }))),

      adjust: action(C.adjust, async (ctx) => {
        const operator = requireRole(ctx, "operator");
        const key = requireIdempotencyKey(ctx);
        const { userId, asset, amount, reason } = ctx.params;
        const decimals = await decimalsOf(host.db, asset);
        const units = toUnits(amount, decimals);
        if (units === null || units === 0n) throw badRequest("INVALID_AMOUNT", `amount must be a non-zero number with at most ${decimals} decimals`, "amount");
        const ref = `adjust:${key}`;
        const applied = await host.tx(async (trx) => {
          const done = (await post(trx, [adjustment(ref, userId, asset, units)])) > 0;
          if (done) await writeAudit(trx, { actorId: operator.id, action: "adjust", subject: `user:${userId}`, detail: { asset, amount, reason, ref }, at: clock.now() });
          return done;
        });
        return { ref, applied, userId, asset, amount: fromUnits(units, decimals) };
      }),

      balances: action(C.balances, async (ctx): Promise<BalanceView[]> => {
        const user = requireUser(ctx);
        const [rows, assets] = await Promise.all([
          host.db.selectFrom("balances").selectAll().where("account", "=", userAccount(user.id)).execute(),
          host.db.selectFrom("assets").selectAll().execute(),
        ]);
        const decimals = new Map(assets.map((a) => [a.code, Number(a.decimals)]));
        const byAsset = new Map<string, { available: bigint; frozen: bigint }>();
        for (const r of rows) {
          const b = byAsset.get(r.asset) ?? { available: 0n, frozen: 0n };
          b[r.bucket] = BigInt(r.amount);
          byAsset.set(r.asset, b);
        }
        return [...byAsset]
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([asset, b]) => ({ asset, available: fromUnits(b.available, decimals.get(asset) ?? 0), frozen: fromUnits(b.frozen, decimals.get(asset) ?? 0) }));
      }),

      unfreeze: action(C.unfreeze, (ctx) => postOnce(unfreeze(ctx.params.ref, ctx.params.userId, ctx.params.asset, BigInt(ctx.params.amount)))),
      postAll: action(C.postAll, async (ctx) => {
        const journals = ctx.params.journals.map((j) =>
          j.kind === "settle" ? settlement({ ...j, quantity: BigInt(j.quantity), notional: BigInt(j.notional) }) : unfreeze(j.ref, j.userId, j.asset, BigInt(j.amount)),
        );
        try {
          const applied = await host.tx((trx) => post(trx, journals));
          return { applied };
        } catch (err) {
          // The same ref posted by someone else meanwhile: one by one, each once.
          if (!isUniqueViolation(err)) throw err;
          let applied = 0;
          for (const j of journals) if ((await postOnce(j)).applied) applied++;
          return { applied };
        }
      }),

      credit: action(C.credit, (ctx) => postOnce(deposit(ctx.params.ref, ctx.params.userId, ctx.params.asset, BigInt(ctx.params.amount)))),
      payOut: action(C.payOut, (ctx) => postOnce(withdrawal(ctx.params.ref, ctx.params.userId, ctx.params.asset, BigInt(ctx.params.amount)))),

      tryFreeze: action(C.tryFreeze, async (ctx) => {
        const { userId, asset, amount } = ctx.params;
        const call = branchCallOf(ctx.meta);
        // Nothing kept for a repeat to answer (it answers the same): the barrier row alone, one write fewer.
        await host.branch(ctx.meta, async (trx) => {
          await post(trx, [freeze(`freeze:${call.gid}`, userId, asset, BigInt(amount))]);
        });
        return { frozen: amount };
      }),
      /** Order entry's freezes of one turn: each as `tryFreeze` would answer it, all in one transaction. */
      tryFreezeAll: action(C.tryFreezeAll, (ctx) =>
        answerSoleTries(host, ctx.params.tries, () => clock.now(), async (trx, fresh) => {
          const { refused } = await postEach(trx, fresh.map((t) => freeze(`freeze:${t.gid}`, t.userId, t.asset, BigInt(t.amount))));
          return fresh.map((t) => {
            const r = refused.get(`freeze:${t.gid}`);
            return r && new AppError(409, r.code, r.message);
          });
        }),
      ),
      confirmFreeze: action(C.confirmFreeze, async (ctx) => {
        await host.branch(ctx.meta, async () => undefined);
        return { kept: true };
      }),
      cancelFreeze: action(C.cancelFreeze, async (ctx) => {
        const { userId, asset, amount } = ctx.params;
        const call = branchCallOf(ctx.meta);
        await host.branch(ctx.meta, async (trx) => {
          // Only what the try froze goes back: nothing after an empty compensation.
          if (await q.applied.first(trx, { refs: [`freeze:${call.gid}`] }))
            await post(trx, [unfreeze(`unfreeze:${call.gid}`, userId, asset, BigInt(amount))]);
        });
        return { released: true };
      }),

      auditLedger: action(C.auditLedger, async (ctx) => {
        requireRole(ctx, "operator");
        const rows = await host.db.selectFrom("balances").selectAll().execute();
        const sums = ledgerSums(rows.map((r) => [balanceKey(r.account, r.asset, r.bucket), BigInt(r.amount)] as [string, bigint]));
        // The journals too: every one must balance on its own, whatever the balances say.
        const entries = await host.db.selectFrom("entries").select(["ref", "asset", "amount"]).execute();
        const perJournal = new Map<string, bigint>();
        for (const e of entries) perJournal.set(`${e.ref}|${e.asset}`, (perJournal.get(`${e.ref}|${e.asset}`) ?? 0n) + BigInt(e.amount));
        const unbalanced = [...perJournal].filter(([, s]) => s !== 0n).map(([k]) => k.split("|")[0]);
        const assets = [...sums].sort(([a], [b]) => a.localeCompare(b)).map(([asset, sum]) => ({ asset, sum: sum.toString(), ok: sum === 0n }));
        return { ok: assets.every((a) => a.ok) && unbalanced.length === 0, assets, journals: perJournal.size, unbalancedJournals: [...new Set(unbalanced)] };
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
