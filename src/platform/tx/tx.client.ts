import type { ActionSchema, Context, ServiceBroker } from "moleculer";
import type { Kysely } from "kysely";
import { z } from "zod";
import { action } from "../runtime/action";
import type { Emit, ServiceHost } from "../runtime/service-host";
import { isUniqueViolation } from "../db/db";
import { batching } from "../runtime/batch";
import { AppError } from "../runtime/errors";
import { BarrierRace, type Decision, recordCommit, refusedAnswer, settleDecision, throughBarrierTries, type TryAnswer } from "./barrier";
import type { BranchOp } from "./tx.domain";

/** Subject of the reliable-message hand-off: a saga a service's local transaction wrote to its outbox. */
export const TX_SUBMITTED = "platform.tx.submitted";

export interface SagaStep {
  action: string;
  compensate: string;
  payload: Record<string, unknown>;
}

export interface SagaSubmitted {
  gid: string;
  steps: SagaStep[];
}

export interface TccBranch {
  action: string;
  confirm: string;
  cancel: string;
  payload: Record<string, unknown>;
}

/** What an initiator calls on the coordinator. */
export interface TxClient {
  /**
   * Registers a branch and runs its try (the first one starts the TCC transaction); answers the try's
   * result or throws its refusal.
   */
  tryBranch<R>(gid: string, branch: TccBranch, parent?: Context): Promise<R>;
  commit(gid: string): Promise<void>;
  abort(gid: string): Promise<void>;
  /** Runs a saga now; with `wait`, answers once it has ended (or is retrying / stuck). */
  saga(gid: string, steps: SagaStep[], wait?: boolean): Promise<{ state: string }>;
}

/**
 * The coordinator as seen by `initiator` (the service it asks `txDecision` when a TCC transaction
 * outlives `timeoutMs` without a decision).
 */
export function txClient(broker: ServiceBroker, initiator: string, timeoutMs = 15_000): TxClient {
  return {
    // With the caller's context the try is part of its request: same trace, same meta.
    tryBranch: <R>(gid: string, branch: TccBranch, parent?: Context) =>
      broker.call<R, object>("tx.tryBranch", { gid, initiator, timeoutMs, ...branch }, parent ? { parentCtx: parent } : undefined),
    async commit(gid) {
      await broker.call("tx.commit", { gid });
    },
    async abort(gid) {
      await broker.call("tx.abort", { gid });
    },
    saga: (gid, steps, wait = false) => broker.call("tx.saga", { gid, steps, wait }),
  };
}

/** The branch id of a sole-participant TCC in the participant's barrier. */
const SOLE_BRANCH = "sole";

/** The initiator's handle on a TCC transaction with one participant (see `soleBranch`). */
export interface SoleBranch {
  /** The participant's try: answers its result or throws its refusal. */
  try<R>(gid: string, payload: Record<string, unknown>, parent?: Context): Promise<R>;
  /** Gives back what the try held, or, if it has not run, makes sure it never will. Idempotent. */
  cancel(gid: string, payload: Record<string, unknown>): Promise<void>;
}

/** Tries made in one turn that go to the participant's `tryAll` in one call, at most. */
const TRIES_PER_CALL = 64;

/**
 * A TCC transaction with one participant and no coordinator: the initiator calls the try and, for
 * every try it does not commit, the cancel — both through the participant's barrier, so a cancel that
 * overtakes its try is empty and the late try is refused, and repeats do nothing. The initiator's own
 * state is the decision log: it must keep a not-committed try on record until its cancel is answered
 * (retrying), and commit only through a change that also closes that record. For hot paths where the
 * coordinator's log and calls cost more than one participant needs (order entry's freeze); confirm is
 * left out, so the try must be final once kept.
 *
 * With `tryAll`, the tries made in one turn of the event loop go to the participant together, as
 * `{ tries: [{ gid, ...payload }] }` answered by `answerSoleTries` (one local transaction for all,
 * each try still answered or refused on its own); such a try answers nothing but that it was made,
 * and is not part of its caller's trace.
 */
export function soleBranch(broker: ServiceBroker, branch: { action: string; cancel: string; tryAll?: string }): SoleBranch {
  const meta = (gid: string, op: BranchOp) => ({ tx: { gid, branchId: SOLE_BRANCH, op } });
  const tryAll = branch.tryAll;
  const batched =
    tryAll === undefined
      ? undefined
      : batching(async (tries: Record<string, unknown>[]) => (await broker.call<{ answers: TryAnswer[] }, object>(tryAll, { tries })).answers, TRIES_PER_CALL);
  return {
    async try<R>(gid: string, payload: Record<string, unknown>, parent?: Context): Promise<R> {
      if (!batched) return broker.call<R, object>(branch.action, payload, { ...(parent ? { parentCtx: parent } : {}), meta: meta(gid, "try") });
      const answer = await batched({ gid, ...payload });
      if (!answer.ok) throw new AppError(answer.status, answer.code, answer.message, answer.field);
      return undefined as R;
    },
    async cancel(gid, payload) {
      await broker.call(branch.cancel, payload, { meta: meta(gid, "cancel") });
    },
  };
}

/** What a participant's `tryAll` action takes: the tries, each a gid with its try's payload. */
export function soleTriesParams<P extends z.ZodRawShape>(payload: P) {
  return z.object({ tries: z.array(z.object({ gid: z.string().min(1).max(128), ...payload })).min(1).max(TRIES_PER_CALL) });
}

/**
 * The participant's side of a `tryAll`: the tries in one local transaction behind the barrier's set
 * form, `work` applying the fresh ones at once and answering, in order, nothing for each it applied or
 * the AppError refusing it (having changed nothing for it). When a concurrent claim came between (or
 * the work met a unique key another try of the same gid took), each try runs on its own, as a single
 * try through `host.branch` would.
 */
export async function answerSoleTries<T, P extends { gid: string }>(
  host: ServiceHost<T>,
  tries: P[],
  now: () => number,
  work: (trx: Kysely<T>, fresh: P[]) => Promise<(AppError | undefined)[]>,
): Promise<{ answers: TryAnswer[] }> {
  try {
    return { answers: await host.tx((trx) => throughBarrierTries(trx, SOLE_BRANCH, tries, now(), (fresh) => work(trx, fresh))) };
  } catch (err) {
    if (!(err instanceof BarrierRace) && !isUniqueViolation(err)) throw err;
  }
  const answers: TryAnswer[] = [];
  for (const t of tries) {
    try {
      const outcome = await host.branch({ tx: { gid: t.gid, branchId: SOLE_BRANCH, op: "try" } }, async (trx) => {
        const [refusal] = await work(trx, [t]);
        if (refusal) throw refusal;
      });
      answers.push({ ok: true, ran: outcome.ran });
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      answers.push(refusedAnswer(err));
    }
  }
  return { answers };
}

/**
 * The 2-phase (reliable) message: in the caller's local transaction, hand a saga to the coordinator
 * through the outbox. The saga exists exactly when the local change commits — no prepare, no query
 * back — and the coordinator then runs its steps to the end, with retries and compensation.
 */
export function submitSaga(emit: Emit, gid: string, steps: SagaStep[]): void {
  const message: SagaSubmitted = { gid, steps };
  emit(TX_SUBMITTED, message, `tx-submitted:${gid}`);
}

/**
 * The TCC initiator's side of a decision. `commit` records it in the local transaction that applies
 * the initiator's own changes (throws TX_ROLLED_BACK if the coordinator's query back got there first);
 * `abandon` rolls back. `decisionAction` answers the query back; `onRolledBack` lets the service drop
 * what it held for the transaction in the same local transaction.
 */
export const initiator = {
  commit: <T>(trx: Kysely<T>, gid: string, now: number) => recordCommit(trx, gid, now),
  /**
   * Rolls a TCC transaction back from the initiator's side: the rollback recorded locally first (with
   * `release`, what the initiator held for it, in the same transaction), so a late commit is refused;
   * then the coordinator is told to cancel. If it cannot be told, its query back finds the rollback.
   */
  async abandon<T>(host: ServiceHost<T>, client: TxClient, gid: string, now: number, release?: (trx: Kysely<T>, gid: string) => Promise<void>): Promise<void> {
    await host.tx(async (trx) => {
      await settleDecision(trx, gid, now);
      if (release) await release(trx, gid);
    });
    await client.abort(gid).catch((err) => host.logger.warn({ err, gid }, "abort not delivered to the coordinator; it will ask"));
  },
  decisionAction<T>(host: ServiceHost<T>, now: () => number, onRolledBack?: (trx: Kysely<T>, gid: string) => Promise<void>): ActionSchema {
    return action(z.object({ gid: z.string().min(1).max(128) }), async (ctx) => {
      const { gid } = ctx.params;
      const decision = await host.tx(async (trx): Promise<Decision> => {
        const d = await settleDecision(trx, gid, now());
        if (d === "ROLLED_BACK" && onRolledBack) await onRolledBack(trx, gid);
        return d;
      });
      return { gid, decision };
    });
  },
};
