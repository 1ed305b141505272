import type { Generated, Kysely, Migration } from "kysely";
import { withAutoId } from "../../../platform/db/db";

export interface PermissionTables {
  /** A tenant's own roles (the built-in ones are not stored): permissions as a JSON array. */
  roles: { tenant_id: string; name: string; permissions: string; created_at: number; updated_at: number };
  /** Custom roles given to members; they replace a STAFF member's membership role. */
  assignments: { tenant_id: string; user_id: number; role: string };
  /** Every permission change: who, what, when. */
  audit: { tenant_id: string; seq: Generated<number>; actor_id: number; action: string; subject: string; detail: string; at: number };
}

export const TENANT_TABLES = ["roles", "assignments", "audit"] as const;

export const permissionMigrations: Record<string, Migration> = {
  "0001_commerce_permission": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("roles")
        .addColumn("tenant_id", "varchar(40)", (c) => c.notNull())
        .addColumn("name", "varchar(40)", (c) => c.notNull())
        .addColumn("permissions", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("roles_pk", ["tenant_id", "name"])
        .execute();
      await db.schema
        .createTable("assignments")
        .addColumn("tenant_id", "varchar(40)", (c) => c.notNull())
        .addColumn("user_id", "bigint", (c) => c.notNull())
        .addColumn("role", "varchar(40)", (c) => c.notNull())
        .addPrimaryKeyConstraint("assignments_pk", ["tenant_id", "user_id", "role"])
        .execute();
      await withAutoId(db, db.schema.createTable("audit"), "seq")
        .addColumn("tenant_id", "varchar(40)", (c) => c.notNull())
        .addColumn("actor_id", "bigint", (c) => c.notNull())
        .addColumn("action", "varchar(40)", (c) => c.notNull())
        .addColumn("subject", "varchar(100)", (c) => c.notNull())
        .addColumn("detail", "text", (c) => c.notNull())
        .addColumn("at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("audit_tenant").on("audit").columns(["tenant_id", "seq"]).execute();
    },
  },
};
