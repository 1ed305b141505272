import { AsyncResource } from "node:async_hooks";
import { CompiledQuery, type ControlledTransaction, type Kysely } from "kysely";
import { executeCompiled, fileInTransaction } from "./db";

type Work<T> = (trx: Kysely<T>) => Promise<unknown>;

interface Member<T> {
  work: Work<T>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/** Transactions committed together at most: bounds how long the first of a group waits for its answer. */
const MAX_GROUP = 32;
/** Groups run with a savepoint per member after one of them failed: work that keeps failing cannot make others run again and again. */
const GUARDED_AFTER_FAILURE = 8;

// Compiled once: Kysely's savepoint builders compile their statement anew each time.
const SAVEPOINT = CompiledQuery.raw("savepoint member");
const ROLLBACK_TO_SAVEPOINT = CompiledQuery.raw("rollback to savepoint member");
const RELEASE_SAVEPOINT = CompiledQuery.raw("release savepoint member");

/**
 * Group commit for a SQLite file (one connection, one writer): transactions that arrive while
 * another group is committing are run one after the other inside one transaction and committed
 * together. A commit writes the WAL once per group instead of once per transaction — under load most
 * of a service's commits. Members run without savepoints (a savepoint per member, with the copies of
 * pages SQLite keeps for it, was 5–8 % of the governance pipeline's CPU): when one fails, the group's
 * transaction is rolled back whole, that member gets its error, and the others run again in the next
 * group — so a member's work may run more than once, as a deadlock victim's does on a server engine.
 * For a few groups after a failure each member gets a savepoint again, and one that fails is rolled
 * back alone. Members are answered only after the commit that made them durable: a process killed
 * mid-group has answered none of it. A lone transaction runs as a plain one.
 */
export class GroupCommit<T> {
  private queue: Member<T>[] = [];
  private draining = false;
  /** How many of the next groups run with a savepoint per member. */
  private guarded = 0;

  /** Group commit on an embedded SQLite file's handle, probing the file itself for an open transaction. */
  static onFile<T>(db: Kysely<T>): GroupCommit<T> {
    return new GroupCommit(db, () => fileInTransaction(db) === true);
  }

  /** `inTransaction`: whether the file has a transaction open now (better-sqlite3's `inTransaction`). */
  constructor(
    private readonly db: Kysely<T>,
    private readonly inTransaction: () => boolean,
  ) {}

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
    const guarded = this.guarded > 0;
    if (guarded) this.guarded--;
    for (let i = 0; i < group.length; i++) {
      const member = group[i];
      let failure: unknown;
      let savepoint = false;
      try {
        if (guarded) {
          await executeCompiled(trx, SAVEPOINT);
          savepoint = true;
        }
        const value = await member.work(trx);
        if (this.inTransaction()) {
          if (savepoint) await executeCompiled(trx, RELEASE_SAVEPOINT);
          done.push({ member, value });
          continue;
        }
        // Ended under the member (a lost file, a full disk, a statement that ended it): as good as failed.
        failure = new Error("the group's transaction ended while one of its members ran");
      } catch (err) {
        failure = err;
      }
      this.guarded = GUARDED_AFTER_FAILURE;
      if (savepoint && this.inTransaction()) {
        const undone = await executeCompiled(trx, ROLLBACK_TO_SAVEPOINT)
          .then(() => executeCompiled(trx, RELEASE_SAVEPOINT))
          .then(() => true, () => false);
        if (undone) {
          member.reject(failure);
          continue;
        }
      }
      await trx.rollback().execute().catch(() => undefined);
      member.reject(failure);
      // Undone with it through no fault of their own, those run before it go again, first.
      this.queue.unshift(...done.map((d) => d.member), ...group.slice(i + 1));
      return;
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
