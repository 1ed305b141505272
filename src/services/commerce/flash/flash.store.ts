import type { Kysely, Migration, Selectable } from "kysely";
import type { AttemptStatus } from "./flash.domain";

export interface FlashTables {
  /** Campaign id → its tenant, so a campaign or attempt named by id alone is found in its tenant's scope. */
  campaign_index: { id: string; tenant_id: string };
  campaigns: {
    tenant_id: string;
    id: string;
    sku: string;
    price: number;
    stock: number;
    starts_at: number;
    ends_at: number;
    per_user_limit: number;
    /** The inventory warehouse holding the campaign's allocation. */
    warehouse: string;
    /** Units in orders that still stand: the database's count, the authority at settle time. */
    taken: number;
    idem_key: string | null;
    created_by: number;
    created_at: number;
    updated_at: number;
  };
  /** Attempts that reached the order pipeline, with their outcome. */
  attempts: {
    tenant_id: string;
    id: string;
    campaign_id: string;
    user_id: number;
    quantity: number;
    status: AttemptStatus;
    order_id: string | null;
    reason: string | null;
    /** 1 once the attempt's order was cancelled and its units went back to the campaign. */
    returned: number;
    created_at: number;
    updated_at: number;
  };
}

export const TENANT_TABLES = ["campaigns", "attempts"] as const;

export type FlashDb = Kysely<FlashTables>;
export type CampaignRow = Selectable<FlashTables["campaigns"]>;
export type AttemptRow = Selectable<FlashTables["attempts"]>;

export const flashMigrations: Record<string, Migration> = {
  "0001_commerce_flash": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("campaign_index")
        .addColumn("id", "varchar(40)", (c) => c.primaryKey())
        .addColumn("tenant_id", "varchar(40)", (c) => c.notNull())
        .execute();
      await db.schema
        .createTable("campaigns")
        .addColumn("tenant_id", "varchar(40)", (c) => c.notNull())
        .addColumn("id", "varchar(40)", (c) => c.notNull())
        .addColumn("sku", "varchar(64)", (c) => c.notNull())
        .addColumn("price", "bigint", (c) => c.notNull())
        .addColumn("stock", "bigint", (c) => c.notNull())
        .addColumn("starts_at", "bigint", (c) => c.notNull())
        .addColumn("ends_at", "bigint", (c) => c.notNull())
        .addColumn("per_user_limit", "integer", (c) => c.notNull())
        .addColumn("warehouse", "varchar(32)", (c) => c.notNull())
        .addColumn("taken", "bigint", (c) => c.notNull())
        .addColumn("idem_key", "varchar(64)")
        .addColumn("created_by", "bigint", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("campaigns_pk", ["tenant_id", "id"])
        .addUniqueConstraint("campaigns_key", ["tenant_id", "idem_key"])
        .execute();
      await db.schema.createIndex("campaigns_ends").on("campaigns").columns(["ends_at"]).execute();
      await db.schema
        .createTable("attempts")
        .addColumn("tenant_id", "varchar(40)", (c) => c.notNull())
        .addColumn("id", "varchar(80)", (c) => c.notNull())
        .addColumn("campaign_id", "varchar(40)", (c) => c.notNull())
        .addColumn("user_id", "bigint", (c) => c.notNull())
        .addColumn("quantity", "integer", (c) => c.notNull())
        .addColumn("status", "varchar(16)", (c) => c.notNull())
        .addColumn("order_id", "varchar(40)")
        .addColumn("reason", "varchar(200)")
        .addColumn("returned", "integer", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("attempts_pk", ["tenant_id", "id"])
        .execute();
      await db.schema.createIndex("attempts_buyer").on("attempts").columns(["tenant_id", "campaign_id", "user_id"]).execute();
      await db.schema.createIndex("attempts_order").on("attempts").columns(["tenant_id", "order_id"]).execute();
    },
  },
};
