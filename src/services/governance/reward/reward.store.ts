import type { Generated, Insertable, Kysely, Migration } from "kysely";
import { forUpdateOn, skippingTaken, upsertOn, withAutoId } from "../../../platform/db/db";
import { prepare } from "../../../platform/db/prepared";

export interface RewardTables {
  accounts: { user_id: number; balance: number; updated_at: number };
  /** Every coin movement; `ref` makes each grant and each redemption happen once. */
  ledger: {
    id: Generated<number>;
    user_id: number;
    amount: number;
    kind: "GRANT" | "REDEEM";
    ref: string;
    balance_after: number;
    at: number;
  };
  items: { id: Generated<number>; name: string; price: number; stock: number; created_at: number };
  redemptions: {
    id: string;
    user_id: number;
    item_id: number;
    price: number;
    idem_key: string;
    balance_after: number;
    at: number;
  };
}

export type RewardDb = Kysely<RewardTables>;

export const rewardMigrations: Record<string, Migration> = {
  "0001_governance_reward": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("accounts")
        .addColumn("user_id", "bigint", (c) => c.primaryKey())
        .addColumn("balance", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
      await withAutoId(db, db.schema.createTable("ledger"), "id")
        .addColumn("user_id", "bigint", (c) => c.notNull())
        .addColumn("amount", "bigint", (c) => c.notNull())
        .addColumn("kind", "varchar(16)", (c) => c.notNull())
        .addColumn("ref", "varchar(128)", (c) => c.notNull().unique())
        .addColumn("balance_after", "bigint", (c) => c.notNull())
        .addColumn("at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("ledger_user").on("ledger").columns(["user_id", "id"]).execute();
      await withAutoId(db, db.schema.createTable("items"), "id")
        .addColumn("name", "varchar(100)", (c) => c.notNull())
        .addColumn("price", "bigint", (c) => c.notNull())
        .addColumn("stock", "bigint", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema
        .createTable("redemptions")
        .addColumn("id", "varchar(40)", (c) => c.primaryKey())
        .addColumn("user_id", "bigint", (c) => c.notNull())
        .addColumn("item_id", "bigint", (c) => c.notNull())
        .addColumn("price", "bigint", (c) => c.notNull())
        .addColumn("idem_key", "varchar(100)", (c) => c.notNull().unique())
        .addColumn("balance_after", "bigint", (c) => c.notNull())
        .addColumn("at", "bigint", (c) => c.notNull())
        .execute();
    },
  },
};

/**
 * Moves a user's balance by `amount` and writes the ledger row, in the caller's transaction. The
 * account row is locked (MySQL) or the writer is alone (SQLite), so the balance read is the one
 * updated. Returns the new balance, or null when a debit would overdraw.
 */
export async function moveCoins(
  db: RewardDb,
  userId: number,
  amount: number,
  kind: "GRANT" | "REDEEM",
  ref: string,
  now: number,
): Promise<number | null> {
  const account = await q.account.first(db, { userId });
  const balance = Number(account?.balance ?? 0) + amount;
  if (balance < 0) return null;
  if (account) await q.setBalance.run(db, { userId, balance, now });
  else await db.insertInto("accounts").values({ user_id: userId, balance, updated_at: now }).execute();
  await q.entry.run(db, { userId, amount, kind, ref, balance, now });
  return balance;
}

export interface Grant {
  userId: number;
  amount: number;
  ref: string;
}

/**
 * Credits every grant in the caller's transaction, in order, each with its ledger row — in three
 * statements whatever their number (a consumer's whole batch of verdicts): the accounts read (and
 * locked, in user order, on a server engine) at once, their new balances written at once, the
 * ledger rows inserted at once. An account seen for the first time is created at zero first, so a
 * concurrent grant to it waits for the lock rather than being overwritten.
 */
export async function grantCoins(db: RewardDb, grants: readonly Grant[], now: number): Promise<void> {
  if (grants.length === 0) return;
  const userIds = [...new Set(grants.map((g) => g.userId))].sort((a, b) => a - b);
  const read = async () => new Map((await q.accounts.all(db, { userIds })).map((a) => [Number(a.user_id), Number(a.balance)]));
  let balances = await read();
  if (balances.size < userIds.length) {
    await q.openAccounts.run(db, { userIds: userIds.filter((id) => !balances.has(id)), now });
    balances = await read();
  }
  const entries = grants.map((g) => {
    const balance = balances.get(g.userId)! + g.amount;
    balances.set(g.userId, balance);
    return { user_id: g.userId, amount: g.amount, kind: "GRANT" as const, ref: g.ref, balance_after: balance, at: now };
  });
  await q.setBalances.run(db, { rows: userIds.map((id) => ({ user_id: id, balance: balances.get(id)!, updated_at: now })) });
  await q.entries.run(db, { rows: entries });
}

/** The statements every grant and redemption runs, prepared once (see prepared.ts). */
const q = {
  accounts: prepare((db: RewardDb, $: { userIds: number[] }) => forUpdateOn(db, db.selectFrom("accounts").select(["user_id", "balance"]).where("user_id", "in", $.userIds).orderBy("user_id"))),
  openAccounts: prepare((db: RewardDb, $: { userIds: number[]; now: number }) =>
    skippingTaken(db, db.insertInto("accounts").values($.userIds.map((id) => ({ user_id: id, balance: 0, updated_at: $.now })))),
  ),
  setBalances: prepare((db: RewardDb, $: { rows: RewardTables["accounts"][] }) =>
    upsertOn(db, db.insertInto("accounts").values($.rows), ["user_id"], ["balance", "updated_at"]),
  ),
  entries: prepare((db: RewardDb, $: { rows: Insertable<RewardTables["ledger"]>[] }) => db.insertInto("ledger").values($.rows)),
  account: prepare((db: RewardDb, $: { userId: number }) => forUpdateOn(db, db.selectFrom("accounts").select("balance").where("user_id", "=", $.userId))),
  setBalance: prepare((db: RewardDb, $: { userId: number; balance: number; now: number }) => db.updateTable("accounts").set({ balance: $.balance, updated_at: $.now }).where("user_id", "=", $.userId)),
  entry: prepare((db: RewardDb, $: { userId: number; amount: number; kind: "GRANT" | "REDEEM"; ref: string; balance: number; now: number }) =>
    db.insertInto("ledger").values({ user_id: $.userId, amount: $.amount, kind: $.kind, ref: $.ref, balance_after: $.balance, at: $.now }),
  ),
  paid: prepare((db: RewardDb, $: { refs: string[] }) => db.selectFrom("ledger").select("ref").where("ref", "in", $.refs)),
};

/** Which of the refs the ledger already holds. */
export async function refsPaid(db: RewardDb, refs: string[]): Promise<Set<string>> {
  if (refs.length === 0) return new Set();
  return new Set((await q.paid.all(db, { refs })).map((l) => l.ref));
}
