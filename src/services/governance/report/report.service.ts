import { createHash } from "node:crypto";
import type { Context, ServiceSchema } from "moleculer";
import { iso } from "../../../platform/clock/clock";
import { isUniqueViolation, partialTerm, retryOnUniqueViolation } from "../../../platform/db/db";
import { action, type Ctx, hasRole, requireIdempotencyKey, requireRole, requireUser } from "../../../platform/runtime/action";
import { AppError, badRequest, conflict, forbidden, notFound } from "../../../platform/runtime/errors";
import { newId } from "../../../platform/runtime/ids";
import { RecentReads } from "../../../platform/runtime/recent-reads";
import { routesWithSchemas } from "../../../platform/gateway/routes";
import type { Platform } from "../../../platform/runtime/platform";
import type { Emit } from "../../../platform/runtime/service-host";
import { Sweeper } from "../../../platform/runtime/sweeper";
import { initiator, type TxClient, txClient } from "../../../platform/tx/tx.client";
import { IdentityEvents, type RolesChanged } from "../../commerce/identity/identity.contract";
import type { ChooseResult } from "../reviewer/reviewer.contract";
import {
  type AuditRecorded,
  type CaseDecided,
  ExternalReport,
  ReportContract as C,
  ReportEvents,
  reportRoutes,
  type SeatReplaced,
  type TaskInvited,
} from "./report.contract";
import {
  addVote,
  appealPanel,
  appealRefusal,
  canTransition,
  type DecidedBy,
  isOpen,
  openKey,
  policyProblem,
  type Tally,
  type TargetType,
  type Verdict,
  verdictOf,
  visibility,
  voteRefusal,
} from "./report.domain";
import {
  type CaseRow,
  castVote,
  countReports,
  countVotes,
  DECIDED_CASES,
  drawsOf,
  findCase,
  findOpenCase,
  findPolicy,
  findReportByKey,
  freshCase,
  insertCase,
  insertDraw,
  insertReport,
  insertSeats,
  INVITED,
  lockCase,
  OPEN_CASES,
  OWING_SEATS,
  type PanelRow,
  panelOf,
  type PolicyRow,
  policyFromRow,
  type ReportDb,
  releaseOpenSeats,
  reportedOrOpen,
  reportMigrations,
  type ReportTables,
  SEATING,
  updateCase,
  writeAudit,
} from "./report.store";

/** How long the coordinator waits for a seating transaction's decision before asking this service. */
const SEATING_TIMEOUT_MS = 15_000;
/** A seating transaction still in flight after this long was cut short here; the sweeper rolls it back. */
const SEATING_ABANDONED_MS = 30_000;
const TICK_MS = 1_000;
/** How long a vote policy read is trusted: a change made through another instance applies here within it (at once, by its broadcast). */
const POLICY_RECHECK_MS = 1_000;
const POLICY_CHANGED = "report.policy.changed";

/** How a case a report opens gets its panel (see `fileReport`). */
type Seating = "intent" | "later" | Held;

/**
 * A panel held for a case not yet opened, with what `fileSeated` read before holding it: no report
 * under the key, no open case on the target, and this policy.
 */
interface Held {
  caseId: string;
  gid: string;
  chosen: ChooseResult;
  policy: PolicyRow;
}

interface NewReport {
  reporterId: number;
  reportType: string;
  target: { type: TargetType; id: string; authorId: number };
  reason: string;
  evidence?: string[];
  source: string;
  dedupKey: string;
}

/**
 * Reports and cases: intake (API and stream), panels through the reviewer service, votes,
 * verdicts, appeals, operator decisions and the audit log.
 */
export function reportService(platform: Platform): ServiceSchema {
  const host = platform.host<ReportTables>("report", reportMigrations);
  const { clock } = platform;
  let tcc: TxClient;
  const counted = {
    opened: platform.metrics.counter("bazaar_governance_cases_opened_total", "cases opened, by round (1 first, 2 appeal)", ["round"]),
    decided: platform.metrics.counter("bazaar_governance_cases_decided_total", "cases decided, by verdict and by whom", ["verdict", "decided_by"]),
    votes: platform.metrics.counter("bazaar_governance_votes_total", "votes cast", ["decision"]),
    retired: platform.metrics.counter("bazaar_governance_seats_retired_total", "seats whose reviewer missed the deadline", ["alternate"]),
  };
  const sweeper = new Sweeper(() => tick(), TICK_MS, host.logger, "governance sweep");
  /** Each report type's policy, as every report that opens a case needs it. */
  const policies = new RecentReads<string, PolicyRow>(clock, POLICY_RECHECK_MS);
  const policyOf = (reportType: string) => policies.get(reportType, () => findPolicy(host.db, reportType));

  // ---------- intake ----------

  /**
   * Files a report, opening a case if none is open on the target. A case it opens gets its panel as
   * `seating` says: an intent to seat it recorded with it (`seat` runs the transaction), a panel
   * already held (seated in this transaction, with the commit decision), or later by the sweeper.
   */
  async function fileReport(db: ReportDb, input: NewReport, emit: Emit, seating: Seating) {
    const now = clock.now();
    const requestHash = createHash("sha256")
      .update(JSON.stringify([input.reportType, input.target, input.reason, input.evidence ?? []]))
      .digest("hex");
    const held = typeof seating === "object" ? seating : null;
    // Read again here but for a held panel: what was read before holding it still holds unless a report
    // under the key or a case on the target appeared since, and then the unique keys refuse the inserts.
    const existing = held ? undefined : await findReportByKey(db, input.dedupKey);
    if (existing) {
      if (existing.request_hash !== requestHash)
        throw conflict("IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used for a different report", "Idempotency-Key");
      const c = await findCase(db, existing.case_id);
      return { caseId: existing.case_id, reportId: existing.id, status: c!.status, intent: null };
    }
    const policyRow = held ? held.policy : await findPolicy(db, input.reportType);
    if (!policyRow) throw badRequest("UNKNOWN_REPORT_TYPE", `no vote policy for report type ${input.reportType}`, "reportType");
    const policy = policyFromRow(policyRow);
    const key = openKey(input.target.type, input.target.id);
    const open = held ? undefined : await findOpenCase(db, key);
    const reportId = newId(now);
    let caseId = open?.id;
    let status = open?.status ?? "OPEN";
    let intent: Intent | null = null;
    if (!caseId) {
      caseId = held ? held.caseId : newId(now);
      const row: CaseRow = {
        ...freshCase(now),
        id: caseId,
        report_type: policy.reportType,
        target_type: input.target.type,
        target_id: input.target.id,
        target_author_id: input.target.authorId,
        round: 1,
        appeal_of: null,
        open_key: key,
        panel_size: policy.panelSize,
        votes_to_decide: policy.votesToDecide,
        vote_timeout_s: policy.voteTimeoutSeconds,
        max_alternates: policy.maxAlternates,
        seats_owed: policy.panelSize,
        coins_per_vote: policy.coinsPerVote,
        coins_per_coherent_vote: policy.coinsPerCoherentVote,
        appeal_window_s: policy.appealWindowSeconds,
        deadline_at: now + policy.caseTimeoutSeconds * 1000,
      };
      // A new case is inserted as its seating leaves it (not written a second time).
      if (held) {
        status = "VOTING";
        Object.assign(row, { status, seats_owed: row.seats_owed - held.chosen.reviewers.length, attempts: 1 });
      } else if (seating === "intent") {
        intent = seatingIntent(row, [input.reporterId, input.target.authorId]);
        if (intent) Object.assign(row, intentColumns(row, intent, now));
      }
      await insertCase(db, row);
      emit(ReportEvents.opened, { caseId, reportType: policy.reportType, target: input.target, round: 1 }, `case-opened:${caseId}`);
      if (held) {
        await initiator.commit(db, held.gid, now);
        await placePanel(db, caseId, held, now + row.vote_timeout_s * 1000, emit);
      }
    }
    await insertReport(db, {
      id: reportId,
      case_id: caseId,
      reporter_id: input.reporterId,
      reason: input.reason,
      evidence: input.evidence ? JSON.stringify(input.evidence) : null,
      source: input.source,
      dedup_key: input.dedupKey,
      request_hash: requestHash,
      created_at: now,
    });
    return { caseId, reportId, status, intent };
  }

  // ---------- reviewer reservations (try / confirm / cancel) ----------

  /** Everyone who may not sit on this case: reporters, the author, anyone already seated, and for an appeal the first round's panel. */
  async function excludedFor(db: ReportDb, c: CaseRow): Promise<number[]> {
    const caseIds = c.appeal_of ? [c.id, c.appeal_of] : [c.id];
    const [reporters, seated] = await Promise.all([
      db.selectFrom("reports").select("reporter_id").where("case_id", "in", caseIds).execute(),
      db.selectFrom("panel").select("reviewer_id").where("case_id", "in", caseIds).execute(),
    ]);
    const ids = new Set<number>([Number(c.target_author_id)]);
    for (const r of reporters) ids.add(Number(r.reporter_id));
    for (const s of seated) ids.add(Number(s.reviewer_id));
    return [...ids];
  }

  interface Intent {
    /** The TCC transaction's gid: `<caseId>:<attempt>`. */
    reservationId: string;
    count: number;
    exclude: number[];
  }

  /**
   * Records, in the caller's transaction, that a seating transaction is starting, so no second one
   * starts for the case while it is in flight, and a crash leaves something the sweeper settles.
   */
  async function intendToSeat(db: ReportDb, c: CaseRow, exclude: number[]): Promise<Intent | null> {
    const intent = seatingIntent(c, exclude);
    if (intent) await updateCase(db, c.id, intentColumns(c, intent, clock.now()));
    return intent;
  }

  /** The seating transaction a case needs next, if it needs one and has none in flight. */
  function seatingIntent(c: CaseRow, exclude: number[]): Intent | null {
    if (!isOpen(c.status) || c.reservation_id || c.seats_owed <= 0) return null;
    return { reservationId: `${c.id}:${c.attempts + 1}`, count: c.seats_owed, exclude };
  }

  function intentColumns(c: CaseRow, intent: Intent, now: number) {
    return { reservation_id: intent.reservationId, reservation_at: now, attempts: c.attempts + 1, updated_at: now };
  }

  /** The seating transaction's try: the reviewer service holds a panel drawn for the case. */
  function tryPanel(gid: string, caseId: string, count: number, exclude: number[]): Promise<ChooseResult> {
    return tcc.tryBranch<ChooseResult>(gid, { action: "reviewer.tryChoose", confirm: "reviewer.confirm", cancel: "reviewer.cancel", payload: { caseId, count, exclude } });
  }

  /**
   * A report through the API that opens a case: its panel is held first (the seating transaction's
   * try), then the case opens with the report, the panel and the commit decision in one local
   * transaction — the case written once instead of three times. Answers null, for the caller to file
   * the report the ordinary way, when it will not open a case (its key was used, a case is open on the
   * target, its type is unknown) or its transaction was refused (the coordinator's query back came
   * first, or a case opened on the target meanwhile) — the hold given back. When that transaction
   * found the key used or a case open, it filed the report there and the hold is given back. A hold
   * that cannot be had files the report now and leaves the seating to the sweeper.
   */
  async function fileSeated(input: NewReport, ctx: Ctx<unknown>) {
    const policy = await policyOf(input.reportType);
    if (!policy || (await reportedOrOpen(host.db, input.dedupKey, openKey(input.target.type, input.target.id)))) return null;
    const caseId = newId(clock.now());
    const gid = `${caseId}:1`;
    const chosen = await tryPanel(gid, caseId, policyFromRow(policy).panelSize, [input.reporterId, input.target.authorId]).catch(async (err) => {
      await abandon(gid);
      if ((err as AppError).type !== "NOT_ENOUGH_REVIEWERS") host.loggerFor(ctx).warn({ err, caseId }, "panel not held; the sweeper seats the case");
      return null;
    });
    if (!chosen) {
      const filed = await retryOnUniqueViolation(() => host.tx((trx, emit) => fileReport(trx, input, emit, "later")));
      return { caseId: filed.caseId, reportId: filed.reportId, status: filed.status };
    }
    const filed = await host.tx((trx, emit) => fileReport(trx, input, emit, { caseId, gid, chosen, policy })).catch(async (err) => {
      await abandon(gid);
      // Refused: the coordinator's query back came first; a unique violation: the same report, or a case
      // on the target, filed meanwhile (the ordinary path then answers it or joins the case).
      if ((err as AppError).type === "TX_ROLLED_BACK" || isUniqueViolation(err)) return null;
      throw err;
    });
    if (!filed) return null;
    // Committed here; if telling the coordinator fails, its query back finds the commit.
    await tcc.commit(gid).catch((err) => host.logger.warn({ err, gid }, "commit not delivered to the coordinator; it will ask"));
    return { caseId, reportId: filed.reportId, status: filed.status };
  }

  /** Seats a held panel on the case (with the draw that chose it) and invites each reviewer. */
  async function placePanel(db: ReportDb, caseId: string, held: { gid: string; chosen: ChooseResult }, deadline: number, emit: Emit) {
    const at = clock.now();
    const { chosen } = held;
    await insertSeats(
      db,
      chosen.reviewers.map((reviewerId) => ({
        case_id: caseId,
        reviewer_id: reviewerId,
        state: "INVITED" as const,
        invited_at: at,
        deadline_at: deadline,
        decision: null,
        comment: null,
        voted_at: null,
      })),
    );
    await insertDraw(db, {
      reservation_id: held.gid,
      case_id: caseId,
      seed: chosen.seed,
      candidates: JSON.stringify(chosen.candidates),
      reviewers: JSON.stringify(chosen.reviewers),
      drawn_at: at,
    });
    for (const reviewerId of chosen.reviewers) {
      const invited: TaskInvited = { caseId, reviewerId, deadlineAt: deadline };
      emit(ReportEvents.invited, invited, `task-invited:${caseId}:${reviewerId}`);
    }
  }

  /**
   * Fills a case's empty seats as a TCC transaction through the coordinator: the reviewer service's
   * try holds the drawn reviewers; the seats are written here in the same local transaction as the
   * commit decision; the coordinator then confirms (or, on any failure, cancels) the hold. A crash
   * anywhere is settled by the coordinator asking `txDecision`. Returns whether seats were filled.
   */
  async function seat(caseId: string, given?: Intent): Promise<boolean> {
    const intent =
      given ??
      (await host.tx(async (trx) => {
        const c = await lockCase(trx, caseId);
        return c ? intendToSeat(trx, c, await excludedFor(trx, c)) : null;
      }));
    if (!intent) return false;
    const gid = intent.reservationId;
    let chosen: ChooseResult;
    try {
      chosen = await tryPanel(gid, caseId, intent.count, intent.exclude);
    } catch (err) {
      await abandon(gid);
      if ((err as AppError).type === "NOT_ENOUGH_REVIEWERS") return false;
      throw err;
    }
    const applied = await host
      .tx(async (trx, emit) => {
        const c = await lockCase(trx, caseId);
        if (!c || c.reservation_id !== gid || !isOpen(c.status)) return false;
        const at = clock.now();
        await initiator.commit(trx, gid, at);
        await placePanel(trx, caseId, { gid, chosen }, at + c.vote_timeout_s * 1000, emit);
        await updateCase(trx, caseId, { status: "VOTING", seats_owed: c.seats_owed - chosen.reviewers.length, reservation_id: null, updated_at: at });
        return true;
      })
      .catch((err) => {
        // The coordinator's query back settled it as rolled back first: its cancel releases the hold.
        if ((err as AppError).type === "TX_ROLLED_BACK") return false;
        throw err;
      });
    if (!applied) {
      await abandon(gid);
      return false;
    }
    // Committed here; if telling the coordinator fails, its query back finds the commit.
    await tcc.commit(gid).catch((err) => host.logger.warn({ err, gid }, "commit not delivered to the coordinator; it will ask"));
    return true;
  }

  /** Rolls a seating transaction back: recorded here first, so a late commit cannot follow; then the coordinator cancels the hold. */
  function abandon(gid: string) {
    return initiator.abandon(host, tcc, gid, clock.now(), releaseCase);
  }

  async function releaseCase(db: ReportDb, gid: string) {
    await db.updateTable("cases").set({ reservation_id: null }).where("reservation_id", "=", gid).execute();
  }

  // ---------- verdicts ----------

  /** Decides the case; `tally`, when the deciding vote changed it, is written with the verdict (one write of the case, not two). */
  async function finalize(db: ReportDb, c: CaseRow, verdict: Verdict, decidedBy: DecidedBy, reason: string | null, emit: Emit, tally?: Tally) {
    if (!canTransition(c.status, verdict)) throw conflict("CASE_DECIDED", `the case is already ${c.status}`);
    const now = clock.now();
    const counted = tally ? { violation_votes: tally.violation, no_violation_votes: tally.noViolation } : {};
    await updateCase(db, c.id, { ...counted, status: verdict, verdict, final_verdict: verdict, decided_at: now, decided_by: decidedBy, decision_reason: reason, open_key: null, updated_at: now });
    if (c.appeal_of && verdict !== "EXPIRED") await updateCase(db, c.appeal_of, { final_verdict: verdict, updated_at: now });
    await releaseOpenSeats(db, c.id);
    const panel = await panelOf(db, c.id);
    const decided: CaseDecided = {
      caseId: c.id,
      reportType: c.report_type,
      target: { type: c.target_type, id: c.target_id, authorId: Number(c.target_author_id) },
      verdict,
      decidedBy,
      decidedAt: now,
      appealOf: c.appeal_of,
      coinsPerVote: c.coins_per_vote,
      coinsPerCoherentVote: c.coins_per_coherent_vote,
      panel: panel.map((p) => ({ reviewerId: Number(p.reviewer_id), state: p.state, decision: p.decision })),
    };
    emit(ReportEvents.decided, decided, `case-decided:${c.id}`);
  }

  // ---------- sweeper ----------

  /** One pass over everything time moves: stuck reservations, missed deadlines, seats to fill, cases to expire. */
  async function tick() {
    const now = clock.now();
    const done = { cancelled: 0, expired: 0, replaced: 0, seated: 0 };
    // Seating transactions this process started and never settled (it was killed mid-way).
    const stale = await host.db
      .selectFrom("cases")
      .select("reservation_id")
      .where(partialTerm(SEATING))
      .where("reservation_at", "<=", now - SEATING_ABANDONED_MS)
      .limit(200)
      .execute();
    for (const r of stale) {
      try {
        await abandon(r.reservation_id!);
        done.cancelled++;
      } catch (err) {
        host.logger.warn({ err, gid: r.reservation_id }, "seating transaction not settled yet; will retry");
      }
    }

    const due = await host.db
      .selectFrom("cases")
      .select("id")
      .where(partialTerm(OPEN_CASES))
      .where("deadline_at", "<=", now)
      .limit(500)
      .execute();
    for (const { id } of due) {
      await host.tx(async (trx, emit) => {
        const c = await lockCase(trx, id);
        if (!c || !isOpen(c.status) || c.deadline_at > clock.now()) return;
        await finalize(trx, c, "EXPIRED", "TIMEOUT", null, emit);
        done.expired++;
      });
    }

    // The late seats first, most overdue first, by their partial index: a cross join keeps SQLite from
    // walking every voting case instead (and a DISTINCT from scanning the whole panel in key order).
    const late = await host.db
      .selectFrom("panel")
      .crossJoin("cases")
      .whereRef("cases.id", "=", "panel.case_id")
      .select("panel.case_id")
      .where("panel.state", "=", INVITED)
      .where("panel.deadline_at", "<=", now)
      .where("cases.status", "=", "VOTING")
      .orderBy("panel.deadline_at")
      .limit(500)
      .execute();
    for (const caseId of new Set(late.map((s) => s.case_id))) done.replaced += await retireLateSeats(caseId);

    const needSeats = await host.db
      .selectFrom("cases")
      .select(["id", "attempts", "reservation_at"])
      .where(partialTerm(OWING_SEATS))
      .where(partialTerm(OPEN_CASES))
      .where("reservation_id", "is", null)
      .limit(200)
      .execute();
    for (const c of needSeats) {
      // Back off on cases that keep finding no reviewers: 1 s, 2 s, 4 s … up to a minute.
      const wait = Math.min(60_000, 1000 * 2 ** Math.max(0, c.attempts - 1));
      if (c.attempts > 0 && c.reservation_at !== null && now - c.reservation_at < wait) continue;
      const seated = await seat(c.id).catch((err) => {
        host.logger.warn({ err, caseId: c.id }, "seating failed; will retry");
        return false;
      });
      if (seated) done.seated++;
    }
    return done;
  }

  /** Seats past their deadline pass to an alternate while the policy has some left, else time out. */
  async function retireLateSeats(caseId: string): Promise<number> {
    return host.tx(async (trx, emit) => {
      const c = await lockCase(trx, caseId);
      if (!c || c.status !== "VOTING") return 0;
      const now = clock.now();
      const panel = await panelOf(trx, caseId);
      const late = panel.filter((p) => p.state === "INVITED" && p.deadline_at <= now);
      const replacedSoFar = panel.filter((p) => p.state === "REPLACED").length;
      let alternatesLeft = c.max_alternates - replacedSoFar;
      let owed = c.seats_owed;
      for (const p of late) {
        const alternate = alternatesLeft > 0;
        if (alternate) {
          alternatesLeft--;
          owed++;
        }
        await trx
          .updateTable("panel")
          .set({ state: alternate ? "REPLACED" : "TIMED_OUT" })
          .where("case_id", "=", caseId)
          .where("reviewer_id", "=", p.reviewer_id)
          .where("state", "=", INVITED)
          .execute();
        const replaced: SeatReplaced = { caseId, reviewerId: Number(p.reviewer_id), alternate };
        emit(ReportEvents.replaced, replaced, `seat-retired:${caseId}:${p.reviewer_id}`);
      }
      if (owed !== c.seats_owed) await updateCase(trx, caseId, { seats_owed: owed, updated_at: now });
      return late.length;
    });
  }

  // ---------- views ----------

  type DrawRow = { seed: string; candidates: string; reviewers: string };

  function caseView(c: CaseRow, panel: PanelRow[], reports: number, viewer: { id: number; operator: boolean }, draws: DrawRow[] = []) {
    const seen = visibility(c.status, viewer.operator);
    const mine = panel.find((p) => Number(p.reviewer_id) === viewer.id);
    return {
      id: c.id,
      reportType: c.report_type,
      target: { type: c.target_type, id: c.target_id, authorId: Number(c.target_author_id) },
      status: c.status,
      round: c.round,
      appealOf: c.appeal_of,
      appealedBy: c.appealed_by,
      reports,
      openedAt: iso(c.opened_at),
      deadlineAt: iso(c.deadline_at),
      decidedAt: c.decided_at === null ? null : iso(c.decided_at),
      verdict: c.verdict,
      finalVerdict: c.final_verdict,
      decidedBy: c.decided_by,
      decisionReason: c.decision_reason,
      rules: { panelSize: c.panel_size, votesToDecide: c.votes_to_decide, maxAlternates: c.max_alternates },
      ...(seen === "NONE"
        ? {}
        : {
            tally: { violation: c.violation_votes, noViolation: c.no_violation_votes },
            panel: panel.map((p) => ({
              ...(seen === "FULL" ? { reviewerId: Number(p.reviewer_id) } : {}),
              state: p.state,
              invitedAt: iso(p.invited_at),
              deadlineAt: iso(p.deadline_at),
              decision: p.decision,
              votedAt: p.voted_at === null ? null : iso(p.voted_at),
            })),
          }),
      ...(seen === "FULL"
        ? { draws: draws.map((d) => ({ seed: d.seed, reviewers: JSON.parse(d.reviewers), candidates: JSON.parse(d.candidates) })) }
        : {}),
      ...(mine ? { mySeat: { state: mine.state, deadlineAt: iso(mine.deadline_at), decision: mine.decision } } : {}),
    };
  }

  async function loadView(id: string, viewer: { id: number; operator: boolean }) {
    const c = await findCase(host.db, id);
    if (!c) throw notFound("CASE_NOT_FOUND", `no case ${id}`);
    const full = visibility(c.status, viewer.operator) === "FULL";
    const [panel, reports, draws] = await Promise.all([
      panelOf(host.db, id),
      countReports(host.db, id),
      full ? drawsOf(host.db, id) : [],
    ]);
    return caseView(c, panel, reports, viewer, draws);
  }

  return {
    name: "report",
    settings: { routes: routesWithSchemas(reportRoutes, C) },
    actions: {
      putPolicy: action(C.putPolicy, async (ctx) => {
        const operator = requireRole(ctx, "operator");
        const { reportType, ...p } = ctx.params;
        const problem = policyProblem(p);
        if (problem) throw badRequest("INVALID_POLICY", `${problem.field} ${problem.message}`, problem.field);
        const now = clock.now();
        const row = {
          report_type: reportType,
          panel_size: p.panelSize,
          votes_to_decide: p.votesToDecide,
          vote_timeout_s: p.voteTimeoutSeconds,
          case_timeout_s: p.caseTimeoutSeconds,
          max_alternates: p.maxAlternates,
          coins_per_vote: p.coinsPerVote,
          coins_per_coherent_vote: p.coinsPerCoherentVote,
          appeal_window_s: p.appealWindowSeconds,
          updated_at: now,
        };
        await host.tx(async (trx) => {
          const existing = await trx.selectFrom("policies").select("report_type").where("report_type", "=", reportType).executeTakeFirst();
          if (existing) await trx.updateTable("policies").set(row).where("report_type", "=", reportType).execute();
          else await trx.insertInto("policies").values(row).execute();
          await writeAudit(trx, operator.id, "policy.put", `policy:${reportType}`, ctx.params, now);
        });
        policies.drop(reportType);
        ctx.broadcast(POLICY_CHANGED, { reportType });
        return policyFromRow(row);
      }),

      listPolicies: action(C.listPolicies, async () => {
        const rows = await host.db.selectFrom("policies").selectAll().orderBy("report_type").execute();
        return rows.map(policyFromRow);
      }),

      submit: action(C.submit, async (ctx) => {
        const user = requireUser(ctx);
        const key = requireIdempotencyKey(ctx);
        const input: NewReport = { ...ctx.params, reporterId: user.id, source: "api", dedupKey: `api:${user.id}:${key}` };
        const filed = await fileSeated(input, ctx);
        if (filed) return filed;
        const later = await retryOnUniqueViolation(() => host.tx((trx, emit) => fileReport(trx, input, emit, "intent")));
        const seated =
          later.intent &&
          (await seat(later.caseId, later.intent).catch((err) => {
            host.loggerFor(ctx).warn({ err, caseId: later.caseId }, "panel not seated yet; the sweeper retries");
            return false;
          }));
        return { caseId: later.caseId, reportId: later.reportId, status: seated ? "VOTING" : later.status };
      }),

      get: action(C.get, async (ctx) => {
        const user = requireUser(ctx);
        return loadView(ctx.params.id, { id: user.id, operator: hasRole(user, "operator") });
      }),

      list: action(C.list, async (ctx) => {
        const user = requireUser(ctx);
        const operator = hasRole(user, "operator");
        const { targetType, targetId, status, limit, cursor } = ctx.params;
        const reporterId = ctx.params.reporterId === "me" ? user.id : ctx.params.reporterId;
        if (reporterId !== undefined && reporterId !== user.id && !operator)
          throw forbidden("FORBIDDEN", "only operators may list another user's reports");
        if (targetId !== undefined && targetType === undefined)
          throw badRequest("VALIDATION_FAILED", "targetType is required with targetId", "targetType");
        let q = host.db.selectFrom("cases").selectAll();
        if (targetType) q = q.where("target_type", "=", targetType);
        if (targetId) q = q.where("target_id", "=", targetId);
        if (status) {
          q = q.where("status", "=", status);
          // A decided status is read from the index over decided cases (its condition named as the index
          // has it); open cases are the newest, found first walking back by id.
          if (!isOpen(status)) q = q.where(partialTerm(DECIDED_CASES));
        }
        if (reporterId !== undefined)
          q = q.where("id", "in", (eb) => eb.selectFrom("reports").select("case_id").where("reporter_id", "=", reporterId));
        else if (!operator && !targetType)
          throw badRequest("VALIDATION_FAILED", "filter by target (targetType, targetId) or reporterId=me", "reporterId");
        if (cursor) q = q.where("id", "<", cursor);
        const rows = await q.orderBy("id", "desc").limit(limit + 1).execute();
        const page = rows.slice(0, limit);
        const items = page.map((c) => caseView(c, [], 0, { id: user.id, operator }));
        return { items, nextCursor: rows.length > limit ? page[page.length - 1].id : null };
      }),

      tasks: action(C.tasks, async (ctx) => {
        const user = requireUser(ctx);
        const now = clock.now();
        const seats = await host.db
          .selectFrom("panel")
          .innerJoin("cases", "cases.id", "panel.case_id")
          .select(["cases.id", "cases.report_type", "cases.target_type", "cases.target_id", "cases.round", "panel.deadline_at", "panel.invited_at"])
          .where("panel.reviewer_id", "=", user.id)
          .where("panel.state", "=", INVITED)
          .where("panel.deadline_at", ">", now)
          .where("cases.status", "=", "VOTING")
          .orderBy("panel.deadline_at")
          .limit(100)
          .execute();
        const reasons = seats.length
          ? await host.db.selectFrom("reports").select(["case_id", "reason"]).where("case_id", "in", seats.map((s) => s.id)).orderBy("created_at").execute()
          : [];
        return seats.map((s) => ({
          caseId: s.id,
          reportType: s.report_type,
          round: s.round,
          target: { type: s.target_type, id: s.target_id },
          invitedAt: iso(s.invited_at),
          deadline: iso(s.deadline_at),
          ...firstReasons(reasons.filter((r) => r.case_id === s.id).map((r) => r.reason)),
        }));
      }),

      vote: action(C.vote, async (ctx) => {
        const user = requireUser(ctx);
        const { id, decision, comment } = ctx.params;
        const answer = await host.tx(async (trx, emit) => {
          const c = await lockCase(trx, id);
          if (!c) throw notFound("CASE_NOT_FOUND", `no case ${id}`);
          const now = clock.now();
          // The common case in one statement: an invited seat, in time, on a voting case. Only a
          // refused vote reads the seat to say why.
          const cast = c.status === "VOTING" && (await castVote(trx, id, user.id, decision, comment ?? null, now));
          if (!cast) {
            const member = await trx.selectFrom("panel").selectAll().where("case_id", "=", id).where("reviewer_id", "=", user.id).executeTakeFirst();
            const refusal = voteRefusal(c.status, member && { state: member.state, deadlineAt: member.deadline_at }, now);
            throw refusal ? new AppError(refusal.status, refusal.code, refusal.message) : conflict("VOTE_NOT_CAST", "the vote could not be cast");
          }
          const tally = addVote({ violation: c.violation_votes, noViolation: c.no_violation_votes }, decision);
          const verdict = verdictOf(tally, c.votes_to_decide);
          if (verdict) await finalize(trx, c, verdict, "PANEL", null, emit, tally);
          else await countVotes(trx, id, tally, now);
          return { caseId: id, decision, votedAt: iso(now), caseStatus: verdict ?? c.status };
        });
        counted.votes.inc({ decision });
        return answer;
      }),

      decide: action(C.decide, async (ctx) => {
        const operator = requireRole(ctx, "operator");
        const { id, verdict, reason } = ctx.params;
        await host.tx(async (trx, emit) => {
          const c = await lockCase(trx, id);
          if (!c) throw notFound("CASE_NOT_FOUND", `no case ${id}`);
          await finalize(trx, c, verdict, "OPERATOR", reason, emit);
          await writeAudit(trx, operator.id, "case.decide", `case:${id}`, { verdict, reason }, clock.now());
        });
        return loadView(id, { id: operator.id, operator: true });
      }),

      appeal: action(C.appeal, async (ctx) => {
        const user = requireUser(ctx);
        const { id, reason } = ctx.params;
        const appeal = await host.tx(async (trx, emit) => {
          const c = await lockCase(trx, id);
          if (!c) throw notFound("CASE_NOT_FOUND", `no case ${id}`);
          const now = clock.now();
          const refusal = appealRefusal(
            {
              status: c.status,
              round: c.round,
              decidedBy: c.decided_by,
              appealedBy: c.appealed_by,
              decidedAt: c.decided_at,
              targetAuthorId: Number(c.target_author_id),
              appealWindowSeconds: c.appeal_window_s,
            },
            user.id,
            now,
          );
          if (refusal) throw new AppError(refusal.status, refusal.code, refusal.message);
          const seats = appealPanel(c.panel_size);
          const newCaseId = newId(now);
          const appealCase: CaseRow = {
            ...c,
            ...freshCase(now),
            id: newCaseId,
            round: 2,
            appeal_of: c.id,
            open_key: null,
            panel_size: seats.panelSize,
            votes_to_decide: seats.votesToDecide,
            seats_owed: seats.panelSize,
            deadline_at: now + (c.deadline_at - c.opened_at),
          };
          await insertCase(trx, appealCase);
          await insertReport(trx, {
            id: newId(now),
            case_id: newCaseId,
            reporter_id: user.id,
            reason,
            evidence: null,
            source: "appeal",
            dedup_key: `appeal:${c.id}`,
            request_hash: "",
            created_at: now,
          });
          await updateCase(trx, c.id, { appealed_by: newCaseId, updated_at: now });
          emit(ReportEvents.opened, { caseId: newCaseId, reportType: c.report_type, target: { type: c.target_type, id: c.target_id }, round: 2 }, `case-opened:${newCaseId}`);
          // The intent is taken here, so the sweeper cannot start seating the same case first.
          return { id: newCaseId, intent: await intendToSeat(trx, appealCase, await excludedFor(trx, appealCase)) };
        });
        const appealId = appeal.id;
        const seated = await seat(appealId, appeal.intent ?? undefined).catch((err) => {
          host.loggerFor(ctx).warn({ err, caseId: appealId }, "appeal panel not seated yet; the sweeper retries");
          return false;
        });
        return { caseId: appealId, appealOf: id, status: seated ? "VOTING" : "OPEN" };
      }),

      audit: action(C.audit, async (ctx) => {
        requireRole(ctx, "operator");
        const { limit, cursor } = ctx.params;
        let q = host.db.selectFrom("audit").selectAll();
        if (cursor) q = q.where("id", "<", Number(cursor));
        const rows = await q.orderBy("id", "desc").limit(limit + 1).execute();
        const page = rows.slice(0, limit);
        return {
          items: page.map((a) => ({
            id: Number(a.id),
            actorId: Number(a.actor_id),
            action: a.action,
            subject: a.subject,
            detail: JSON.parse(a.detail),
            at: iso(a.at),
          })),
          nextCursor: rows.length > limit ? String(page[page.length - 1].id) : null,
        };
      }),

      /** The coordinator's query back on a seating transaction gone silent. */
      txDecision: initiator.decisionAction(host, () => clock.now(), releaseCase),

      /** Runs the sweeper once now (it also runs every second); answers what it did. */
      tick: action(C.tick, () => sweeper.now()),
    },
    events: {
      [POLICY_CHANGED](ctx: Context<{ reportType: string }>) {
        policies.drop(ctx.params.reportType);
      },
    },
    created() {
      host.onCommitted((events) => {
        for (const e of events) {
          if (e.subject === ReportEvents.opened) counted.opened.inc({ round: (e.data as { round: number }).round });
          else if (e.subject === ReportEvents.decided) {
            const d = e.data as CaseDecided;
            counted.decided.inc({ verdict: d.verdict, decided_by: d.decidedBy });
          } else if (e.subject === ReportEvents.replaced) counted.retired.inc({ alternate: String((e.data as SeatReplaced).alternate) });
        }
      });
      host.consume(ReportEvents.submitted, async (trx, message, emit) => {
        const parsed = ExternalReport.safeParse(message.data);
        if (!parsed.success) {
          // A malformed message can never succeed; redelivering it would only block the subject.
          host.logger.error({ id: message.id, issues: parsed.error.issues }, "rejected malformed external report");
          return;
        }
        const r = parsed.data;
        try {
          // Seated by the sweeper once this transaction commits.
          await fileReport(trx, { ...r, source: `stream:${r.source}`, dedupKey: `stream:${r.source}:${r.externalId}` }, emit, "later");
        } catch (err) {
          if (!(err instanceof AppError) || Number(err.code) >= 500) throw err;
          host.logger.error({ id: message.id, code: err.type, message: err.message }, "rejected external report");
          return;
        }
        sweeper.soon();
      });
      // Who may operate governance is decided in identity; the change belongs in this audit log too.
      host.consume(IdentityEvents.rolesChanged, async (trx, message) => {
        const r = message.data as RolesChanged;
        await writeAudit(trx, r.by, "user.roles", `user:${r.userId}`, { roles: r.roles, previous: r.previous }, r.at);
      });
      host.consume(ReportEvents.audit, async (trx, message) => {
        const a = message.data as AuditRecorded;
        await writeAudit(trx, a.actorId, a.action, a.subject, a.detail, a.at);
      });
    },
    async started() {
      tcc = txClient(this.broker, "report", SEATING_TIMEOUT_MS);
      await host.start();
      sweeper.start();
    },
    async stopped() {
      await sweeper.stop();
      await host.stop();
    },
  };
}

/** The first report's reason, and up to five reasons given, oldest first. */
function firstReasons(all: string[]): { reason: string | null; reasons: string[] } {
  return { reason: all[0] ?? null, reasons: all.slice(0, 5) };
}
