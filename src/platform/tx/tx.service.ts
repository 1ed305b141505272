import type { ExpressionBuilder } from "kysely";
import type { ServiceBroker, ServiceSchema } from "moleculer";
import { iso } from "../clock/clock";
import { forUpdateOn, skippingTaken } from "../db/db";
import { routesWithSchemas } from "../gateway/routes";
import { action, requireRole } from "../runtime/action";
import { badRequest, conflict, notFound } from "../runtime/errors";
import { crashPoint } from "../runtime/faults";
import { Sweeper } from "../runtime/sweeper";
import type { Platform } from "../runtime/platform";
import type { Decision } from "./barrier";
import { TX_SUBMITTED, type SagaSubmitted } from "./tx.client";
import { TxContract as C, type TxView, txRoutes } from "./tx.contract";
import {
  afterFailure,
  type BranchOp,
  branchIdOf,
  canCompensate,
  canTransition,
  DEFAULT_RETRY,
  isBusinessRefusal,
  isFinal,
  nextStep,
  type RetryPolicy,
  stateAfter,
  type TxKind,
  type TxState,
} from "./tx.domain";
import { type BranchRow, type TransactionRow, type TxDb, txMigrations, type TxTables } from "./tx.store";

const TICK_MS = 500;
/** How long a coordinator node holds a transaction it drives before another node may take it over. */
const LEASE_MS = 15_000;

/**
 * The longest forward answer (a try's or a saga step's, as JSON) the log keeps whole for the operator's
 * view; of a longer one it keeps the size. The coordinator never reads an answer back (a repeated try
 * gets the first answer from its participant's barrier), and a panel draw's answer, its candidate list,
 * is a kilobyte and more per case.
 */
const RESULT_KEPT_CHARS = 512;

function keptResult(result: unknown): string | null {
  if (result === undefined) return null;
  const json = JSON.stringify(result);
  return json.length <= RESULT_KEPT_CHARS ? json : JSON.stringify({ omittedChars: json.length });
}

/** A transaction's rows as its driver took them with the lease. */
interface Held {
  tx: TransactionRow;
  branches: BranchRow[];
}

/**
 * The transaction coordinator (the Seata / DTM role). Sagas and TCC transactions are logged in its
 * own database before any branch is called, so a coordinator killed at any point finds every
 * unfinished transaction on restart and drives it on: forward, or back through compensation. Every
 * branch call is retried with backoff; past the policy's attempts the transaction waits STUCK for an
 * operator.
 */
export function txService(platform: Platform): ServiceSchema {
  const host = platform.host<TxTables>("tx", txMigrations);
  const { clock } = platform;
  const retry: RetryPolicy = { ...DEFAULT_RETRY, maxAttempts: Math.max(1, platform.config.txMaxAttempts) };
  const owner = platform.nodeId;
  const driving = new Map<string, Promise<void>>();
  let broker: ServiceBroker;
  const sweeper = new Sweeper(() => tick(), TICK_MS, host.logger, "transaction sweep");

  const metric = {
    started: platform.metrics.counter("bazaar_tx_started_total", "global transactions started", ["kind"]),
    committed: platform.metrics.counter("bazaar_tx_committed_total", "global transactions committed", ["kind"]),
    compensated: platform.metrics.counter("bazaar_tx_compensated_total", "global transactions rolled back or compensated", ["kind"]),
    stuck: platform.metrics.counter("bazaar_tx_stuck_total", "global transactions left for an operator", ["kind"]),
    duration: platform.metrics.histogram("bazaar_tx_duration_seconds", "start to final state", ["kind", "outcome"], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 300]),
  };

  const db = (): TxDb => host.db;
  /** A lease this node may take: free, expired, its own, or held by a node the registry no longer knows (it died). */
  const leaseTakable = (eb: ExpressionBuilder<TxTables, "transactions">, $: { now: number; owner: string; live: string[] }) =>
    eb.or([eb("lease_until", "is", null), eb("lease_until", "<", $.now), eb("lease_owner", "=", $.owner), eb("lease_owner", "not in", $.live)]);
  /** The statements every transaction passes through, prepared once (see prepared.ts). */
  const q = {
    load: host.prepare((d, $: { gid: string }) => d.selectFrom("transactions").selectAll().where("gid", "=", $.gid)),
    branches: host.prepare((d, $: { gid: string }) => d.selectFrom("branches").selectAll().where("gid", "=", $.gid).orderBy("branch_id")),
    claim: host.prepare((d, $: { gid: string; owner: string; until: number; now: number; live: string[] }) =>
      d
        .updateTable("transactions")
        .set({ lease_owner: $.owner, lease_until: $.until })
        .where("gid", "=", $.gid)
        .where((eb) => leaseTakable(eb, $)),
    ),
    release: host.prepare((d, $: { gid: string; owner: string }) =>
      d.updateTable("transactions").set({ lease_owner: null, lease_until: null }).where("gid", "=", $.gid).where("lease_owner", "=", $.owner),
    ),
    attempted: host.prepare((d, $: { gid: string; branchId: string; attempts: number }) =>
      d.updateTable("branches").set({ attempts: $.attempts }).where("gid", "=", $.gid).where("branch_id", "=", $.branchId),
    ),
    done: host.prepare((d, $: { gid: string; branchId: string; state: BranchRow["state"]; result: string | null; now: number }) =>
      d.updateTable("branches").set({ state: $.state, result: $.result, done_at: $.now, last_error: null }).where("gid", "=", $.gid).where("branch_id", "=", $.branchId),
    ),
    undone: host.prepare((d, $: { gid: string; branchId: string; state: BranchRow["state"]; now: number }) =>
      d.updateTable("branches").set({ state: $.state, finished_at: $.now }).where("gid", "=", $.gid).where("branch_id", "=", $.branchId),
    ),
    create: host.prepare((d, $: { row: TransactionRow }) => skippingTaken(d, d.insertInto("transactions").values($.row))),
    locked: host.prepare((d, $: { gid: string }) => forUpdateOn(d, d.selectFrom("transactions").selectAll().where("gid", "=", $.gid))),
    branchCount: host.prepare((d, $: { gid: string }) => d.selectFrom("branches").select((eb) => eb.fn.countAll<number>().as("n")).where("gid", "=", $.gid)),
    addBranch: host.prepare((d, $: { row: BranchRow }) => d.insertInto("branches").values($.row)),
    move: host.prepare((d, $: { gid: string; from: TxState; changes: Partial<TransactionRow> }) =>
      d.updateTable("transactions").set($.changes).where("gid", "=", $.gid).where("state", "=", $.from),
    ),
    /** `move`, only while the lease is free, expired, ours or its node gone (the claim's condition). */
    moveLeased: host.prepare((d, $: { gid: string; from: TxState; changes: Partial<TransactionRow>; now: number; owner: string; live: string[] }) =>
      d
        .updateTable("transactions")
        .set($.changes)
        .where("gid", "=", $.gid)
        .where("state", "=", $.from)
        .where((eb) => leaseTakable(eb, $)),
    ),
  };
  /** Bookkeeping writes join the service's group commit: on the embedded store, alone each was a commit of its own. */
  const write = <R>(work: (trx: TxDb) => Promise<R>): Promise<R> => host.tx((trx) => work(trx));
  const load = (gid: string) => q.load.first(db(), { gid });
  const branchesOf = (gid: string) => q.branches.all(db(), { gid });

  /** What moving to `to` writes; a final state also gives up the lease. */
  function changesFor(to: TxState, extra: Partial<TransactionRow>, now: number): Partial<TransactionRow> {
    const final = to === "COMMITTED" || to === "COMPENSATED";
    return { state: to, attempts: 0, next_attempt_at: now, last_error: null, updated_at: now, ...(final ? { lease_owner: null, lease_until: null } : {}), ...extra };
  }

  /**
   * Moves a transaction only from the state it was read in; answers the moved row, or null when
   * someone else moved it first. A final state also gives up the lease, in the same write.
   */
  async function move(tx: TransactionRow, to: TxState, extra: Partial<TransactionRow> = {}): Promise<TransactionRow | null> {
    if (!canTransition(tx.state, to)) return null;
    const now = clock.now();
    const changes = changesFor(to, extra, now);
    if ((await write((trx) => q.move.run(trx, { gid: tx.gid, from: tx.state, changes }))) !== 1) return null;
    crashPoint("tx.moved");
    countMove(tx, to, now);
    return { ...tx, ...changes };
  }

  function countMove(tx: TransactionRow, to: TxState, now: number): void {
    if (to === "COMMITTED" || to === "COMPENSATED") {
      (to === "COMMITTED" ? metric.committed : metric.compensated).inc({ kind: tx.kind });
      metric.duration.observe({ kind: tx.kind, outcome: to }, (now - tx.created_at) / 1000);
    }
    if (to === "STUCK") metric.stuck.inc({ kind: tx.kind });
  }

  /**
   * The initiator's commit, in one write: the transaction read, its branches checked tried, and — if
   * it is still TRYING and its lease is free — moved to CONFIRMING with the lease taken. Answers the
   * rows its driver starts from (no claim and reload of its own), or just the transaction as found
   * when someone else moved it or holds it (their driver goes on).
   */
  function takeForCommit(gid: string): Promise<{ tx: TransactionRow | undefined; held?: Held }> {
    const now = clock.now();
    const live = liveNodes();
    return write(async (trx) => {
      const tx = await q.load.first(trx, { gid });
      if (tx?.state !== "TRYING") return { tx };
      const branches = await q.branches.all(trx, { gid });
      const open = branches.find((b) => b.state !== "DONE");
      if (open) throw conflict("TX_BRANCH_NOT_TRIED", `branch ${open.branch_id} of ${gid} did not try successfully; abort instead`);
      const changes = changesFor("CONFIRMING", { lease_owner: owner, lease_until: now + LEASE_MS }, now);
      if ((await q.moveLeased.run(trx, { gid, from: tx.state, changes, now, owner, live })) !== 1) return { tx };
      return { tx, held: { tx: { ...tx, ...changes }, branches } };
    });
  }

  function liveNodes(): string[] {
    return (broker.registry.nodes.list({ onlyAvailable: true, withServices: false }) as { id: string }[]).map((n) => n.id);
  }

  /** Takes the transaction's lease: free, expired, ours, or held by a node the registry no longer knows (it died). */
  async function claim(gid: string): Promise<boolean> {
    const now = clock.now();
    const live = liveNodes();
    return (await write((trx) => q.claim.run(trx, { gid, owner, until: now + LEASE_MS, now, live }))) === 1;
  }

  async function release(gid: string): Promise<void> {
    await write((trx) => q.release.run(trx, { gid, owner }));
  }

  /**
   * Drives one transaction as far as it can go now; one driver per transaction in this process.
   * `held`: its rows, when the caller took the lease in its own last write (`takeForCommit`).
   */
  function drive(gid: string, held?: Held): Promise<void> {
    const running = driving.get(gid);
    if (running) return running;
    const run = (async () => {
      if (!held && !(await claim(gid))) return;
      let finished = false;
      try {
        finished = await advance(gid, held);
      } finally {
        if (!finished) await release(gid);
      }
    })()
      .catch((err) => host.logger.error({ err, gid }, "driving a transaction failed; the sweeper tries again"))
      .finally(() => driving.delete(gid));
    driving.set(gid, run);
    return run;
  }

  /**
   * Runs the transaction's next steps until it ends, waits, or fails; answers whether it ended (its
   * lease went with the final write). Holding the lease, it works on its own copy of the rows.
   */
  async function advance(gid: string, held?: Held): Promise<boolean> {
    let tx: TransactionRow | null = held ? held.tx : ((await load(gid)) ?? null);
    const branches = held ? held.branches : await branchesOf(gid);
    for (;;) {
      if (!tx || isFinal(tx.state) || tx.state === "STUCK") return false;
      const now = clock.now();
      if (tx.next_attempt_at > now) return false;
      if (tx.state === "TRYING") {
        if (tx.timeout_at === null || tx.timeout_at > now) return false;
        // The initiator went silent: ask it whether it committed (its answer also settles it for good).
        let decision: Decision;
        try {
          decision = tx.initiator ? (await broker.call<{ decision: Decision }, object>(`${tx.initiator}.txDecision`, { gid })).decision : "ROLLED_BACK";
        } catch (err) {
          await failed(tx, null, err);
          return false;
        }
        tx = await move(tx, decision === "COMMITTED" ? "CONFIRMING" : "COMPENSATING");
        continue;
      }
      const step = nextStep(tx.kind, tx.state, branches.map((b) => ({ branchId: b.branch_id, state: b.state, attempts: b.attempts })));
      if (step.kind === "wait") return false;
      if (step.kind === "compensate") {
        tx = await move(tx, "COMPENSATING");
        continue;
      }
      if (step.kind === "finish") return (await move(tx, step.state, { finished_at: now })) !== null;
      const branch = branches.find((b) => b.branch_id === step.branchId)!;
      const called = await callBranch(tx, branch, step.op, branches);
      if (called !== "next") return called === "ended";
      tx = { ...tx, attempts: 0, last_error: null };
    }
  }

  /**
   * One branch call; "next" when the transaction can go on at once, "ended" when that call was its
   * last and the write recording it also moved it to its final state (one write, not two), "stop" otherwise.
   */
  async function callBranch(tx: TransactionRow, branch: BranchRow, op: BranchOp, branches: BranchRow[]): Promise<"next" | "ended" | "stop"> {
    const forward = op === "action" || op === "try";
    // Counted before the call: a step attempted without an answer may have acted and must be compensated.
    if (forward) {
      branch.attempts++;
      await write((trx) => q.attempted.run(trx, { gid: tx.gid, branchId: branch.branch_id, attempts: branch.attempts }));
    }
    const name = op === "confirm" ? branch.confirm! : forward ? branch.action : branch.compensate;
    try {
      const result = await broker.call(name, JSON.parse(branch.payload), { meta: { tx: { gid: tx.gid, branchId: branch.branch_id, op } } });
      crashPoint("tx.called");
      const now = clock.now();
      branch.state = stateAfter(op);
      const at = { gid: tx.gid, branchId: branch.branch_id, state: branch.state, now };
      const after = nextStep(tx.kind, tx.state, branches.map((b) => ({ branchId: b.branch_id, state: b.state, attempts: b.attempts })));
      const final = after.kind === "finish" ? after.state : null;
      // An undo keeps the error that made it necessary.
      const ended = await write(async (trx) => {
        if (forward) await q.done.run(trx, { ...at, result: keptResult(result) });
        else await q.undone.run(trx, at);
        if (final) return (await q.move.run(trx, { gid: tx.gid, from: tx.state, changes: changesFor(final, { finished_at: now }, now) })) === 1;
        if (tx.attempts > 0) await trx.updateTable("transactions").set({ attempts: 0, last_error: null, updated_at: now }).where("gid", "=", tx.gid).execute();
        return false;
      });
      crashPoint("tx.recorded");
      if (final === null) return "next";
      if (!ended) return "stop";
      crashPoint("tx.moved");
      countMove(tx, final, now);
      return "ended";
    } catch (err) {
      if (op === "action" && isBusinessRefusal(err)) {
        // The next pass sees the refused step and turns the saga to compensation.
        branch.state = "FAILED";
        await db()
          .updateTable("branches")
          .set({ state: "FAILED", last_error: describe(err), finished_at: clock.now() })
          .where("gid", "=", tx.gid)
          .where("branch_id", "=", branch.branch_id)
          .execute();
        return "next";
      }
      await failed(tx, branch, err);
      return "stop";
    }
  }

  async function failed(tx: TransactionRow, branch: BranchRow | null, err: unknown): Promise<void> {
    const now = clock.now();
    const attempt = tx.attempts + 1;
    const message = `${branch ? `branch ${branch.branch_id}: ` : "query back: "}${describe(err)}`;
    host.logger.warn({ gid: tx.gid, attempt, err: message }, "transaction step failed");
    if (branch) await db().updateTable("branches").set({ last_error: describe(err) }).where("gid", "=", tx.gid).where("branch_id", "=", branch.branch_id).execute();
    const next = afterFailure(attempt, retry, now);
    if (next.stuck) {
      await move(tx, "STUCK", { stuck_in: tx.state, attempts: attempt, last_error: message });
      return;
    }
    await db()
      .updateTable("transactions")
      .set({ attempts: attempt, next_attempt_at: next.retryAt, last_error: message, updated_at: now })
      .where("gid", "=", tx.gid)
      .where("state", "=", tx.state)
      .execute();
  }

  /** Everything due now: retries whose backoff passed, TCC transactions past their timeout. */
  async function tick(): Promise<number> {
    const now = clock.now();
    const due = await db()
      .selectFrom("transactions")
      .select("gid")
      .where((eb) =>
        eb.or([
          eb.and([eb("state", "in", ["RUNNING", "CONFIRMING", "COMPENSATING"]), eb("next_attempt_at", "<=", now)]),
          eb.and([eb("state", "=", "TRYING"), eb("timeout_at", "<=", now), eb("next_attempt_at", "<=", now)]),
        ]),
      )
      .orderBy("next_attempt_at")
      .limit(200)
      .execute();
    for (const { gid } of due) await drive(gid);
    return due.length;
  }

  /** Logs a saga and its steps in `trx`; false when the gid is already known (the same saga again). */
  async function insertSaga(trx: TxDb, gid: string, steps: SagaSubmitted["steps"]): Promise<boolean> {
    const now = clock.now();
    const created = await host.store.insertIfAbsent(trx.insertInto("transactions").values(newTransaction(gid, "SAGA", "RUNNING", null, null, now)));
    if (!created) return false;
    await trx
      .insertInto("branches")
      .values(steps.map((s, i) => newBranch(gid, branchIdOf(i), s.action, null, s.compensate, s.payload, now)))
      .execute();
    return true;
  }

  async function view(gid: string): Promise<TxView> {
    const tx = await load(gid);
    if (!tx) throw notFound("TX_NOT_FOUND", `no transaction ${gid}`);
    const branches = await branchesOf(gid);
    return {
      gid: tx.gid,
      kind: tx.kind,
      state: tx.state,
      stuckIn: tx.stuck_in,
      initiator: tx.initiator,
      attempts: tx.attempts,
      lastError: tx.last_error,
      createdAt: iso(tx.created_at),
      updatedAt: iso(tx.updated_at),
      finishedAt: tx.finished_at === null ? null : iso(tx.finished_at),
      durationMs: tx.finished_at === null ? null : tx.finished_at - tx.created_at,
      branches: branches.map((b) => ({
        branchId: b.branch_id,
        action: b.action,
        confirm: b.confirm,
        compensate: b.compensate,
        state: b.state,
        attempts: b.attempts,
        result: b.result === null ? null : JSON.parse(b.result),
        lastError: b.last_error,
        createdAt: iso(b.created_at),
        doneAt: b.done_at === null ? null : iso(b.done_at),
        finishedAt: b.finished_at === null ? null : iso(b.finished_at),
      })),
    };
  }

  async function mustLoad(gid: string): Promise<TransactionRow> {
    const tx = await load(gid);
    if (!tx) throw notFound("TX_NOT_FOUND", `no transaction ${gid}`);
    return tx;
  }

  return {
    name: "tx",
    settings: { routes: routesWithSchemas(txRoutes, C) },
    actions: {
      tryBranch: action(C.tryBranch, async (ctx) => {
        const { gid, initiator, timeoutMs, action: tryAction, confirm, cancel, payload } = ctx.params;
        const now = clock.now();
        // Registered before the try is called: if anything dies from here on, the branch is cancelled.
        const { branchId, created } = await host.tx(async (trx) => {
          let id: string;
          const created = (await q.create.run(trx, { row: newTransaction(gid, "TCC", "TRYING", initiator, now + timeoutMs, now) })) > 0;
          if (created) {
            // Created by this write: no other branch can have joined it yet.
            id = branchIdOf(0);
          } else {
            const tx = (await q.locked.first(trx, { gid }))!;
            if (tx.kind !== "TCC" || tx.state !== "TRYING") throw conflict("TX_NOT_TRYING", `transaction ${gid} is ${tx.state}; no more branches can join`);
            id = branchIdOf(Number((await q.branchCount.first(trx, { gid }))!.n));
          }
          await q.addBranch.run(trx, { row: { ...newBranch(gid, id, tryAction, confirm, cancel, payload, now), attempts: 1 } });
          return { branchId: id, created };
        });
        // Counted once committed: a transaction's work may run more than once (see GroupCommit).
        if (created) metric.started.inc({ kind: "TCC" });
        crashPoint("tx.registered");
        try {
          const result = await ctx.call(tryAction, payload, { meta: { tx: { gid, branchId, op: "try" } } });
          crashPoint("tx.called");
          await write((trx) => q.done.run(trx, { gid, branchId, state: "DONE", result: keptResult(result), now: clock.now() }));
          return result;
        } catch (err) {
          if (isBusinessRefusal(err))
            await db()
              .updateTable("branches")
              .set({ state: "FAILED", last_error: describe(err), finished_at: clock.now() })
              .where("gid", "=", gid)
              .where("branch_id", "=", branchId)
              .execute();
          throw err;
        }
      }),

      commit: action(C.commit, async (ctx) => {
        const { gid } = ctx.params;
        const { tx, held } = await takeForCommit(gid);
        if (!tx) throw notFound("TX_NOT_FOUND", `no transaction ${gid}`);
        if (held) crashPoint("tx.moved");
        else if (tx.state !== "TRYING" && tx.state !== "CONFIRMING" && tx.state !== "COMMITTED") throw conflict("TX_NOT_TRYING", `transaction ${gid} is ${tx.state}`);
        void drive(gid, held);
        return { gid, state: "CONFIRMING" };
      }),

      abort: action(C.abort, async (ctx) => {
        const { gid } = ctx.params;
        const now = clock.now();
        // An abort for a transaction with no branch yet is recorded too, so a late branch is refused.
        if (await host.store.insertIfAbsent(db().insertInto("transactions").values(newTransaction(gid, "TCC", "COMPENSATING", null, null, now)))) {
          metric.started.inc({ kind: "TCC" });
        } else {
          const tx = await mustLoad(gid);
          if (tx.state === "TRYING") await move(tx, "COMPENSATING");
          else if (tx.state !== "COMPENSATING" && tx.state !== "COMPENSATED") throw conflict("TX_NOT_TRYING", `transaction ${gid} is ${tx.state}`);
        }
        void drive(gid);
        return { gid, state: "COMPENSATING" };
      }),

      saga: action(C.saga, async (ctx) => {
        const { gid, steps, wait } = ctx.params;
        if (await host.tx((trx) => insertSaga(trx, gid, steps))) metric.started.inc({ kind: "SAGA" });
        const run = drive(gid);
        if (wait) await run;
        return view(gid);
      }),

      list: action(C.list, async (ctx) => {
        requireRole(ctx, "operator");
        const { state, limit, cursor } = ctx.params;
        let q = db().selectFrom("transactions").selectAll();
        if (state) q = q.where("state", "=", state as TxState);
        if (cursor) {
          const [at, gid] = decodeCursor(cursor);
          q = q.where((eb) => eb.or([eb("created_at", "<", at), eb.and([eb("created_at", "=", at), eb("gid", "<", gid)])]));
        }
        const rows = await q.orderBy("created_at", "desc").orderBy("gid", "desc").limit(limit + 1).execute();
        const page = rows.slice(0, limit);
        return {
          items: page.map((t) => ({
            gid: t.gid,
            kind: t.kind,
            state: t.state,
            stuckIn: t.stuck_in,
            attempts: t.attempts,
            lastError: t.last_error,
            createdAt: iso(t.created_at),
            finishedAt: t.finished_at === null ? null : iso(t.finished_at),
          })),
          nextCursor: rows.length > limit ? encodeCursor(page[page.length - 1]) : null,
        };
      }),

      get: action(C.get, async (ctx) => {
        requireRole(ctx, "operator");
        return view(ctx.params.gid);
      }),

      retry: action(C.retry, async (ctx) => {
        requireRole(ctx, "operator");
        const tx = await mustLoad(ctx.params.gid);
        if (tx.state !== "STUCK" || !tx.stuck_in) throw conflict("TX_NOT_STUCK", `transaction ${tx.gid} is ${tx.state}; only a stuck one can be retried`);
        await move(tx, tx.stuck_in, { stuck_in: null });
        await drive(tx.gid);
        return view(tx.gid);
      }),

      compensate: action(C.compensate, async (ctx) => {
        requireRole(ctx, "operator");
        const tx = await mustLoad(ctx.params.gid);
        if (tx.state !== "STUCK" || !tx.stuck_in) throw conflict("TX_NOT_STUCK", `transaction ${tx.gid} is ${tx.state}; only a stuck one can be compensated`);
        if (!canCompensate(tx.kind, tx.stuck_in))
          throw conflict("TX_CANNOT_COMPENSATE", `transaction ${tx.gid} was stuck while ${tx.stuck_in}: confirmed branches cannot be undone; retry it`);
        await move(tx, "COMPENSATING", { stuck_in: null });
        await drive(tx.gid);
        return view(tx.gid);
      }),

      /** Runs the sweep once now (it also runs twice a second); answers how many transactions were due. */
      tick: action(C.tick, () => sweeper.now()),
    },
    created() {
      // Reliable messages: a saga written to a service's outbox with its local transaction starts here.
      host.consume(TX_SUBMITTED, async (trx, message) => {
        const { gid, steps } = message.data as SagaSubmitted;
        if (await insertSaga(trx, gid, steps)) metric.started.inc({ kind: "SAGA" });
        // Driven once the inbox transaction has committed.
        setImmediate(() => void drive(gid));
      });
    },
    async started() {
      broker = this.broker;
      await host.start();
      sweeper.start();
    },
    async stopped() {
      await sweeper.stop();
      await Promise.all(driving.values());
      await host.stop();
    },
  };
}

function newTransaction(gid: string, kind: TxKind, state: TxState, initiator: string | null, timeoutAt: number | null, now: number) {
  return {
    gid,
    kind,
    state,
    stuck_in: null,
    initiator,
    timeout_at: timeoutAt,
    attempts: 0,
    next_attempt_at: now,
    last_error: null,
    lease_owner: null,
    lease_until: null,
    created_at: now,
    updated_at: now,
    finished_at: null,
  };
}

function newBranch(gid: string, branchId: string, forward: string, confirm: string | null, compensate: string, payload: unknown, now: number) {
  return {
    gid,
    branch_id: branchId,
    action: forward,
    confirm,
    compensate,
    payload: JSON.stringify(payload ?? {}),
    state: "PENDING" as const,
    attempts: 0,
    result: null,
    last_error: null,
    created_at: now,
    done_at: null,
    finished_at: null,
  };
}

function describe(err: unknown): string {
  const e = err as { type?: string; message?: string };
  return `${e?.type ?? "ERROR"}: ${e?.message ?? String(err)}`.slice(0, 1000);
}

function encodeCursor(t: TransactionRow): string {
  return Buffer.from(JSON.stringify([t.created_at, t.gid])).toString("base64url");
}

function decodeCursor(cursor: string): [number, string] {
  try {
    const [at, gid] = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8")) as [number, string];
    if (typeof at === "number" && typeof gid === "string") return [at, gid];
  } catch {
    // fall through to the 400 below
  }
  throw badRequest("CURSOR_INVALID", "cursor: not a cursor this list gave out", "cursor");
}
