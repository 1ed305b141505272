import type { Kysely, Migration } from "kysely";
import { skippingTaken } from "../db/db";
import { prepare } from "../db/prepared";
import { AppError, badRequest, conflict } from "../runtime/errors";
import type { BranchOp } from "./tx.domain";

/**
 * The branch barrier every participant keeps in its own database (DTM's barrier table): one row per
 * (global transaction, branch, operation), written in the same local transaction as the branch's
 * effect. Claiming the row is what makes a branch call idempotent and order-proof:
 *
 * - repeat: a second try/confirm/cancel finds its row taken and does nothing (a try answers its
 *   first result again);
 * - empty compensation: a cancel whose try never ran claims the try's row on its behalf and does nothing;
 * - hanging: a try arriving after that cancel finds its row taken by the cancel and is refused.
 *
 * Initiators use the same table for their commit-or-rollback decision, so the coordinator's query
 * back ("did you commit?") and a late local commit cannot both win.
 */
export const barrierMigrations: Record<string, Migration> = {
  "0000_platform_tx_barrier": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("tx_barrier")
        .addColumn("gid", "varchar(128)", (c) => c.notNull())
        .addColumn("branch_id", "varchar(16)", (c) => c.notNull())
        .addColumn("op", "varchar(16)", (c) => c.notNull())
        /** The operation that claimed the row: differs from `op` when a cancel claimed its try's row. */
        .addColumn("origin", "varchar(16)", (c) => c.notNull())
        .addColumn("result", "text")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("tx_barrier_pk", ["gid", "branch_id", "op"])
        .execute();
    },
  },
};

export interface BarrierTables {
  tx_barrier: { gid: string; branch_id: string; op: string; origin: string; result: string | null; created_at: number };
}

/** What the coordinator puts in `ctx.meta.tx` when it calls a branch. */
export interface BranchCall {
  gid: string;
  branchId: string;
  op: BranchOp;
}

export interface BarrierOutcome<R> {
  /** False for a repeat, an empty compensation, or a confirm already done: the work did not run. */
  ran: boolean;
  /** The work's result, or for a repeated try the first try's result. */
  result: R | undefined;
}

const FORWARD: Partial<Record<BranchOp, BranchOp>> = { cancel: "try", compensate: "action" };

/** The branch call a coordinator made, from the call's meta; a direct call without one is refused. */
export function branchCallOf(meta: { tx?: BranchCall }): BranchCall {
  if (!meta.tx?.gid || !meta.tx.branchId || !meta.tx.op) throw badRequest("TX_BRANCH_REQUIRED", "this action is a transaction branch: call it through the coordinator");
  return meta.tx;
}

/** A branch call's statements, prepared once (see prepared.ts). */
const q = {
  claim: prepare((db: Kysely<BarrierTables>, $: { gid: string; branchId: string; op: string; origin: string; now: number }) =>
    skippingTaken(db, db.insertInto("tx_barrier").values({ gid: $.gid, branch_id: $.branchId, op: $.op, origin: $.origin, result: null, created_at: $.now })),
  ),
  keep: prepare((db: Kysely<BarrierTables>, $: { gid: string; branchId: string; op: BranchOp; result: string }) =>
    db.updateTable("tx_barrier").set({ result: $.result }).where("gid", "=", $.gid).where("branch_id", "=", $.branchId).where("op", "=", $.op),
  ),
  row: prepare((db: Kysely<BarrierTables>, $: { gid: string; branchId: string; op: string }) =>
    db.selectFrom("tx_barrier").select(["origin", "result"]).where("gid", "=", $.gid).where("branch_id", "=", $.branchId).where("op", "=", $.op),
  ),
};

/** Runs a branch's local work behind the barrier, inside the caller's transaction `trx`. */
export async function throughBarrier<R>(
  trx: Kysely<any>,
  call: BranchCall,
  now: number,
  work: () => Promise<R>,
): Promise<BarrierOutcome<R>> {
  const { gid, branchId, op } = call;
  const claim = async (rowOp: BranchOp, origin: BranchOp) => (await q.claim.run(trx, { gid, branchId, op: rowOp, origin, now })) > 0;
  const forwardOf = FORWARD[op];
  if (forwardOf) {
    // Claiming the forward row first: if it was free, the forward call never ran here.
    const emptyCompensation = await claim(forwardOf, op);
    const first = await claim(op, op);
    if (emptyCompensation || !first) return { ran: false, result: undefined };
    return { ran: true, result: await work() };
  }
  if (!(await claim(op, op))) {
    if (op === "confirm") return { ran: false, result: undefined };
    const row = (await q.row.first(trx, { gid, branchId, op }))!;
    if (row.origin !== op) throw conflict("TX_BRANCH_CANCELLED", `branch ${gid}/${branchId} was cancelled before its ${op} arrived`);
    return { ran: false, result: row.result === null ? undefined : (JSON.parse(row.result) as R) };
  }
  const result = await work();
  if (result !== undefined) await q.keep.run(trx, { gid, branchId, op, result: JSON.stringify(result) });
  return { ran: true, result };
}

/** A try's answer from the barrier's set form: it ran (or had run before), or it was refused and changed nothing. */
export type TryAnswer = { ok: true; ran: boolean } | { ok: false; status: number; code: string; message: string; field?: string };

/** Another claim came between the set form's read of the rows and its write: run the tries one by one. */
export class BarrierRace extends Error {}

const tryRows = prepare((db: Kysely<BarrierTables>, $: { branchId: string; gids: string[] }) =>
  db.selectFrom("tx_barrier").select(["gid", "origin"]).where("branch_id", "=", $.branchId).where("op", "=", "try").where("gid", "in", $.gids),
);
const claimTries = prepare((db: Kysely<BarrierTables>, $: { branchId: string; gids: string[]; now: number }) =>
  skippingTaken(db, db.insertInto("tx_barrier").values($.gids.map((gid) => ({ gid, branch_id: $.branchId, op: "try", origin: "try", result: null, created_at: $.now })))),
);

/**
 * `throughBarrier` for many tries of one branch id at once, inside `trx`: one read of their rows, `work`
 * once for the tries not seen before, one write claiming the rows of those it accepted. A repeat
 * answers ran: false, a try whose cancel came first is refused (TX_BRANCH_CANCELLED). `work` answers,
 * in order, nothing for a try it applied or the AppError refusing one; a refused try must have changed
 * nothing, and its row stays free (as a failed try's row rolls back). Results are not kept, so this is
 * for tries whose repeat needs no answer but "done". Throws BarrierRace when a concurrent claim got in
 * between (or a gid comes twice): the caller's transaction rolls back and it goes one by one.
 */
export async function throughBarrierTries<P extends { gid: string }>(
  trx: Kysely<any>,
  branchId: string,
  tries: readonly P[],
  now: number,
  work: (fresh: P[]) => Promise<(AppError | undefined)[]>,
): Promise<TryAnswer[]> {
  const gids = tries.map((t) => t.gid);
  if (new Set(gids).size !== gids.length) throw new BarrierRace("a gid twice in one set of tries");
  const seen = new Map((await tryRows.all(trx, { branchId, gids })).map((r) => [r.gid, r.origin]));
  const fresh = tries.filter((t) => !seen.has(t.gid));
  const refusals = fresh.length > 0 ? await work(fresh) : [];
  // An answer missing would count as applied and claim a row for a try that changed nothing.
  if (refusals.length !== fresh.length) throw new Error(`the work answered ${refusals.length} of ${fresh.length} tries`);
  const accepted = fresh.filter((_, i) => refusals[i] === undefined).map((t) => t.gid);
  if (accepted.length > 0 && (await claimTries.run(trx, { branchId, gids: accepted, now })) !== accepted.length) throw new BarrierRace("a try's row was claimed meanwhile");
  const freshAnswers = new Map(fresh.map((t, i) => [t.gid, refusals[i]]));
  return tries.map((t): TryAnswer => {
    const origin = seen.get(t.gid);
    if (origin === "try") return { ok: true, ran: false };
    if (origin !== undefined) return { ok: false, status: 409, code: "TX_BRANCH_CANCELLED", message: `branch ${t.gid}/${branchId} was cancelled before its try arrived` };
    const refusal = freshAnswers.get(t.gid);
    return refusal === undefined ? { ok: true, ran: true } : refusedAnswer(refusal);
  });
}

/** An AppError as a try's answer. */
export function refusedAnswer(err: AppError): TryAnswer {
  const field = (err.data as { field?: string } | undefined)?.field;
  return { ok: false, status: err.code, code: err.type, message: err.message, ...(field === undefined ? {} : { field }) };
}

export type Decision = "COMMITTED" | "ROLLED_BACK";

const DECISION_BRANCH = "00";

/**
 * The initiator's commit, in the local transaction that makes its own changes: refused when the
 * coordinator's query back already rolled the transaction back (the local changes roll back with it).
 */
export async function recordCommit(trx: Kysely<any>, gid: string, now: number): Promise<void> {
  if ((await q.claim.run(trx, { gid, branchId: DECISION_BRANCH, op: "decide", origin: "commit", now })) > 0) return;
  if ((await decisionOf(trx, gid)) === "ROLLED_BACK") throw new AppError(409, "TX_ROLLED_BACK", `transaction ${gid} was already rolled back`);
}

/**
 * The initiator's answer to "did you commit?": the recorded decision, or, when there is none yet,
 * a rollback recorded now so a commit arriving later is refused.
 */
export async function settleDecision(trx: Kysely<any>, gid: string, now: number): Promise<Decision> {
  if ((await q.claim.run(trx, { gid, branchId: DECISION_BRANCH, op: "decide", origin: "rollback", now })) > 0) return "ROLLED_BACK";
  return decisionOf(trx, gid);
}

async function decisionOf(trx: Kysely<any>, gid: string): Promise<Decision> {
  const row = (await q.row.first(trx, { gid, branchId: DECISION_BRANCH, op: "decide" }))!;
  return row.origin === "commit" ? "COMMITTED" : "ROLLED_BACK";
}
