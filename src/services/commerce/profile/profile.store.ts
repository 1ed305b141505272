import type { Kysely, Migration } from "kysely";
import { dropIndex } from "../../../platform/db/db";

export interface ProfileTables {
  /** One row per platform user (not tenant data: buyers and reviewers belong to the platform). */
  profiles: {
    user_id: number;
    account_created_at: number | null;
    last_active_at: number | null;
    orders_placed: number;
    orders_paid: number;
    orders_completed: number;
    spent: number;
    violations_upheld: number;
    last_violation_at: number | null;
    /** Bumped on every change of what `commerce.profile.changed` carries, so readers drop stale copies. */
    version: number;
    updated_at: number;
  };
  /** Cases decided against a user's content; an appeal that overturns one sets `active` to 0. */
  violations: { case_id: string; user_id: number; at: number; active: number };
}

export const profileMigrations: Record<string, Migration> = {
  "0001_commerce_profile": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("profiles")
        .addColumn("user_id", "bigint", (c) => c.primaryKey())
        .addColumn("account_created_at", "bigint")
        .addColumn("last_active_at", "bigint")
        .addColumn("orders_placed", "integer", (c) => c.notNull())
        .addColumn("orders_paid", "integer", (c) => c.notNull())
        .addColumn("orders_completed", "integer", (c) => c.notNull())
        .addColumn("spent", "bigint", (c) => c.notNull())
        .addColumn("violations_upheld", "integer", (c) => c.notNull())
        .addColumn("last_violation_at", "bigint")
        .addColumn("version", "integer", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema
        .createTable("violations")
        .addColumn("case_id", "varchar(40)", (c) => c.primaryKey())
        .addColumn("user_id", "bigint", (c) => c.notNull())
        .addColumn("at", "bigint", (c) => c.notNull())
        .addColumn("active", "integer", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("violations_user").on("violations").columns(["user_id", "active"]).execute();
    },
  },
  /** A user's standing violations counted, and the latest found, from the index alone. */
  "0002_commerce_profile_standing": {
    async up(db: Kysely<any>) {
      await dropIndex(db, "violations_user", "violations");
      await db.schema.createIndex("violations_standing").on("violations").columns(["user_id", "active", "at"]).execute();
    },
  },
};
