import type { Kysely, Migration, Selectable } from "kysely";
import { dialectOf, dropIndex, forUpdateOn } from "../../../platform/db/db";
import { prepare } from "../../../platform/db/prepared";
import type { Reviewer, ReviewerStatus } from "./reviewer.domain";

export interface ReviewerTables {
  reviewers: {
    user_id: number;
    status: ReviewerStatus;
    /** Random and unique: where the reviewer sits in the order draws walk the pool. */
    draw_key: number;
    enrolled_at: number;
    suspended_until: number | null;
    votes: number;
    coherent_votes: number;
    no_shows: number;
    consecutive_no_shows: number;
    open_cases: number;
    cases_today: number;
    day_key: number;
    last_assigned_at: number | null;
    updated_at: number;
  };
  /** Facts about every user, enrolled or not: a copy of what the profile service publishes. */
  profiles: {
    user_id: number;
    account_created_at: number | null;
    last_active_at: number | null;
    last_violation_at: number | null;
    /** The profile's version this copy holds: an older one arriving late is dropped. */
    version: number;
  };
  rules: { id: number; body: string; updated_at: number };
  /** The TCC branch barrier: one row per reservation id, whatever order try, confirm and cancel arrive in. */
  reservations: {
    id: string;
    case_id: string;
    status: "TRIED" | "CONFIRMED" | "CANCELLED";
    reviewers: string;
    seed: string;
    created_at: number;
    updated_at: number;
  };
}

export type ReviewerDb = Kysely<ReviewerTables>;
export type ReviewerRow = Selectable<ReviewerTables["reviewers"]>;

export const reviewerMigrations: Record<string, Migration> = {
  "0001_governance_reviewer": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("reviewers")
        .addColumn("user_id", "bigint", (c) => c.primaryKey())
        .addColumn("status", "varchar(16)", (c) => c.notNull())
        .addColumn("draw_key", "bigint", (c) => c.notNull().unique())
        .addColumn("enrolled_at", "bigint", (c) => c.notNull())
        .addColumn("suspended_until", "bigint")
        .addColumn("votes", "integer", (c) => c.notNull())
        .addColumn("coherent_votes", "integer", (c) => c.notNull())
        .addColumn("no_shows", "integer", (c) => c.notNull())
        .addColumn("consecutive_no_shows", "integer", (c) => c.notNull())
        .addColumn("open_cases", "integer", (c) => c.notNull())
        .addColumn("cases_today", "integer", (c) => c.notNull())
        .addColumn("day_key", "integer", (c) => c.notNull())
        .addColumn("last_assigned_at", "bigint")
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("reviewers_status").on("reviewers").columns(["status"]).execute();
      await db.schema
        .createTable("profiles")
        .addColumn("user_id", "bigint", (c) => c.primaryKey())
        .addColumn("account_created_at", "bigint")
        .addColumn("last_active_at", "bigint")
        .execute();
      await db.schema
        .createTable("rules")
        .addColumn("id", "integer", (c) => c.primaryKey())
        .addColumn("body", "text", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema
        .createTable("reservations")
        .addColumn("id", "varchar(64)", (c) => c.primaryKey())
        .addColumn("case_id", "varchar(40)", (c) => c.notNull())
        .addColumn("status", "varchar(16)", (c) => c.notNull())
        .addColumn("reviewers", "text", (c) => c.notNull())
        .addColumn("seed", "varchar(64)", (c) => c.notNull())
        .addColumn("candidates", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
    },
  },
  // Eligibility facts now come from the profile service (activity, account age, violations upheld).
  "0002_reviewer_profile_copy": {
    async up(db: Kysely<any>) {
      await db.schema.alterTable("profiles").addColumn("last_violation_at", "bigint").execute();
      await db.schema.alterTable("profiles").addColumn("version", "integer", (c) => c.notNull().defaultTo(0)).execute();
    },
  },
  // With an index on status, SQLite answered the draw's window from it: every active reviewer read and
  // sorted for each draw. Without it, the window is a range on the draw key, whatever the pool's size.
  "0003_reviewer_draw_by_key": {
    async up(db: Kysely<any>) {
      await dropIndex(db, "reviewers_status", "reviewers");
    },
  },
  // The candidate list of a draw is kept by the report service with the case (its record for
  // re-deriving the panel) and by the barrier with the try's answer (for a repeated try); this third
  // copy was written on every hold and never read.
  "0004_reviewer_reservation_without_candidates": {
    async up(db: Kysely<any>) {
      await db.schema.alterTable("reservations").dropColumn("candidates").execute();
    },
  },
};

/** What a Reviewer is made of: the row but for its bookkeeping columns. */
const REVIEWER_COLUMNS = [
  "reviewers.user_id",
  "reviewers.status",
  "reviewers.suspended_until",
  "reviewers.votes",
  "reviewers.coherent_votes",
  "reviewers.no_shows",
  "reviewers.consecutive_no_shows",
  "reviewers.open_cases",
  "reviewers.cases_today",
  "reviewers.day_key",
  "reviewers.last_assigned_at",
  "reviewers.draw_key",
] as const;

type ReviewerFields = Omit<ReviewerRow, "enrolled_at" | "updated_at">;

export function toReviewer(
  row: ReviewerFields,
  profile?: { account_created_at: number | null; last_active_at: number | null; last_violation_at: number | null },
): Reviewer {
  return {
    userId: Number(row.user_id),
    status: row.status,
    suspendedUntil: row.suspended_until === null ? null : Number(row.suspended_until),
    accountCreatedAt: profile?.account_created_at == null ? null : Number(profile.account_created_at),
    lastActiveAt: profile?.last_active_at == null ? null : Number(profile.last_active_at),
    lastViolationAt: profile?.last_violation_at == null ? null : Number(profile.last_violation_at),
    votes: row.votes,
    coherentVotes: row.coherent_votes,
    noShows: row.no_shows,
    consecutiveNoShows: row.consecutive_no_shows,
    openCases: row.open_cases,
    casesToday: row.cases_today,
    dayKey: row.day_key,
    lastAssignedAt: row.last_assigned_at === null ? null : Number(row.last_assigned_at),
  };
}

/** A reviewer as enrolment creates them: active, at `drawKey` in the pool's order, with no record yet. */
export function freshReviewer(userId: number, drawKey: number, now: number): ReviewerTables["reviewers"] {
  return {
    user_id: userId,
    status: "ACTIVE",
    draw_key: drawKey,
    enrolled_at: now,
    suspended_until: null,
    votes: 0,
    coherent_votes: 0,
    no_shows: 0,
    consecutive_no_shows: 0,
    open_cases: 0,
    cases_today: 0,
    day_key: 0,
    last_assigned_at: null,
    updated_at: now,
  };
}

/** The columns of a reviewer's standing: what a save writes, and what it finds unchanged before it writes. */
const STANDING = [
  "status",
  "suspended_until",
  "votes",
  "coherent_votes",
  "no_shows",
  "consecutive_no_shows",
  "open_cases",
  "cases_today",
  "day_key",
  "last_assigned_at",
] as const;
type Standing = Pick<ReviewerTables["reviewers"], (typeof STANDING)[number]>;

function standingColumns(r: Reviewer): Standing {
  return {
    status: r.status,
    suspended_until: r.suspendedUntil,
    votes: r.votes,
    coherent_votes: r.coherentVotes,
    no_shows: r.noShows,
    consecutive_no_shows: r.consecutiveNoShows,
    open_cases: r.openCases,
    cases_today: r.casesToday,
    day_key: r.dayKey,
    last_assigned_at: r.lastAssignedAt,
  };
}

const saveQuery = prepare((db: ReviewerDb, $: { userId: number; after: Standing; before: Standing; now: number }) => {
  // Null-safe equality (suspended_until, last_assigned_at may be null): each engine spells it its own way.
  const dialect = dialectOf(db);
  const same = dialect === "mysql" ? "<=>" : dialect === "postgres" ? "is not distinct from" : "is";
  let update = db
    .updateTable("reviewers")
    .set({ ...$.after, updated_at: $.now })
    .where("user_id", "=", $.userId);
  for (const column of STANDING) update = update.where(column, same, $.before[column]);
  return update;
});

/**
 * Writes `after` over `before` only if the row's standing is still what `before` read (optimistic:
 * draws need no table lock), status included, so an opt-out or a suspension that lands between a
 * draw's read and its write is not overwritten; answers whether it wrote.
 */
export async function saveReviewer(db: ReviewerDb, before: Reviewer, after: Reviewer, now: number): Promise<boolean> {
  return (await saveQuery.run(db, { userId: before.userId, after: standingColumns(after), before: standingColumns(before), now })) === 1;
}

function withProfiles(db: ReviewerDb) {
  return db
    .selectFrom("reviewers")
    .leftJoin("profiles", "profiles.user_id", "reviewers.user_id")
    .selectAll("reviewers")
    .select(["profiles.account_created_at", "profiles.last_active_at", "profiles.last_violation_at"]);
}

const reviewersQuery = prepare((db: ReviewerDb, $: { ids: number[] }) =>
  forUpdateOn(db, db.selectFrom("reviewers").select(REVIEWER_COLUMNS).where("reviewers.user_id", "in", $.ids)),
);

/**
 * Enrolled reviewers, locked for a read-modify-write in the caller's transaction (a draw's optimistic
 * write then waits and sees the change, instead of this write failing), without the profile facts
 * copied beside them: what a case's outcome changes, not who may be drawn.
 */
export async function lockReviewers(db: ReviewerDb, userIds: number[]): Promise<Map<number, Reviewer>> {
  if (userIds.length === 0) return new Map();
  const rows = await reviewersQuery.all(db, { ids: userIds });
  return new Map(rows.map((row) => [Number(row.user_id), toReviewer(row)]));
}

export type ReservationRow = Selectable<ReviewerTables["reservations"]>;

const reservationInsert = prepare((db: ReviewerDb, $: { row: ReservationRow }) => db.insertInto("reservations").values($.row));

export function insertReservation(db: ReviewerDb, row: ReservationRow) {
  return reservationInsert.run(db, { row });
}

const reservationLocked = prepare((db: ReviewerDb, $: { id: string }) => forUpdateOn(db, db.selectFrom("reservations").selectAll().where("id", "=", $.id)));

/** The reservation, locked for a read-modify-write in the caller's transaction. */
export function lockReservation(db: ReviewerDb, id: string) {
  return reservationLocked.first(db, { id });
}

const reservationStatus = prepare((db: ReviewerDb, $: { id: string; status: ReservationRow["status"]; now: number }) =>
  db.updateTable("reservations").set({ status: $.status, updated_at: $.now }).where("id", "=", $.id),
);

export function setReservationStatus(db: ReviewerDb, id: string, status: ReservationRow["status"], now: number) {
  return reservationStatus.run(db, { id, status, now });
}

const triedConfirmed = prepare((db: ReviewerDb, $: { id: string; now: number }) =>
  db.updateTable("reservations").set({ status: "CONFIRMED", updated_at: $.now }).where("id", "=", $.id).where("status", "=", "TRIED"),
);

/** Confirms the reservation if it is held (TRIED); answers whether it was. */
export async function confirmTried(db: ReviewerDb, id: string, now: number): Promise<boolean> {
  return (await triedConfirmed.run(db, { id, now })) === 1;
}

export type ProfileFacts = Omit<ReviewerTables["profiles"], "user_id">;

const profileVersion = prepare((db: ReviewerDb, $: { userId: number }) => db.selectFrom("profiles").select("version").where("user_id", "=", $.userId));
const profileInsert = prepare((db: ReviewerDb, $: { row: ReviewerTables["profiles"] }) => db.insertInto("profiles").values($.row));
const profileUpdate = prepare((db: ReviewerDb, $: { userId: number; facts: ProfileFacts }) => db.updateTable("profiles").set($.facts).where("user_id", "=", $.userId));

/** Keeps the copy of a user's profile facts, dropping a version older than the one held; answers whether it kept them. */
export async function copyProfileFacts(db: ReviewerDb, userId: number, facts: ProfileFacts): Promise<boolean> {
  const existing = await profileVersion.first(db, { userId });
  if (!existing) await profileInsert.run(db, { row: { user_id: userId, ...facts } });
  else if (Number(existing.version) < facts.version) await profileUpdate.run(db, { userId, facts });
  else return false;
  return true;
}

export const DRAW_KEY_SPACE = 2 ** 31;

type WindowValues = { from: number; to: number; limit: number; now: number; openBelow: number };

function inWindow(db: ReviewerDb, $: WindowValues) {
  return db
    .selectFrom("reviewers")
    .select(REVIEWER_COLUMNS)
    .where((eb) => eb.or([eb("reviewers.status", "=", "ACTIVE"), eb.and([eb("reviewers.status", "=", "SUSPENDED"), eb("reviewers.suspended_until", "<=", $.now)])]))
    .where("reviewers.open_cases", "<", $.openBelow)
    .where("reviewers.draw_key", ">=", $.from)
    .where("reviewers.draw_key", "<", $.to)
    .orderBy("reviewers.draw_key")
    .limit($.limit);
}

const poolQuery = prepare((db: ReviewerDb, $: WindowValues) =>
  inWindow(db, $)
    .leftJoin("profiles", "profiles.user_id", "reviewers.user_id")
    .select(["profiles.account_created_at", "profiles.last_active_at", "profiles.last_violation_at"]),
);
const poolQueryWithoutProfiles = prepare((db: ReviewerDb, $: WindowValues) => inWindow(db, $));

/**
 * Reviewers in draw-key order from `from` (below `to`), at most `limit`, with their profile facts when
 * `withProfiles` (the rules on activity, account age or violations need them: the join was a fifth of
 * the window's cost). Those the cheapest rules rule out anyway (not active now, at the open-case
 * limit) are skipped in the database, where they cost nothing to read; the caller still checks every
 * rule on what comes back.
 */
export async function poolWindow(db: ReviewerDb, from: number, to: number, limit: number, now: number, maxOpenCases: number, withProfiles: boolean) {
  // No limit: the largest value the column holds (PostgreSQL types the parameter as the column, a 32-bit integer).
  const values = { from, to, limit, now, openBelow: maxOpenCases > 0 ? maxOpenCases : 2_147_483_647 };
  if (withProfiles) return (await poolQuery.all(db, values)).map((row) => ({ drawKey: Number(row.draw_key), reviewer: toReviewer(row, row) }));
  return (await poolQueryWithoutProfiles.all(db, values)).map((row) => ({ drawKey: Number(row.draw_key), reviewer: toReviewer(row) }));
}

/** Reviewers with their draw keys and profile facts, in draw-key order: every one, or those of `userIds`. */
export async function reviewersWithFacts(db: ReviewerDb, userIds?: number[]) {
  if (userIds?.length === 0) return [];
  let q = withProfiles(db).orderBy("reviewers.draw_key");
  if (userIds) q = q.where("reviewers.user_id", "in", userIds);
  return (await q.execute()).map((row) => ({ drawKey: Number(row.draw_key), reviewer: toReviewer(row, row) }));
}

/** Reviewers newest first, optionally of one status, after the cursor (a user id). */
export function reviewerPage(db: ReviewerDb, status: ReviewerStatus | undefined, cursor: number | undefined, limit: number) {
  let q = withProfiles(db);
  if (status) q = q.where("reviewers.status", "=", status);
  if (cursor !== undefined) q = q.where("reviewers.user_id", "<", cursor);
  return q.orderBy("reviewers.user_id", "desc").limit(limit).execute();
}

export async function findReviewer(db: ReviewerDb, userId: number) {
  const row = await withProfiles(db).where("reviewers.user_id", "=", userId).executeTakeFirst();
  if (!row) return undefined;
  return { row, reviewer: toReviewer(row, row) };
}
