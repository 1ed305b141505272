import type { Generated, Kysely, Migration, Selectable } from "kysely";
import { withAutoId } from "../../../platform/db/db";
import type { MovementKind, ReservationStatus } from "./inventory.domain";

/** Every table is a tenant's: reachable only through the tenant scope. */
export interface InventoryTables {
  products: { tenant_id: string; sku: string; name: string; price: number; created_at: number; updated_at: number };
  stock: { tenant_id: string; sku: string; warehouse: string; on_hand: number; reserved: number; updated_at: number };
  reservations: { tenant_id: string; id: string; items: string; status: ReservationStatus; expires_at: number; created_at: number; updated_at: number };
  /** The full history: every change of every level, with what caused it. */
  movements: {
    id: Generated<number>;
    tenant_id: string;
    sku: string;
    warehouse: string;
    kind: MovementKind;
    quantity: number;
    on_hand_after: number;
    reserved_after: number;
    ref: string;
    at: number;
  };
}

export const TENANT_TABLES = ["products", "stock", "reservations", "movements"] as const;

export type InventoryDb = Kysely<InventoryTables>;
export type ReservationRow = Selectable<InventoryTables["reservations"]>;

export const inventoryMigrations: Record<string, Migration> = {
  "0001_commerce_inventory": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("products")
        .addColumn("tenant_id", "varchar(40)", (c) => c.notNull())
        .addColumn("sku", "varchar(64)", (c) => c.notNull())
        .addColumn("name", "varchar(200)", (c) => c.notNull())
        .addColumn("price", "bigint", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("products_pk", ["tenant_id", "sku"])
        .execute();
      await db.schema
        .createTable("stock")
        .addColumn("tenant_id", "varchar(40)", (c) => c.notNull())
        .addColumn("sku", "varchar(64)", (c) => c.notNull())
        .addColumn("warehouse", "varchar(32)", (c) => c.notNull())
        .addColumn("on_hand", "bigint", (c) => c.notNull())
        .addColumn("reserved", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("stock_pk", ["tenant_id", "sku", "warehouse"])
        .execute();
      await db.schema
        .createTable("reservations")
        .addColumn("tenant_id", "varchar(40)", (c) => c.notNull())
        .addColumn("id", "varchar(160)", (c) => c.notNull())
        .addColumn("items", "text", (c) => c.notNull())
        .addColumn("status", "varchar(16)", (c) => c.notNull())
        .addColumn("expires_at", "bigint", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("reservations_pk", ["tenant_id", "id"])
        .execute();
      await db.schema.createIndex("reservations_expiry").on("reservations").columns(["status", "expires_at"]).execute();
      await withAutoId(db, db.schema.createTable("movements"), "id")
        .addColumn("tenant_id", "varchar(40)", (c) => c.notNull())
        .addColumn("sku", "varchar(64)", (c) => c.notNull())
        .addColumn("warehouse", "varchar(32)", (c) => c.notNull())
        .addColumn("kind", "varchar(16)", (c) => c.notNull())
        .addColumn("quantity", "bigint", (c) => c.notNull())
        .addColumn("on_hand_after", "bigint", (c) => c.notNull())
        .addColumn("reserved_after", "bigint", (c) => c.notNull())
        .addColumn("ref", "varchar(200)", (c) => c.notNull())
        .addColumn("at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("movements_sku").on("movements").columns(["tenant_id", "sku", "id"]).execute();
    },
  },
  // An allocation's cancel finds what its try moved by the movements' ref.
  "0002_movements_ref": {
    async up(db: Kysely<any>) {
      await db.schema.createIndex("movements_ref").on("movements").columns(["tenant_id", "ref"]).execute();
    },
  },
};
