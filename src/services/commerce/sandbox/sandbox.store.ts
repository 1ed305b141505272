import type { Kysely, Migration, Selectable } from "kysely";
import type { CheckoutStatus } from "./sandbox.domain";

/** The provider's own books: checkouts, and the notifications it owes merchants. */
export interface SandboxTables {
  checkouts: { payment_id: string; provider_tx_id: string; amount: number; notify_url: string; status: CheckoutStatus; sequence: number; created_at: number; updated_at: number };
  notifications: { id: string; payment_id: string; body: string; attempts: number; next_attempt_at: number; delivered_at: number | null; last_error: string | null };
  /** Money that moved, as the daily statement lists it: a capture or a refund per checkout. */
  statement_lines: { provider_tx_id: string; kind: "PAYMENT" | "REFUND"; payment_id: string; amount: number; at: number };
}

export type CheckoutRow = Selectable<SandboxTables["checkouts"]>;

export const sandboxMigrations: Record<string, Migration> = {
  "0001_commerce_sandbox": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("checkouts")
        .addColumn("payment_id", "varchar(80)", (c) => c.primaryKey())
        .addColumn("provider_tx_id", "varchar(80)", (c) => c.notNull().unique())
        .addColumn("amount", "bigint", (c) => c.notNull())
        .addColumn("notify_url", "varchar(500)", (c) => c.notNull())
        .addColumn("status", "varchar(16)", (c) => c.notNull())
        .addColumn("sequence", "integer", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema
        .createTable("notifications")
        .addColumn("id", "varchar(80)", (c) => c.primaryKey())
        .addColumn("payment_id", "varchar(80)", (c) => c.notNull())
        .addColumn("body", "text", (c) => c.notNull())
        .addColumn("attempts", "integer", (c) => c.notNull())
        .addColumn("next_attempt_at", "bigint", (c) => c.notNull())
        .addColumn("delivered_at", "bigint")
        .addColumn("last_error", "text")
        .execute();
      await db.schema.createIndex("notifications_due").on("notifications").columns(["delivered_at", "next_attempt_at"]).execute();
    },
  },
  "0002_sandbox_statement": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("statement_lines")
        .addColumn("provider_tx_id", "varchar(80)", (c) => c.notNull())
        .addColumn("kind", "varchar(8)", (c) => c.notNull())
        .addColumn("payment_id", "varchar(80)", (c) => c.notNull())
        .addColumn("amount", "bigint", (c) => c.notNull())
        .addColumn("at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("statement_lines_pk", ["provider_tx_id", "kind"])
        .execute();
      await db.schema.createIndex("statement_lines_at").on("statement_lines").column("at").execute();
    },
  },
};
