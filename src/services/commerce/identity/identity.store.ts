import type { Generated, Kysely, Migration, Selectable } from "kysely";
import { forUpdateOn, withAutoId } from "../../../platform/db/db";

export interface IdentityTables {
  users: {
    id: Generated<number>;
    username: string;
    password_hash: string;
    roles: string;
    created_at: number;
    last_active_at: number | null;
  };
  /** Sign-in sessions, one per device: the refresh token's hash (rotated on every use) and whether it was revoked. */
  sessions: {
    id: string;
    user_id: number;
    device: string;
    tenant: string | null;
    refresh_hash: string;
    created_at: number;
    last_used_at: number;
    expires_at: number;
    revoked_at: number | null;
    revoked_reason: string | null;
  };
}

export const identityMigrations: Record<string, Migration> = {
  "0001_users": {
    async up(db: Kysely<any>) {
      await withAutoId(db, db.schema.createTable("users"), "id")
        .addColumn("username", "varchar(32)", (c) => c.notNull().unique())
        .addColumn("password_hash", "varchar(255)", (c) => c.notNull())
        .addColumn("roles", "varchar(128)", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("last_active_at", "bigint")
        .execute();
    },
  },
};

export const sessionMigrations: Record<string, Migration> = {
  "0002_sessions": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("sessions")
        .addColumn("id", "varchar(40)", (c) => c.primaryKey())
        .addColumn("user_id", "bigint", (c) => c.notNull())
        .addColumn("device", "varchar(100)", (c) => c.notNull())
        .addColumn("tenant", "text")
        .addColumn("refresh_hash", "varchar(64)", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("last_used_at", "bigint", (c) => c.notNull())
        .addColumn("expires_at", "bigint", (c) => c.notNull())
        .addColumn("revoked_at", "bigint")
        .addColumn("revoked_reason", "varchar(32)")
        .execute();
      await db.schema.createIndex("sessions_user").on("sessions").columns(["user_id", "id"]).execute();
    },
  },
};

export type IdentityDb = Kysely<IdentityTables>;
export type UserRow = Selectable<IdentityTables["users"]>;

export function findByUsername(db: IdentityDb, username: string) {
  return db.selectFrom("users").selectAll().where("username", "=", username).executeTakeFirst();
}

export function findById(db: IdentityDb, id: number) {
  return db.selectFrom("users").selectAll().where("id", "=", id).executeTakeFirst();
}

/** The user, locked for a read-modify-write of their roles in the caller's transaction (a grant racing an admin's change keeps both). */
export function lockUser(db: IdentityDb, id: number) {
  return forUpdateOn(db, db.selectFrom("users").selectAll().where("id", "=", id)).executeTakeFirst();
}
