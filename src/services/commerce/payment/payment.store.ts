import type { Kysely, Migration, Selectable } from "kysely";
import type { PaymentStatus } from "./payment.domain";

export interface PaymentTables {
  payments: {
    id: string;
    order_id: string;
    tenant_id: string;
    buyer_id: number;
    amount: number;
    status: PaymentStatus;
    provider: string;
    provider_tx_id: string | null;
    pay_url: string | null;
    sequence: number;
    /** When the provider's success was applied, and when the refund went through: what reconciliation compares by day. */
    succeeded_at: number | null;
    refunded_at: number | null;
    created_at: number;
    updated_at: number;
  };
}

export type PaymentRow = Selectable<PaymentTables["payments"]>;

export const paymentMigrations: Record<string, Migration> = {
  "0001_commerce_payment": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("payments")
        .addColumn("id", "varchar(80)", (c) => c.primaryKey())
        .addColumn("order_id", "varchar(40)", (c) => c.notNull().unique())
        .addColumn("tenant_id", "varchar(40)", (c) => c.notNull())
        .addColumn("buyer_id", "bigint", (c) => c.notNull())
        .addColumn("amount", "bigint", (c) => c.notNull())
        .addColumn("status", "varchar(16)", (c) => c.notNull())
        .addColumn("provider", "varchar(32)", (c) => c.notNull())
        .addColumn("provider_tx_id", "varchar(80)")
        .addColumn("pay_url", "varchar(500)")
        .addColumn("sequence", "integer", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
    },
  },
  "0002_payment_settled_times": {
    async up(db: Kysely<any>) {
      await db.schema.alterTable("payments").addColumn("succeeded_at", "bigint").execute();
      await db.schema.alterTable("payments").addColumn("refunded_at", "bigint").execute();
      await db.schema.createIndex("payments_succeeded").on("payments").column("succeeded_at").execute();
      await db.schema.createIndex("payments_refunded").on("payments").column("refunded_at").execute();
      await db.schema.createIndex("payments_provider_tx").on("payments").column("provider_tx_id").execute();
    },
  },
};
