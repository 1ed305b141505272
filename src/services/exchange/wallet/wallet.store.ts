import type { Generated, Kysely, Migration } from "kysely";
import { type AuditTable, createAuditTable } from "../../../platform/db/audit";
import { withAutoId } from "../../../platform/db/db";
import type { WithdrawalStatus } from "./wallet.domain";

export interface WalletTables {
  /** One deposit address per user: the HD index is the row id. */
  addresses: { id: Generated<number>; user_id: number; address: string; created_at: number };
  /** Blocks scanned, highest kept for reorg checks (a window of recent ones). */
  blocks: { number: number; hash: string };
  /** Transfers to our addresses: PENDING until confirmed, then CREDITED once to the account. */
  deposits: {
    id: string;
    user_id: number;
    asset: string;
    address: string;
    /** Chain units. */
    amount: string;
    tx_hash: string;
    block_number: number;
    block_hash: string;
    status: "PENDING" | "CREDITED";
    created_at: number;
    credited_at: number | null;
  };
  /**
   * One row per user, asset and day that withdrew: the row a withdrawal locks before it sums the day's
   * withdrawals, so two requests cannot both pass the daily limit — on engines whose locks do not
   * cover rows that do not exist yet (PostgreSQL has no gap locks), locking the day's withdrawals is not enough.
   */
  withdrawal_days: { user_id: number; asset: string; day: number };
  withdrawals: {
    id: Generated<number>;
    user_id: number;
    asset: string;
    address: string;
    /** Ledger units (the asset's decimals), frozen at entry. */
    amount: string;
    status: WithdrawalStatus;
    reason: string | null;
    idempotency_key: string;
    /** Set when signed: the transaction, recorded before it is broadcast, so a restart rebroadcasts the same one. */
    tx_hash: string | null;
    raw_tx: string | null;
    day: number;
    /** 1 once the ledger has it: paid out of the frozen funds, or the funds returned (or nothing was frozen). */
    settled: number;
    created_at: number;
    updated_at: number;
  };
  audit: AuditTable;
}

export type WalletDb = Kysely<WalletTables>;

export const walletMigrations: Record<string, Migration> = {
  "0001_exchange_wallet": {
    async up(db: Kysely<any>) {
      await withAutoId(db, db.schema.createTable("addresses"), "id")
        .addColumn("user_id", "bigint", (c) => c.notNull().unique())
        .addColumn("address", "varchar(42)", (c) => c.notNull().unique())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema
        .createTable("blocks")
        .addColumn("number", "bigint", (c) => c.primaryKey())
        .addColumn("hash", "varchar(66)", (c) => c.notNull())
        .execute();
      await db.schema
        .createTable("deposits")
        .addColumn("id", "varchar(80)", (c) => c.primaryKey())
        .addColumn("user_id", "bigint", (c) => c.notNull())
        .addColumn("asset", "varchar(16)", (c) => c.notNull())
        .addColumn("address", "varchar(42)", (c) => c.notNull())
        .addColumn("amount", "varchar(80)", (c) => c.notNull())
        .addColumn("tx_hash", "varchar(66)", (c) => c.notNull())
        .addColumn("block_number", "bigint", (c) => c.notNull())
        .addColumn("block_hash", "varchar(66)", (c) => c.notNull())
        .addColumn("status", "varchar(16)", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("credited_at", "bigint")
        .execute();
      await db.schema.createIndex("deposits_status").on("deposits").columns(["status", "block_number"]).execute();
      await db.schema.createIndex("deposits_user").on("deposits").columns(["user_id", "created_at"]).execute();
      await withAutoId(db, db.schema.createTable("withdrawals"), "id")
        .addColumn("user_id", "bigint", (c) => c.notNull())
        .addColumn("asset", "varchar(16)", (c) => c.notNull())
        .addColumn("address", "varchar(42)", (c) => c.notNull())
        .addColumn("amount", "varchar(80)", (c) => c.notNull())
        .addColumn("status", "varchar(20)", (c) => c.notNull())
        .addColumn("reason", "varchar(200)")
        .addColumn("idempotency_key", "varchar(64)", (c) => c.notNull())
        .addColumn("tx_hash", "varchar(66)")
        .addColumn("raw_tx", "text")
        .addColumn("day", "integer", (c) => c.notNull())
        .addColumn("settled", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .addUniqueConstraint("withdrawals_idempotency", ["user_id", "idempotency_key"])
        .execute();
      await db.schema.createIndex("withdrawals_status").on("withdrawals").columns(["status", "settled", "id"]).execute();
      await db.schema.createIndex("withdrawals_day").on("withdrawals").columns(["user_id", "asset", "day"]).execute();
      await createAuditTable(db, false);
    },
  },
  "0002_wallet_withdrawal_days": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("withdrawal_days")
        .addColumn("user_id", "bigint", (c) => c.notNull())
        .addColumn("asset", "varchar(16)", (c) => c.notNull())
        .addColumn("day", "integer", (c) => c.notNull())
        .addPrimaryKeyConstraint("withdrawal_days_pk", ["user_id", "asset", "day"])
        .execute();
    },
  },
};
