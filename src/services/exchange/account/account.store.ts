import type { Generated, Kysely, Migration } from "kysely";
import { type AuditTable, createAuditTable } from "../../../platform/db/audit";
import { withAutoId } from "../../../platform/db/db";
import type { Bucket, Journal } from "./account.domain";

/** Amounts are bigint base units, stored as decimal strings: 18-decimal assets overflow 64-bit integers. */
export interface AccountTables {
  assets: { code: string; decimals: number; created_at: number };
  balances: { account: string; asset: string; bucket: Bucket; amount: string; updated_at: number };
  /** One row per applied journal: its ref makes every command and trade apply once. */
  journals: { ref: string; kind: Journal["kind"]; at: number };
  entries: { id: Generated<number>; ref: string; account: string; asset: string; bucket: Bucket; amount: string };
  /** Operators' manual adjustments, with their reason. */
  audit: AuditTable;
}

export type AccountDb = Kysely<AccountTables>;

export const accountMigrations: Record<string, Migration> = {
  "0001_exchange_account": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("assets")
        .addColumn("code", "varchar(16)", (c) => c.primaryKey())
        .addColumn("decimals", "integer", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema
        .createTable("balances")
        .addColumn("account", "varchar(40)", (c) => c.notNull())
        .addColumn("asset", "varchar(16)", (c) => c.notNull())
        .addColumn("bucket", "varchar(10)", (c) => c.notNull())
        .addColumn("amount", "varchar(48)", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("balances_pk", ["account", "asset", "bucket"])
        .execute();
      await db.schema
        .createTable("journals")
        .addColumn("ref", "varchar(160)", (c) => c.primaryKey())
        .addColumn("kind", "varchar(10)", (c) => c.notNull())
        .addColumn("at", "bigint", (c) => c.notNull())
        .execute();
      await withAutoId(db, db.schema.createTable("entries"), "id")
        .addColumn("ref", "varchar(160)", (c) => c.notNull())
        .addColumn("account", "varchar(40)", (c) => c.notNull())
        .addColumn("asset", "varchar(16)", (c) => c.notNull())
        .addColumn("bucket", "varchar(10)", (c) => c.notNull())
        .addColumn("amount", "varchar(48)", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("entries_ref").on("entries").column("ref").execute();
      await createAuditTable(db, false);
    },
  },
};
