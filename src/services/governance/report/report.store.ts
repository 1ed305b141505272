import { type Generated, type Insertable, type Kysely, type Migration, type Selectable, sql, type Updateable } from "kysely";
import { createPartialIndex, dropIndex, forUpdateOn, type PartialCondition, withAutoId } from "../../../platform/db/db";
import { prepare } from "../../../platform/db/prepared";
import type { CaseStatus, DecidedBy, Decision, PanelState, Policy, TargetType, Verdict } from "./report.domain";

export interface ReportTables {
  policies: {
    report_type: string;
    panel_size: number;
    votes_to_decide: number;
    vote_timeout_s: number;
    case_timeout_s: number;
    max_alternates: number;
    coins_per_vote: number;
    coins_per_coherent_vote: number;
    appeal_window_s: number;
    updated_at: number;
  };
  cases: {
    id: string;
    report_type: string;
    target_type: TargetType;
    target_id: string;
    target_author_id: number;
    status: CaseStatus;
    round: number;
    appeal_of: string | null;
    appealed_by: string | null;
    /** `TYPE:id` while the case is open on a first round, so new reports join it; null otherwise. */
    open_key: string | null;
    panel_size: number;
    votes_to_decide: number;
    vote_timeout_s: number;
    max_alternates: number;
    /** Seats waiting for a reviewer: the whole panel at first, one more for each seat passed to an alternate. */
    seats_owed: number;
    coins_per_vote: number;
    coins_per_coherent_vote: number;
    appeal_window_s: number;
    opened_at: number;
    deadline_at: number;
    decided_at: number | null;
    verdict: Verdict | null;
    final_verdict: Verdict | null;
    decided_by: DecidedBy | null;
    decision_reason: string | null;
    violation_votes: number;
    no_violation_votes: number;
    /** The TCC transaction seating this case, while one is in flight (its gid). */
    reservation_id: string | null;
    /** When the last seating transaction started: in-flight age, and the back-off between attempts. */
    reservation_at: number | null;
    attempts: number;
    updated_at: number;
  };
  reports: {
    id: string;
    case_id: string;
    reporter_id: number;
    reason: string;
    evidence: string | null;
    source: string;
    dedup_key: string;
    request_hash: string;
    created_at: number;
  };
  panel: {
    case_id: string;
    reviewer_id: number;
    state: PanelState;
    invited_at: number;
    deadline_at: number;
    decision: Decision | null;
    comment: string | null;
    voted_at: number | null;
  };
  /** Every panel draw, with its seed and eligible list, so each seat can be re-derived. */
  draws: {
    reservation_id: string;
    case_id: string;
    seed: string;
    candidates: string;
    reviewers: string;
    drawn_at: number;
  };
  audit: {
    id: Generated<number>;
    actor_id: number;
    action: string;
    subject: string;
    detail: string;
    at: number;
  };
}

export type CaseRow = Selectable<ReportTables["cases"]>;
export type PanelRow = Selectable<ReportTables["panel"]>;
export type PolicyRow = Selectable<ReportTables["policies"]>;
export type ReportDb = Kysely<ReportTables>;

export const reportMigrations: Record<string, Migration> = {
  "0001_governance_report": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("policies")
        .addColumn("report_type", "varchar(32)", (c) => c.primaryKey())
        .addColumn("panel_size", "integer", (c) => c.notNull())
        .addColumn("votes_to_decide", "integer", (c) => c.notNull())
        .addColumn("vote_timeout_s", "integer", (c) => c.notNull())
        .addColumn("case_timeout_s", "integer", (c) => c.notNull())
        .addColumn("max_alternates", "integer", (c) => c.notNull())
        .addColumn("coins_per_vote", "integer", (c) => c.notNull())
        .addColumn("coins_per_coherent_vote", "integer", (c) => c.notNull())
        .addColumn("appeal_window_s", "integer", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema
        .createTable("cases")
        .addColumn("id", "varchar(40)", (c) => c.primaryKey())
        .addColumn("report_type", "varchar(32)", (c) => c.notNull())
        .addColumn("target_type", "varchar(16)", (c) => c.notNull())
        .addColumn("target_id", "varchar(64)", (c) => c.notNull())
        .addColumn("target_author_id", "bigint", (c) => c.notNull())
        .addColumn("status", "varchar(16)", (c) => c.notNull())
        .addColumn("round", "integer", (c) => c.notNull())
        .addColumn("appeal_of", "varchar(40)")
        .addColumn("appealed_by", "varchar(40)")
        .addColumn("open_key", "varchar(96)", (c) => c.unique())
        .addColumn("panel_size", "integer", (c) => c.notNull())
        .addColumn("votes_to_decide", "integer", (c) => c.notNull())
        .addColumn("vote_timeout_s", "integer", (c) => c.notNull())
        .addColumn("max_alternates", "integer", (c) => c.notNull())
        .addColumn("seats_owed", "integer", (c) => c.notNull())
        .addColumn("coins_per_vote", "integer", (c) => c.notNull())
        .addColumn("coins_per_coherent_vote", "integer", (c) => c.notNull())
        .addColumn("appeal_window_s", "integer", (c) => c.notNull())
        .addColumn("opened_at", "bigint", (c) => c.notNull())
        .addColumn("deadline_at", "bigint", (c) => c.notNull())
        .addColumn("decided_at", "bigint")
        .addColumn("verdict", "varchar(16)")
        .addColumn("final_verdict", "varchar(16)")
        .addColumn("decided_by", "varchar(16)")
        .addColumn("decision_reason", "text")
        .addColumn("violation_votes", "integer", (c) => c.notNull())
        .addColumn("no_violation_votes", "integer", (c) => c.notNull())
        .addColumn("reservation_id", "varchar(64)")
        .addColumn("reservation_state", "varchar(16)")
        .addColumn("reservation_at", "bigint")
        .addColumn("attempts", "integer", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("cases_status_deadline").on("cases").columns(["status", "deadline_at"]).execute();
      await db.schema.createIndex("cases_target").on("cases").columns(["target_type", "target_id", "id"]).execute();
      await db.schema.createIndex("cases_seats_owed").on("cases").columns(["seats_owed", "status"]).execute();
      await db.schema.createIndex("cases_reservation").on("cases").columns(["reservation_state", "reservation_at"]).execute();
      await db.schema
        .createTable("reports")
        .addColumn("id", "varchar(40)", (c) => c.primaryKey())
        .addColumn("case_id", "varchar(40)", (c) => c.notNull())
        .addColumn("reporter_id", "bigint", (c) => c.notNull())
        .addColumn("reason", "text", (c) => c.notNull())
        .addColumn("evidence", "text")
        .addColumn("source", "varchar(40)", (c) => c.notNull())
        .addColumn("dedup_key", "varchar(160)", (c) => c.notNull().unique())
        .addColumn("request_hash", "varchar(64)", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("reports_case").on("reports").columns(["case_id"]).execute();
      await db.schema.createIndex("reports_reporter").on("reports").columns(["reporter_id", "case_id"]).execute();
      await db.schema
        .createTable("panel")
        .addColumn("case_id", "varchar(40)", (c) => c.notNull())
        .addColumn("reviewer_id", "bigint", (c) => c.notNull())
        .addColumn("state", "varchar(16)", (c) => c.notNull())
        .addColumn("invited_at", "bigint", (c) => c.notNull())
        .addColumn("deadline_at", "bigint", (c) => c.notNull())
        .addColumn("decision", "varchar(16)")
        .addColumn("comment", "text")
        .addColumn("voted_at", "bigint")
        .addPrimaryKeyConstraint("panel_pk", ["case_id", "reviewer_id"])
        .execute();
      await db.schema.createIndex("panel_reviewer_state").on("panel").columns(["reviewer_id", "state"]).execute();
      await db.schema.createIndex("panel_state_deadline").on("panel").columns(["state", "deadline_at"]).execute();
      await db.schema
        .createTable("draws")
        .addColumn("reservation_id", "varchar(64)", (c) => c.primaryKey())
        .addColumn("case_id", "varchar(40)", (c) => c.notNull())
        .addColumn("seed", "varchar(64)", (c) => c.notNull())
        .addColumn("candidates", "text", (c) => c.notNull())
        .addColumn("reviewers", "text", (c) => c.notNull())
        .addColumn("drawn_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("draws_case").on("draws").columns(["case_id", "drawn_at"]).execute();
      await withAutoId(db, db.schema.createTable("audit"), "id")
        .addColumn("actor_id", "bigint", (c) => c.notNull())
        .addColumn("action", "varchar(64)", (c) => c.notNull())
        .addColumn("subject", "varchar(128)", (c) => c.notNull())
        .addColumn("detail", "text", (c) => c.notNull())
        .addColumn("at", "bigint", (c) => c.notNull())
        .execute();
    },
  },
  /** Panel seating moved onto the coordinator's TCC: the local TRYING/APPLIED state went with it. */
  "0002_governance_report_tcc": {
    async up(db: Kysely<any>) {
      await dropIndex(db, "cases_reservation", "cases");
      await db.schema.alterTable("cases").dropColumn("reservation_state").execute();
      await db.schema.createIndex("cases_reservation").on("cases").columns(["reservation_id", "reservation_at"]).execute();
    },
  },
  /**
   * Seats are looked up by reviewer and by deadline only while INVITED, and a decided case's unvoted
   * seats are RELEASED: indexes over the INVITED seats alone stay a few hot pages, where the full ones
   * on (reviewer, state) and (state, deadline) took a random page for every seat written and every
   * vote — two fifths of the pages the report database committed.
   */
  "0003_governance_report_open_seats": {
    async up(db: Kysely<any>) {
      await db
        .updateTable("panel")
        .set({ state: "RELEASED" })
        .where("state", "=", "INVITED")
        .where("case_id", "not in", db.selectFrom("cases").select("id").where("status", "in", ["OPEN", "VOTING"]))
        .execute();
      await dropIndex(db, "panel_reviewer_state", "panel");
      await dropIndex(db, "panel_state_deadline", "panel");
      await createPartialIndex(db, "panel_invited_reviewer", "panel", ["reviewer_id", "deadline_at"], INVITED_ONLY);
      await createPartialIndex(db, "panel_invited_deadline", "panel", ["deadline_at"], INVITED_ONLY);
    },
  },
  /**
   * The sweeper's three questions (which open cases are past their deadline, which owe seats, which
   * have a seating in flight) asked of indexes over those cases alone: the full indexes took an entry
   * for every case ever opened, and moved it at every change of status.
   */
  "0004_governance_report_open_cases": {
    async up(db: Kysely<any>) {
      await dropIndex(db, "cases_status_deadline", "cases");
      await dropIndex(db, "cases_seats_owed", "cases");
      await dropIndex(db, "cases_reservation", "cases");
      await createPartialIndex(db, "cases_open_deadline", "cases", ["deadline_at"], OPEN_CASES);
      await createPartialIndex(db, "cases_owing_seats", "cases", ["status"], OWING_SEATS);
      // By its id too: a seating given back is found by it (`reservation_id = ?` implies not null).
      await createPartialIndex(db, "cases_seating", "cases", ["reservation_id", "reservation_at"], SEATING);
    },
  },
  /**
   * An operator's list of decided cases by status, newest first, read from an index over those cases:
   * without it a rare status was found by walking every case. A case enters it once, when decided.
   */
  "0005_governance_report_decided_cases": {
    async up(db: Kysely<any>) {
      await createPartialIndex(db, "cases_decided", "cases", ["status", "id"], DECIDED_CASES);
    },
  },
};

const INVITED_ONLY: PartialCondition = { column: "state", values: ["INVITED"] };
/** Cases still open: the sweeper expires those past their deadline. */
export const OPEN_CASES: PartialCondition = { column: "status", values: ["OPEN", "VOTING"] };
/** Cases decided (a verdict is their status): listed by status. */
export const DECIDED_CASES: PartialCondition = { column: "status", values: ["UPHELD", "REJECTED", "EXPIRED"] satisfies Verdict[] };
/** Cases with empty seats: the sweeper seats them. */
export const OWING_SEATS: PartialCondition = { column: "seats_owed", above: 0 };
/** Cases with a seating transaction in flight: the sweeper settles those a killed process left. */
export const SEATING: PartialCondition = { column: "reservation_id", notNull: true };
/** How a query on open seats names their state: a literal, so that the engine sees the partial indexes apply. */
export const INVITED = sql.lit<PanelState>("INVITED");

export function policyFromRow(row: PolicyRow): Policy {
  return {
    reportType: row.report_type,
    panelSize: row.panel_size,
    votesToDecide: row.votes_to_decide,
    voteTimeoutSeconds: row.vote_timeout_s,
    caseTimeoutSeconds: row.case_timeout_s,
    maxAlternates: row.max_alternates,
    coinsPerVote: row.coins_per_vote,
    coinsPerCoherentVote: row.coins_per_coherent_vote,
    appealWindowSeconds: row.appeal_window_s,
  };
}

/** The columns every new case, first round or appeal, starts with: open, untallied, nothing in flight. */
export function freshCase(now: number) {
  return {
    status: "OPEN" as const,
    appealed_by: null,
    opened_at: now,
    decided_at: null,
    verdict: null,
    final_verdict: null,
    decided_by: null,
    decision_reason: null,
    violation_votes: 0,
    no_violation_votes: 0,
    reservation_id: null,
    reservation_at: null,
    attempts: 0,
    updated_at: now,
  };
}

// The statements every case runs, prepared (see platform/db/prepared.ts).

const caseById = prepare((db: ReportDb, $: { id: string }) => db.selectFrom("cases").selectAll().where("id", "=", $.id));

export function findCase(db: ReportDb, id: string) {
  return caseById.first(db, { id });
}

const caseInsert = prepare((db: ReportDb, $: { row: CaseRow }) => db.insertInto("cases").values($.row));

export function insertCase(db: ReportDb, row: CaseRow) {
  return caseInsert.run(db, { row });
}

const caseUpdate = prepare((db: ReportDb, $: { id: string; changes: Updateable<ReportTables["cases"]> }) => db.updateTable("cases").set($.changes).where("id", "=", $.id));

/** Sets columns of a case; each set of columns is its own prepared statement. */
export function updateCase(db: ReportDb, id: string, changes: Updateable<ReportTables["cases"]>) {
  return caseUpdate.run(db, { id, changes });
}

const openCaseQuery = prepare((db: ReportDb, $: { key: string }) => db.selectFrom("cases").select(["id", "status"]).where("open_key", "=", $.key));

/** The open first-round case on a target (by its open key), if any. */
export function findOpenCase(db: ReportDb, key: string) {
  return openCaseQuery.first(db, { key });
}

const policyQuery = prepare((db: ReportDb, $: { reportType: string }) => db.selectFrom("policies").selectAll().where("report_type", "=", $.reportType));

export function findPolicy(db: ReportDb, reportType: string) {
  return policyQuery.first(db, { reportType });
}

const reportByKey = prepare((db: ReportDb, $: { dedupKey: string }) => db.selectFrom("reports").selectAll().where("dedup_key", "=", $.dedupKey));

/** The report filed under a dedup key (an Idempotency-Key, or the reporting system's own report id). */
export function findReportByKey(db: ReportDb, dedupKey: string) {
  return reportByKey.first(db, { dedupKey });
}

const reportedOrOpenQuery = prepare((db: ReportDb, $: { dedupKey: string; openKey: string }) =>
  db.selectNoFrom((eb) => [
    eb.exists(eb.selectFrom("reports").select("id").where("dedup_key", "=", $.dedupKey)).as("reported"),
    eb.exists(eb.selectFrom("cases").select("id").where("open_key", "=", $.openKey)).as("open"),
  ]),
);

/** Whether a report was filed under the dedup key or a case is open under the open key: one read for both. */
export async function reportedOrOpen(db: ReportDb, dedupKey: string, openKey: string): Promise<boolean> {
  const row = await reportedOrOpenQuery.first(db, { dedupKey, openKey });
  return Boolean(Number(row?.reported)) || Boolean(Number(row?.open));
}

const reportInsert = prepare((db: ReportDb, $: { row: Insertable<ReportTables["reports"]> }) => db.insertInto("reports").values($.row));

export function insertReport(db: ReportDb, row: Insertable<ReportTables["reports"]>) {
  return reportInsert.run(db, { row });
}

const reportCount = prepare((db: ReportDb, $: { caseId: string }) => db.selectFrom("reports").select((eb) => eb.fn.countAll<number>().as("n")).where("case_id", "=", $.caseId));

export async function countReports(db: ReportDb, caseId: string): Promise<number> {
  return Number((await reportCount.first(db, { caseId }))?.n ?? 0);
}

const seatsInsert = prepare((db: ReportDb, $: { rows: PanelRow[] }) => db.insertInto("panel").values($.rows));

export function insertSeats(db: ReportDb, rows: PanelRow[]) {
  return seatsInsert.run(db, { rows });
}

const drawInsert = prepare((db: ReportDb, $: { row: Selectable<ReportTables["draws"]> }) => db.insertInto("draws").values($.row));

export function insertDraw(db: ReportDb, row: Selectable<ReportTables["draws"]>) {
  return drawInsert.run(db, { row });
}

const drawsQuery = prepare((db: ReportDb, $: { caseId: string }) => db.selectFrom("draws").select(["seed", "candidates", "reviewers"]).where("case_id", "=", $.caseId).orderBy("drawn_at"));

/** A case's draws, oldest first: each seed with the candidates it drew from, to re-derive the panel. */
export function drawsOf(db: ReportDb, caseId: string) {
  return drawsQuery.all(db, { caseId });
}

const lockedCase = prepare((db: ReportDb, $: { id: string }) => forUpdateOn(db, db.selectFrom("cases").selectAll().where("id", "=", $.id)));

/** The case, locked for a read-modify-write in the caller's transaction. */
export function lockCase(db: ReportDb, id: string) {
  return lockedCase.first(db, { id });
}

const panelQuery = prepare((db: ReportDb, $: { caseId: string }) => db.selectFrom("panel").selectAll().where("case_id", "=", $.caseId).orderBy("invited_at").orderBy("reviewer_id"));

export function panelOf(db: ReportDb, caseId: string) {
  return panelQuery.all(db, { caseId });
}

const voteCast = prepare((db: ReportDb, $: { caseId: string; reviewerId: number; decision: Decision; comment: string | null; now: number }) =>
  db
    .updateTable("panel")
    .set({ state: "VOTED", decision: $.decision, comment: $.comment, voted_at: $.now })
    .where("case_id", "=", $.caseId)
    .where("reviewer_id", "=", $.reviewerId)
    .where("state", "=", "INVITED")
    .where("deadline_at", ">", $.now),
);

const openSeatsReleased = prepare((db: ReportDb, $: { caseId: string }) =>
  db.updateTable("panel").set({ state: "RELEASED" }).where("case_id", "=", $.caseId).where("state", "=", INVITED),
);

/** A decided case's seats that have not voted close: RELEASED. */
export async function releaseOpenSeats(db: ReportDb, caseId: string): Promise<void> {
  await openSeatsReleased.run(db, { caseId });
}

/** The common vote in one statement: an invited seat, in time. Answers whether it was cast. */
export async function castVote(db: ReportDb, caseId: string, reviewerId: number, decision: Decision, comment: string | null, now: number): Promise<boolean> {
  return (await voteCast.run(db, { caseId, reviewerId, decision, comment, now })) === 1;
}

const votesCounted = prepare((db: ReportDb, $: { id: string; violation: number; noViolation: number; now: number }) =>
  db.updateTable("cases").set({ violation_votes: $.violation, no_violation_votes: $.noViolation, updated_at: $.now }).where("id", "=", $.id),
);

export function countVotes(db: ReportDb, caseId: string, tally: { violation: number; noViolation: number }, now: number) {
  return votesCounted.run(db, { id: caseId, violation: tally.violation, noViolation: tally.noViolation, now });
}

export async function writeAudit(db: ReportDb, actorId: number, action: string, subject: string, detail: unknown, at: number) {
  await db.insertInto("audit").values({ actor_id: actorId, action, subject, detail: JSON.stringify(detail), at }).execute();
}
