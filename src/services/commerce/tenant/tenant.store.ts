import type { Kysely, Migration, Selectable } from "kysely";
import type { MemberRole, TenantStatus } from "./tenant.domain";

export interface TenantTables {
  /** The registry of tenants: platform-level, not itself tenant-scoped. */
  tenants: { id: string; name: string; status: TenantStatus; quotas: string; created_by: number; created_at: number; updated_at: number };
  /** Who works for a tenant: a tenant table, reachable only through the tenant's scope. */
  members: { tenant_id: string; user_id: number; role: MemberRole; added_by: number; added_at: number };
}

/** Tables that carry tenant_id (see platform/db/tenant.ts). */
export const TENANT_TABLES = ["members"] as const;

export type TenantDb = Kysely<TenantTables>;
export type TenantRow = Selectable<TenantTables["tenants"]>;

export const tenantMigrations: Record<string, Migration> = {
  "0001_commerce_tenant": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("tenants")
        .addColumn("id", "varchar(40)", (c) => c.primaryKey())
        .addColumn("name", "varchar(100)", (c) => c.notNull())
        .addColumn("status", "varchar(16)", (c) => c.notNull())
        .addColumn("quotas", "text", (c) => c.notNull())
        .addColumn("created_by", "bigint", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema
        .createTable("members")
        .addColumn("tenant_id", "varchar(40)", (c) => c.notNull())
        .addColumn("user_id", "bigint", (c) => c.notNull())
        .addColumn("role", "varchar(16)", (c) => c.notNull())
        .addColumn("added_by", "bigint", (c) => c.notNull())
        .addColumn("added_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("members_pk", ["tenant_id", "user_id"])
        .execute();
      await db.schema.createIndex("members_user").on("members").columns(["user_id"]).execute();
    },
  },
};
