import { AsyncResource } from "node:async_hooks";
import { CompiledQuery, type ControlledTransaction, type Kysely } from "kysely";
import { executeCompiled } from "./db";

type Work<T> = (trx: Kysely<T>) => Promise<unknown>;

interface Member<T> {
  work: Work<T>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** Transactions committed together at most: bounds how long the first of a group waits for its answer. */
const MAX_GROUP = 32;

// Compiled once: Kysely's savepoint builders compile their statement anew each time, twice per member.
const SAVEPOINT = CompiledQuery.raw("savepoint member");
const ROLLBACK_TO_SAVEPOINT = CompiledQuery.raw("rollback to savepoint member");
const RELEASE_SAVEPOINT = CompiledQuery.raw("release savepoint member");

/**
 * Group commit for a SQLite file (one connection, one writer): transactions that arrive while
 * another group is committing are run one after the other inside one transaction, each in its own
 * savepoint, and committed together. A commit writes the WAL once per group instead of once per
 * transaction — under load most of a service's commits. Each transaction keeps its own outcome: one
 * that fails is rolled back to its savepoint alone and its caller gets its error at once; the others
 * are answered only after the commit that made them durable: a process killed mid-group has
 * answered none of it. A lone transaction runs as a plain one.
 */
export class GroupCommit<T> {
  private queue: Member<T>[] = [];
  private draining = false;

  constructor(private readonly db: Kysely<T>) {}

  run<R>(work: (trx: Kysely<T>) => Promise<R>): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      // The work runs from the drain loop, in its caller's async context (its release lane). A resource
      // run directly, not AsyncResource.bind: bind defines deprecation getters on every call.
      const context = new AsyncResource("bazaar.group-commit");
      this.queue.push({ work: (trx) => context.runInAsyncScope(work, undefined, trx), resolve: resolve as (value: unknown) => void, reject });
      if (!this.draining) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      // The first to arrive waits one turn of the event loop for company: what else this turn started
      // commits with it (alone, every first arrival after a pause was a commit of its own: 15 % of the
      // governance pipeline's CPU, and 10 % of order entry's).
      await new Promise<void>((resolve) => setImmediate(resolve));
      // Those waiting when a group starts make it; later arrivals wait for the next, so a steady stream
      // of work cannot hold a group open.
      while (this.queue.length > 0) await this.commit(this.queue.splice(0, MAX_GROUP));
    } finally {
      this.draining = false;
    }
  }

  private async commit(group: Member<T>[]): Promise<void> {
    if (group.length === 1) {
      const [m] = group;
      await this.db.transaction().execute(m.work).then(m.resolve, m.reject);
      return;
    }
    let trx: ControlledTransaction<T>;
    try {
      trx = await this.db.startTransaction().execute();
    } catch (err) {
      for (const m of group) m.reject(err);
      return;
    }
    const done: { member: Member<T>; value: unknown }[] = [];
    for (let i = 0; i < group.length; i++) {
      const member = group[i];
      let outcome: { value: unknown } | { err: unknown } | undefined;
      try {
        await executeCompiled(trx, SAVEPOINT);
        try {
          outcome = { value: await member.work(trx) };
        } catch (err) {
          outcome = { err };
          await executeCompiled(trx, ROLLBACK_TO_SAVEPOINT);
        }
        await executeCompiled(trx, RELEASE_SAVEPOINT);
      } catch (err) {
        // The transaction itself failed, not one member's work: nothing of the group is kept, and
        // those not yet run go first into the next group.
        await trx.rollback().execute().catch(() => undefined);
        for (const d of done) d.member.reject(err);
        member.reject(outcome && "err" in outcome ? outcome.err : err);
        this.queue.unshift(...group.slice(i + 1));
        return;
      }
      if ("err" in outcome) member.reject(outcome.err);
      else done.push({ member, value: outcome.value });
    }
    try {
      await trx.commit().execute();
    } catch (err) {
      await trx.rollback().execute().catch(() => undefined);
      for (const d of done) d.member.reject(err);
      return;
    }
    for (const d of done) d.member.resolve(d.value);
  }
}
