import type { Generated, Kysely, Migration, Selectable } from "kysely";
import { withAutoId } from "../../../platform/db/db";

export interface IdentityTables {
  users: {
    id: Generated<number>;
    username: string;
    password_hash: string;
    roles: string;
    created_at: number;
    last_active_at: number | null;
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

export type IdentityDb = Kysely<IdentityTables>;
export type UserRow = Selectable<IdentityTables["users"]>;

export function findByUsername(db: IdentityDb, username: string) {
  return db.selectFrom("users").selectAll().where("username", "=", username).executeTakeFirst();
}

export function findById(db: IdentityDb, id: number) {
  return db.selectFrom("users").selectAll().where("id", "=", id).executeTakeFirst();
}
