import type { Kysely, Migration } from "kysely";
import { type AuditTable, createAuditTable } from "../../../platform/db/audit";

export interface PermissionTables {
  /** A tenant's own roles (the built-in ones are not stored): permissions as a JSON array. */
  roles: { tenant_id: string; name: string; permissions: string; created_at: number; updated_at: number };
  /** Custom roles given to members; they replace a STAFF member's membership role. */
  assignments: { tenant_id: string; user_id: number; role: string };
  /** Every permission change: who, what, when. */
  audit: AuditTable & { tenant_id: string };
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
      await createAuditTable(db, true);
    },
  },
};
