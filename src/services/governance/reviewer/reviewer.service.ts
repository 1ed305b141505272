import { randomBytes, randomInt } from "node:crypto";
import type { ServiceSchema } from "moleculer";
import { iso } from "../../../platform/clock/clock";
import { retryOnUniqueViolation } from "../../../platform/db/db";
import { action, requireRole, requireUser } from "../../../platform/runtime/action";
import { AppError, conflict, notFound } from "../../../platform/runtime/errors";
import { routesWithSchemas } from "../../../platform/gateway/routes";
import type { Platform } from "../../../platform/runtime/platform";
import type { Emit } from "../../../platform/runtime/service-host";
import { PerTransaction } from "../../../platform/runtime/per-transaction";
import { RecentReads } from "../../../platform/runtime/recent-reads";
import { type ProfileChanged, ProfileEvents } from "../../commerce/profile/profile.contract";
import { type AuditRecorded, type CaseDecided, ReportEvents, type SeatReplaced } from "../report/report.contract";
import { type ChooseResult, ReviewerContract as C, reviewerRoutes, type ReviewerView } from "./reviewer.contract";
import {
  accuracyPermille,
  applyOutcome,
  assign,
  type Candidate,
  casesToday,
  DEFAULT_RULES,
  drawPanel,
  effectiveStatus,
  ineligibility,
  PoolIndex,
  profileFactsNeeded,
  type Outcome,
  type PoolRules,
  release,
  type Reviewer,
  weightOf,
} from "./reviewer.domain";
import {
  findReviewer,
  freshReviewer,
  confirmTried,
  lockReviewers,
  saveReviewer,
  copyProfileFacts,
  insertReservation,
  lockReservation,
  setReservationStatus,
  type ReviewerDb,
  reviewerMigrations,
  type ReviewerTables,
  DRAW_KEY_SPACE,
  poolWindow,
  reviewersWithFacts,
  reviewerPage,
  toReviewer,
} from "./reviewer.store";

/** The most rows a draw asks for in one window after its first. */
const POOL_WINDOW = 64;
/** How long the pool rules read are trusted: a change made through another instance applies here within it (at once, by its broadcast). */
const RULES_RECHECK_MS = 1_000;
const RULES_CHANGED = "reviewer.rules.changed";

/** Raised when a reviewer row changed under a draw; the whole try is retried. */
class DrawRace extends Error {}

/** The reviewer pool: enrolment, eligibility, panel draws as TCC reservations, and standing from results. */
export function reviewerService(platform: Platform): ServiceSchema {
  const host = platform.host<ReviewerTables>("reviewer", reviewerMigrations);
  const { clock } = platform;
  /**
   * On SQLite, the pool a draw walks, in memory: the file has one owner, this process, so every write
   * to it passes through here. A server engine's table may be shared by replicas of this service:
   * there draws read it (see `sampleEligible`). The copy can differ from the table for a while after a
   * transaction rolls back (a consumer's batch, say): the save of a drawn reviewer checks the row, and
   * a draw that finds one changed reads its candidates again.
   */
  let memory: PoolIndex | undefined;

  const rulesRow = host.prepare((db, $: { id: number }) => db.selectFrom("rules").select("body").where("id", "=", $.id));

  async function loadRules(db: ReviewerDb): Promise<PoolRules> {
    const row = await rulesRow.first(db, { id: 1 });
    return row ? { ...DEFAULT_RULES, ...JSON.parse(row.body) } : DEFAULT_RULES;
  }

  const rulesRead = new RecentReads<"rules", PoolRules>(clock, RULES_RECHECK_MS);

  /** The rules every draw and outcome applies. */
  async function currentRules(db: ReviewerDb): Promise<PoolRules> {
    return (await rulesRead.get("rules", () => loadRules(db)))!;
  }

  function view(r: Reviewer): ReviewerView {
    const now = clock.now();
    return {
      userId: r.userId,
      status: effectiveStatus(r, now),
      suspendedUntil: effectiveStatus(r, now) === "SUSPENDED" && r.suspendedUntil ? iso(r.suspendedUntil) : null,
      votes: r.votes,
      coherentVotes: r.coherentVotes,
      accuracy: accuracyPermille(r) / 1000,
      weight: weightOf(r),
      noShows: r.noShows,
      openCases: r.openCases,
      casesToday: casesToday(r, now),
    };
  }

  /**
   * Writes a changed reviewer only if nobody changed it since it was read (optimistic, so draws need no
   * table lock), and then its copy in memory at once: a later draw in the same group commit sees it as
   * the table does. `touched` collects who was written or found changed, to be read again if the
   * transaction rolls back.
   */
  async function save(db: ReviewerDb, before: Reviewer, after: Reviewer, touched?: Set<number>) {
    touched?.add(before.userId);
    if (!(await saveReviewer(db, before, after, clock.now()))) throw new DrawRace(`reviewer ${before.userId} changed concurrently`);
    memory?.updateStanding(after);
  }

  /** The seats' outcomes of a consumer's transaction (its whole batch of verdicts), in order, applied just before it commits. */
  const outcomes = new PerTransaction<{ reviewerId: number; outcome: Outcome }[]>(() => []);

  /**
   * Each reviewer's seats released and outcomes counted, in the verdicts' order: the reviewers read
   * (and locked) once and each saved once, however many of the batch's cases they sat on.
   */
  async function applyOutcomes(trx: ReviewerDb): Promise<void> {
    const list = outcomes.take(trx);
    if (!list) return;
    const now = clock.now();
    const rules = await currentRules(trx);
    const read = await lockReviewers(trx, [...new Set(list.map((o) => o.reviewerId))]);
    const standing = new Map(read);
    for (const { reviewerId, outcome } of list) {
      const r = standing.get(reviewerId);
      if (r) standing.set(reviewerId, applyOutcome(release(r), outcome, rules, now));
    }
    for (const [id, before] of read) await save(trx, before, standing.get(id)!);
  }

  /**
   * Runs a transaction that saves reviewers, again when a draw raced (at most six times). After any
   * failure, its transaction rolled back, those it `touched` (wrote, found changed, or drew among) are
   * read again into memory.
   */
  async function withDrawRetry<R>(work: (touched: Set<number>) => Promise<R>): Promise<R> {
    for (let attempt = 0; ; attempt++) {
      const touched = new Set<number>();
      try {
        return await work(touched);
      } catch (err) {
        await reload(touched);
        if (!(err instanceof DrawRace) || attempt >= 5) throw err;
      }
    }
  }

  /** Reads reviewers again from the table into memory (committed rows: outside a transaction, SQLite answers after the one open). */
  async function reload(userIds: Set<number>) {
    if (!memory || userIds.size === 0) return;
    const held = memory;
    try {
      for (const { drawKey, reviewer } of await reviewersWithFacts(host.db, [...userIds])) held.put(drawKey, reviewer);
    } catch (err) {
      // Left as it was: a draw that picks one of them finds the row changed, and reads it again then.
      host.logger.warn({ err, userIds: [...userIds] }, "reviewers not read again into memory");
    }
  }

  /**
   * Eligible candidates for a draw: walks the pool in draw-key order from a random point until it has
   * eight per seat (at least 40) or has seen everyone — in memory, or in the table a window at a time.
   * The cost follows the panel size, not the pool size; draw keys are random, so who registered
   * together is not drawn together.
   */
  async function sampleEligible(db: ReviewerDb, count: number, excluded: ReadonlySet<number>, now: number) {
    const rules = await currentRules(db);
    const wanted = Math.max(count * 8, 40);
    const pivot = randomInt(DRAW_KEY_SPACE);
    const pool = new Map<number, Reviewer>();
    const candidates: Candidate[] = [];
    /** Takes the reviewer if eligible; answers whether more are wanted. */
    const consider = (r: Reviewer) => {
      if (!excluded.has(r.userId) && !ineligibility(r, rules, now)) {
        pool.set(r.userId, r);
        candidates.push({ userId: r.userId, weight: weightOf(r) });
      }
      return candidates.length < wanted;
    };
    if (memory) {
      memory.walk(pivot, consider);
      return { pool, candidates };
    }
    let seen = 0;
    for (const [start, end] of [
      [pivot, DRAW_KEY_SPACE],
      [0, pivot],
    ]) {
      for (let from = start; candidates.length < wanted; ) {
        // A window asks for about as many rows as it takes to find those still wanted, at the share of
        // eligible rows seen so far (rows cost more to read than to find): the number wanted until one is found.
        const limit = candidates.length === 0 ? wanted : Math.min(POOL_WINDOW, Math.ceil(((wanted - candidates.length) * seen) / candidates.length));
        const rows = await poolWindow(db, from, end, limit, now, rules.maxOpenCases, profileFactsNeeded(rules));
        seen += rows.length;
        for (const { reviewer } of rows) consider(reviewer);
        if (rows.length < limit) break;
        from = rows[rows.length - 1].drawKey + 1;
      }
    }
    return { pool, candidates };
  }

  async function copyProfile(db: ReviewerDb, p: ProfileChanged) {
    const kept = await copyProfileFacts(db, p.userId, { account_created_at: p.accountCreatedAt, last_active_at: p.lastActiveAt, last_violation_at: p.lastViolationAt, version: p.version });
    if (kept) memory?.updateFacts(p.userId, { accountCreatedAt: p.accountCreatedAt, lastActiveAt: p.lastActiveAt, lastViolationAt: p.lastViolationAt });
  }

  async function applyToReviewer(db: ReviewerDb, userId: number, change: (r: Reviewer) => Reviewer, touched?: Set<number>) {
    const found = (await lockReviewers(db, [userId])).get(userId);
    if (found) await save(db, found, change(found), touched);
  }

  function audit(emit: Emit, record: AuditRecorded) {
    emit(ReportEvents.audit, record);
  }

  return {
    name: "reviewer",
    settings: { routes: routesWithSchemas(reviewerRoutes, C) },
    // Enrolment grants the role through identity; on a split cluster, wait until a node offers it.
    dependencies: ["identity"],
    actions: {
      putRules: action(C.putRules, async (ctx) => {
        const operator = requireRole(ctx, "operator");
        const now = clock.now();
        const put = await host.tx(async (trx, emit) => {
          const rules: PoolRules = { ...(await loadRules(trx)), ...ctx.params };
          const body = JSON.stringify(rules);
          const existing = await trx.selectFrom("rules").select("id").where("id", "=", 1).executeTakeFirst();
          if (existing) await trx.updateTable("rules").set({ body, updated_at: now }).where("id", "=", 1).execute();
          else await trx.insertInto("rules").values({ id: 1, body, updated_at: now }).execute();
          audit(emit, { actorId: operator.id, action: "reviewer-rules.put", subject: "reviewer-rules", detail: ctx.params, at: now });
          return rules;
        });
        rulesRead.drop("rules");
        ctx.broadcast(RULES_CHANGED, {});
        return put;
      }),

      getRules: action(C.getRules, async (ctx) => {
        requireRole(ctx, "operator");
        return loadRules(host.db);
      }),

      enrol: action(C.enrol, async (ctx) => {
        const user = requireUser(ctx);
        await ctx.call("identity.grantRole", { userId: user.id, role: "reviewer" });
        const now = clock.now();
        // A retry covers a draw-key collision and a concurrent second enrolment alike.
        const enrolled = await retryOnUniqueViolation(() => host.tx(async (trx) => {
          const found = await findReviewer(trx, user.id);
          if (!found) {
            await trx.insertInto("reviewers").values(freshReviewer(user.id, randomInt(DRAW_KEY_SPACE), now)).execute();
            return view((await findReviewer(trx, user.id))!.reviewer);
          }
          const status = effectiveStatus(found.reviewer, now);
          if (status === "SUSPENDED") throw conflict("REVIEWER_SUSPENDED", `suspended until ${iso(found.reviewer.suspendedUntil!)}`);
          if (found.row.status !== "ACTIVE")
            await trx.updateTable("reviewers").set({ status: "ACTIVE", suspended_until: null, updated_at: now }).where("user_id", "=", user.id).execute();
          return view({ ...found.reviewer, status: "ACTIVE", suspendedUntil: null });
        }));
        await reload(new Set([user.id]));
        return enrolled;
      }),

      optOut: action(C.optOut, async (ctx) => {
        const user = requireUser(ctx);
        const optedOut = await host.tx(async (trx) => {
          const found = await findReviewer(trx, user.id);
          if (!found) throw notFound("NOT_ENROLLED", "you are not enrolled as a reviewer");
          await trx.updateTable("reviewers").set({ status: "OPTED_OUT", updated_at: clock.now() }).where("user_id", "=", user.id).execute();
          return view({ ...found.reviewer, status: "OPTED_OUT" });
        });
        await reload(new Set([user.id]));
        return optedOut;
      }),

      me: action(C.me, async (ctx) => {
        const found = await findReviewer(host.db, requireUser(ctx).id);
        if (!found) throw notFound("NOT_ENROLLED", "you are not enrolled as a reviewer");
        // Why no cases come, if none do: the rule this reviewer fails now.
        return { ...view(found.reviewer), notEligibleBecause: ineligibility(found.reviewer, await loadRules(host.db), clock.now()) };
      }),

      list: action(C.list, async (ctx) => {
        requireRole(ctx, "operator");
        const { status, limit, cursor } = ctx.params;
        const rows = await reviewerPage(host.db, status, cursor ? Number(cursor) : undefined, limit + 1);
        const page = rows.slice(0, limit);
        return {
          items: page.map((row) => view(toReviewer(row, row))),
          nextCursor: rows.length > limit ? String(page[page.length - 1].user_id) : null,
        };
      }),

      setStatus: action(C.setStatus, async (ctx) => {
        const operator = requireRole(ctx, "operator");
        const { id, status, days, reason } = ctx.params;
        return withDrawRetry((touched) => host.tx(async (trx, emit) => {
          // Locked: a draw writing the same reviewer meanwhile waits, rather than this write failing.
          const found = (await lockReviewers(trx, [id])).get(id);
          if (!found) throw notFound("NOT_ENROLLED", `user ${id} is not enrolled as a reviewer`);
          if (found.status === "OPTED_OUT") throw conflict("REVIEWER_OPTED_OUT", "the reviewer opted out; only they can enrol again");
          const now = clock.now();
          const rules = await loadRules(trx);
          const after: Reviewer =
            status === "SUSPENDED"
              ? { ...found, status, suspendedUntil: now + (days ?? rules.suspensionDays) * 86_400_000 }
              : { ...found, status, suspendedUntil: null, consecutiveNoShows: 0 };
          await save(trx, found, after, touched);
          audit(emit, { actorId: operator.id, action: `reviewer.${status === "SUSPENDED" ? "suspend" : "reinstate"}`, subject: `reviewer:${id}`, detail: { days, reason }, at: now });
          return view(after);
        }));
      }),

      stats: action(C.stats, async () => {
        const rows = await host.db.selectFrom("reviewers").select(["status"]).select((eb) => eb.fn.countAll().as("n")).groupBy("status").execute();
        return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
      }),

      tryChoose: action(C.tryChoose, async (ctx) => {
        const { caseId, count, exclude } = ctx.params;
        // The barrier answers a repeated try with its first draw and refuses one arriving after its cancel.
        const outcome = await withDrawRetry((touched) =>
          host.branch(ctx.meta, async (trx, _emit, { gid }): Promise<ChooseResult> => {
            const now = clock.now();
            const { pool, candidates } = await sampleEligible(trx, count, new Set(exclude), now);
            // Should one of them turn out changed, all the candidates are read again before the next try.
            for (const id of pool.keys()) touched.add(id);
            if (candidates.length < count)
              throw new AppError(409, "NOT_ENOUGH_REVIEWERS", `${candidates.length} eligible reviewers, ${count} needed`);
            const seed = randomBytes(16).toString("hex");
            const reviewers = drawPanel(candidates, count, seed, new Set());
            for (const id of reviewers) await save(trx, pool.get(id)!, assign(pool.get(id)!, now), touched);
            await insertReservation(trx, {
              id: gid,
              case_id: caseId,
              status: "TRIED",
              reviewers: JSON.stringify(reviewers),
              seed,
              created_at: now,
              updated_at: now,
            });
            return { reservationId: gid, reviewers, seed, candidates };
          }),
        );
        return outcome.result!;
      }),

      confirm: action(C.confirm, async (ctx) => {
        await host.branch(ctx.meta, async (trx, _emit, { gid }) => {
          // The held reservation confirmed in one statement; only one that was not held is read, to say why.
          if (await confirmTried(trx, gid, clock.now())) return;
          const r = await lockReservation(trx, gid);
          if (!r) throw notFound("RESERVATION_UNKNOWN", `no reservation ${gid} to confirm`);
          if (r.status === "CANCELLED") throw conflict("RESERVATION_CANCELLED", `reservation ${gid} was cancelled`);
        });
        return { reservationId: ctx.meta.tx!.gid, status: "CONFIRMED" };
      }),

      cancel: action(C.cancel, async (ctx) => {
        // A cancel with no try before it is recorded by the barrier and does nothing here.
        await withDrawRetry((touched) =>
          host.branch(ctx.meta, async (trx, _emit, { gid }) => {
            const r = await lockReservation(trx, gid);
            if (r?.status !== "TRIED") return;
            for (const userId of JSON.parse(r.reviewers) as number[]) await applyToReviewer(trx, userId, (rv) => release(rv), touched);
            await setReservationStatus(trx, gid, "CANCELLED", clock.now());
          }),
        );
        const gid = ctx.meta.tx!.gid;
        const r = await host.db.selectFrom("reservations").select("status").where("id", "=", gid).executeTakeFirst();
        return { reservationId: gid, status: r?.status ?? "CANCELLED" };
      }),
    },
    events: {
      [RULES_CHANGED]() {
        rulesRead.drop("rules");
      },
    },
    created() {
      host.consume(ProfileEvents.changed, (trx, message) => copyProfile(trx, message.data as ProfileChanged));
      host.consume(ReportEvents.replaced, async (trx, message) => {
        const e = message.data as SeatReplaced;
        const now = clock.now();
        const rules = await currentRules(trx);
        await applyToReviewer(trx, e.reviewerId, (r) => applyOutcome(release(r), "NO_SHOW", rules, now));
      });
      host.consume(
        ReportEvents.decided,
        async (trx, message) => {
          const e = message.data as CaseDecided;
          // Seats that held the reviewer until the verdict (INVITED: a verdict published before seats were released).
          const seated = e.panel.filter((seat) => seat.state === "VOTED" || seat.state === "RELEASED" || seat.state === "INVITED");
          for (const seat of seated) {
            const outcome: Outcome =
              seat.decision === null || e.verdict === "EXPIRED" ? "ABSTAINED" : (seat.decision === "VIOLATION") === (e.verdict === "UPHELD") ? "COHERENT" : "INCOHERENT";
            outcomes.of(trx).push({ reviewerId: seat.reviewerId, outcome });
          }
        },
        { beforeCommit: (trx) => applyOutcomes(trx) },
      );
    },
    async started() {
      await host.start();
      if (host.store.dialect === "sqlite") {
        const loaded = new PoolIndex();
        for (const { drawKey, reviewer } of await reviewersWithFacts(host.db)) loaded.put(drawKey, reviewer);
        memory = loaded;
      }
    },
    async stopped() {
      await host.stop();
    },
  };
}
