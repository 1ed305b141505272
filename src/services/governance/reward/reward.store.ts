import type { Generated, Kysely, Migration } from "kysely";
import { forUpdateOn, withAutoId } from "../../../platform/db/db";
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

/** The statements every grant and redemption runs, prepared once (see prepared.ts). */
const q = {
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
