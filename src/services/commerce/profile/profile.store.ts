import type { Kysely, Migration, Selectable, Updateable } from "kysely";
import { dropIndex, forUpdateOn } from "../../../platform/db/db";
import { prepare } from "../../../platform/db/prepared";

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

type Db = Kysely<ProfileTables>;
export type ProfileRow = Selectable<ProfileTables["profiles"]>;

const profileLocked = prepare((db: Db, $: { userId: number }) => forUpdateOn(db, db.selectFrom("profiles").selectAll().where("user_id", "=", $.userId)));

/** A user's profile, locked for a read-modify-write in the caller's transaction. */
export function lockProfile(db: Db, userId: number) {
  return profileLocked.first(db, { userId });
}

const profileInsert = prepare((db: Db, $: { row: ProfileRow }) => db.insertInto("profiles").values($.row));

export function insertProfile(db: Db, row: ProfileRow) {
  return profileInsert.run(db, { row });
}

const profileUpdate = prepare((db: Db, $: { userId: number; changes: Updateable<ProfileTables["profiles"]> }) =>
  db.updateTable("profiles").set($.changes).where("user_id", "=", $.userId),
);

/** Sets columns of a profile; each set of columns is its own prepared statement. */
export function updateProfile(db: Db, userId: number, changes: Updateable<ProfileTables["profiles"]>) {
  return profileUpdate.run(db, { userId, changes });
}

const violationLocked = prepare((db: Db, $: { caseId: string }) => forUpdateOn(db, db.selectFrom("violations").select("active").where("case_id", "=", $.caseId)));
const violationInsert = prepare((db: Db, $: { caseId: string; userId: number; at: number }) =>
  db.insertInto("violations").values({ case_id: $.caseId, user_id: $.userId, at: $.at, active: 1 }),
);
const violationActive = prepare((db: Db, $: { caseId: string; active: number }) => db.updateTable("violations").set({ active: $.active }).where("case_id", "=", $.caseId));

/**
 * Makes the violation found in case `caseId` stand (recorded at `at` if it is new) or not; answers how
 * the user's count of standing violations moved (+1, -1 or 0), so the count never needs a recount.
 */
export async function setViolation(db: Db, caseId: string, userId: number, at: number, stands: boolean): Promise<number> {
  const found = await violationLocked.first(db, { caseId });
  if (!found) {
    if (!stands) return 0;
    await violationInsert.run(db, { caseId, userId, at });
    return 1;
  }
  if ((Number(found.active) === 1) === stands) return 0;
  await violationActive.run(db, { caseId, active: stands ? 1 : 0 });
  return stands ? 1 : -1;
}

const latestViolation = prepare((db: Db, $: { userId: number }) =>
  db.selectFrom("violations").select("at").where("user_id", "=", $.userId).where("active", "=", 1).orderBy("at", "desc").limit(1),
);

/** When the user's latest standing violation was found: one step down the (user_id, active, at) index. */
export async function lastViolationAt(db: Db, userId: number): Promise<number | null> {
  const row = await latestViolation.first(db, { userId });
  return row ? Number(row.at) : null;
}
