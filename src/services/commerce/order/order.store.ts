import type { Kysely, Migration, Selectable } from "kysely";
import type { CancelReason, OrderStatus } from "./order.domain";

export interface OrderTables {
  /** A tenant's orders: reachable only through the tenant scope. */
  orders: {
    tenant_id: string;
    id: string;
    buyer_id: number;
    status: OrderStatus;
    items: string;
    total: number;
    address: string;
    reservation_id: string;
    pay_by: number;
    cancel_reason: CancelReason | null;
    payment_id: string | null;
    created_at: number;
    updated_at: number;
  };
  /** Orders per tenant per UTC day, for the tenant's quota. */
  day_counts: { tenant_id: string; day: number; orders: number };
  /** A buyer's orders across tenants, and the idempotency key each was placed with (not tenant data). */
  buyer_orders: { order_id: string; buyer_id: number; tenant_id: string; idem_key: string; request_hash: string; created_at: number };
}

export const TENANT_TABLES = ["orders", "day_counts"] as const;

export type OrderDb = Kysely<OrderTables>;
export type OrderRow = Selectable<OrderTables["orders"]>;

export const orderMigrations: Record<string, Migration> = {
  "0001_commerce_order": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("orders")
        .addColumn("tenant_id", "varchar(40)", (c) => c.notNull())
        .addColumn("id", "varchar(40)", (c) => c.notNull())
        .addColumn("buyer_id", "bigint", (c) => c.notNull())
        .addColumn("status", "varchar(20)", (c) => c.notNull())
        .addColumn("items", "text", (c) => c.notNull())
        .addColumn("total", "bigint", (c) => c.notNull())
        .addColumn("address", "text", (c) => c.notNull())
        .addColumn("reservation_id", "varchar(160)", (c) => c.notNull())
        .addColumn("pay_by", "bigint", (c) => c.notNull())
        .addColumn("cancel_reason", "varchar(20)")
        .addColumn("payment_id", "varchar(80)")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("orders_pk", ["tenant_id", "id"])
        .execute();
      await db.schema.createIndex("orders_status").on("orders").columns(["tenant_id", "status", "id"]).execute();
      await db.schema.createIndex("orders_due").on("orders").columns(["status", "pay_by"]).execute();
      await db.schema
        .createTable("day_counts")
        .addColumn("tenant_id", "varchar(40)", (c) => c.notNull())
        .addColumn("day", "integer", (c) => c.notNull())
        .addColumn("orders", "integer", (c) => c.notNull())
        .addPrimaryKeyConstraint("day_counts_pk", ["tenant_id", "day"])
        .execute();
      await db.schema
        .createTable("buyer_orders")
        .addColumn("order_id", "varchar(40)", (c) => c.primaryKey())
        .addColumn("buyer_id", "bigint", (c) => c.notNull())
        .addColumn("tenant_id", "varchar(40)", (c) => c.notNull())
        .addColumn("idem_key", "varchar(64)", (c) => c.notNull())
        .addColumn("request_hash", "varchar(64)", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addUniqueConstraint("buyer_orders_key", ["buyer_id", "idem_key"])
        .execute();
      await db.schema.createIndex("buyer_orders_buyer").on("buyer_orders").columns(["buyer_id", "order_id"]).execute();
    },
  },
};
