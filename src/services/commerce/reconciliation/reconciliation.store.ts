import type { Kysely, Migration } from "kysely";
import type { DiscrepancyKind } from "./reconciliation.domain";

export interface ReconciliationTables {
  /** One report per UTC date, replaced whole by a re-run. */
  reports: { date: string; ran_at: number; statement_lines: number; payments: number; discrepancies: number };
  /** A report's findings; `tenant_id` is "" for a payment only the provider knows. */
  discrepancies: { tenant_id: string; date: string; seq: number; kind: DiscrepancyKind; ref: string; detail: string };
}

export const TENANT_TABLES = ["discrepancies"] as const;

export type ReconciliationDb = Kysely<ReconciliationTables>;

export const reconciliationMigrations: Record<string, Migration> = {
  "0001_commerce_reconciliation": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("reports")
        .addColumn("date", "varchar(10)", (c) => c.primaryKey())
        .addColumn("ran_at", "bigint", (c) => c.notNull())
        .addColumn("statement_lines", "integer", (c) => c.notNull())
        .addColumn("payments", "integer", (c) => c.notNull())
        .addColumn("discrepancies", "integer", (c) => c.notNull())
        .execute();
      await db.schema
        .createTable("discrepancies")
        .addColumn("tenant_id", "varchar(40)", (c) => c.notNull())
        .addColumn("date", "varchar(10)", (c) => c.notNull())
        .addColumn("seq", "integer", (c) => c.notNull())
        .addColumn("kind", "varchar(20)", (c) => c.notNull())
        .addColumn("ref", "varchar(200)", (c) => c.notNull())
        .addColumn("detail", "varchar(500)", (c) => c.notNull())
        .addPrimaryKeyConstraint("discrepancies_pk", ["date", "seq"])
        .execute();
      await db.schema.createIndex("discrepancies_tenant").on("discrepancies").columns(["tenant_id", "date"]).execute();
    },
  },
};
