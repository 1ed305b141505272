import type { Compilable, Kysely, Migration } from "kysely";
import type { Logger } from "pino";
import { isDeadlock, openServiceDb, type ServiceDb } from "../db/db";
import { GroupCommit } from "../db/group-commit";
import { Prepared } from "../db/prepared";
import type { Leadership } from "../election/election";
import { type EventPosition, handleBatchOnce, handleOnce, type OutgoingEvent, OutboxRelay, platformMigrations, pruneInbox, type StoredEvent, writeOutbox } from "../outbox/outbox";
import { TRACE_HEADER } from "../observability/message-tracing";
import { currentLane, LANE_HEADER, withLane } from "../release/lane";
import { RETENTION_MS, type StreamMessage, type Subscription } from "../stream/stream";
import { type BarrierOutcome, type BranchCall, barrierMigrations, branchCallOf, throughBarrier } from "../tx/barrier";
import { crashPoint } from "./faults";
import { newId } from "./ids";
import { pacer } from "./pace";
import type { Platform } from "./platform";

/** Messages handled in one transaction at most (a page of the log is 256). */
const MAX_BATCH = 64;

export type Emit = (subject: string, data: unknown, id?: string, position?: EventPosition) => void;

/**
 * Work to do once the handler's transaction has committed, and only then (never for a rolled-back
 * one): writes outside the database, such as a kv record others read, that must not show what may
 * yet be undone. Done in the order registered, before the consumer's next message; a failure is
 * logged, and the service repairs what it missed (or lives with it: say which).
 */
export type AfterCommit = (work: () => Promise<unknown>) => void;

export type StreamHandler<T> = (trx: Kysely<T>, message: StreamMessage, emit: Emit, afterCommit: AfterCommit) => Promise<void>;

export interface ConsumerOptions<T = unknown> {
  /** For messages about one tenant: the tenant whose scope the handler runs in. */
  tenantOf?: (message: StreamMessage) => string;
  /**
   * Peak shaving: handle at most this many messages a second (read on every message, so a live
   * setting applies at once), and a tenth of that while the process is saturated (see pace.ts);
   * the rest wait in the log.
   */
  maxPerSecond?: () => number;
  /**
   * Runs once at the end of each transaction the consumer's messages are handled in (one per batch),
   * before it commits: for work the handlers gather and do in one go, such as one call to another
   * service for a whole batch. A throw rolls the transaction back and the messages come again.
   */
  beforeCommit?: (trx: Kysely<T>) => Promise<void>;
}

/**
 * A service's hold on the platform: its own database with migrations applied, its outbox relay,
 * and its idempotent stream consumers. `tx` is the one way to change state and publish facts.
 */
export class ServiceHost<T> {
  private sdb?: ServiceDb<T>;
  private relay?: OutboxRelay;
  private readonly handlers: { subject: string; handler: StreamHandler<T>; options: ConsumerOptions<T> }[] = [];
  private readonly subscriptions: Subscription[] = [];
  private readonly observers: ((events: OutgoingEvent[]) => void)[] = [];
  private group?: GroupCommit<T>;
  private housekeeping?: NodeJS.Timeout;
  private leadership?: Leadership;
  readonly logger: Logger;

  constructor(
    private readonly platform: Platform,
    readonly name: string,
    private readonly migrations: Record<string, Migration>,
    /** Tables that carry `tenant_id`: reachable only through forTenant / tenantTx. */
    private readonly tenantTables: readonly string[] = [],
  ) {
    this.logger = platform.logger.child({ svc: name });
  }

  /**
   * The service's logger for work done on behalf of a request: every line carries its trace id (where
   * traces are followed, the logger adds it to every line of the work by itself).
   */
  loggerFor(ctx: { requestID?: string | null }): Logger {
    return ctx.requestID && !this.platform.messageTracing.active ? this.logger.child({ traceId: ctx.requestID }) : this.logger;
  }

  get store(): ServiceDb<T> {
    if (!this.sdb) throw new Error(`${this.name}: database used before the service started`);
    return this.sdb;
  }

  get db(): Kysely<T> {
    return this.store.db;
  }

  /** A statement of this service built and compiled once (see prepared.ts); annotate `$` with its parameters. */
  prepare<P extends object, R>(build: (db: Kysely<T>, $: P) => Compilable<R>): Prepared<T, P, R> {
    return new Prepared(build);
  }

  /**
   * Registers a consumer; it starts with the service. Each message is applied once, with the inbox
   * row, in one transaction — scoped to the tenant `tenantOf` names, for messages about one tenant.
   */
  consume(subject: string, handler: StreamHandler<T>, options: ConsumerOptions<T> | ((message: StreamMessage) => string) = {}): void {
    this.handlers.push({ subject, handler, options: typeof options === "function" ? { tenantOf: options } : options });
  }

  /**
   * For replicas that compute the same events from the same input: only while `leadership` leads are
   * this service's events published; a standby keeps its own until its leader's progress covers them.
   * Set before start.
   */
  publishWhileLeading(leadership: Leadership): void {
    this.leadership = leadership;
  }

  /** Sees the events of every committed transaction (metrics count facts this way, never a rolled-back one). */
  onCommitted(observer: (events: OutgoingEvent[]) => void): void {
    this.observers.push(observer);
  }

  /** After a commit: its events to the relay (with their rows' seqs where known) and to the observers. */
  private committed(events: OutgoingEvent[], stored: StoredEvent[] | undefined): void {
    if (events.length === 0) return;
    if (stored) this.relay?.handOver(stored);
    else this.relay?.kick();
    for (const observe of this.observers) observe(events);
  }

  async start(): Promise<void> {
    const { config } = this.platform;
    this.sdb = await openServiceDb<T>(config, this.name, { ...platformMigrations, ...barrierMigrations, ...this.migrations }, this.tenantTables);
    // SQLite has one writer: concurrent transactions queue for it anyway, so they commit in groups.
    // The servers commit concurrently on their own connections.
    const { db, dialect } = this.sdb;
    if (dialect === "sqlite") this.group = GroupCommit.onFile(db);
    this.relay = new OutboxRelay(this.sdb, this.platform.stream, this.logger, this.leadership);
    this.relay.start();
    this.housekeeping = setInterval(() => {
      this.pruneInbox().catch((err) => this.logger.warn({ err }, "inbox pruning failed"));
    }, 3_600_000);
    this.housekeeping.unref();
    for (const { subject, handler, options } of this.handlers) {
      const { tenantOf, maxPerSecond, beforeCommit } = options;
      const pace = maxPerSecond && pacer(maxPerSecond);
      // The message's lane is the lane of everything its handler calls and emits; its trace goes on too.
      const inScope = <R>(message: StreamMessage, work: () => Promise<R>) =>
        withLane(message.headers[LANE_HEADER], () => this.platform.messageTracing.run(message.headers[TRACE_HEADER], `stream ${subject}`, work));
      const one = (message: StreamMessage) => inScope(message, () => this.handleMessage(message, handler, tenantOf, beforeCommit));
      // A failing message is tried again before any after it: one that keeps failing holds its subject back (an alert).
      const failures = this.platform.metrics.counter("bazaar_stream_handler_failures_total", "stream messages whose handling failed and is tried again", ["consumer", "subject"]).labels(this.name, subject);
      const counted = async (work: () => Promise<void>) => {
        try {
          await work();
        } catch (err) {
          failures.inc();
          throw err;
        }
      };
      this.subscriptions.push(
        await this.platform.stream.consume({
          durable: this.name,
          subject,
          handler: (message) =>
            counted(async () => {
              if (pace) await pace();
              await one(message);
            }),
          // Paced consumers take one message at a time; tenant-scoped ones run each in its tenant's scope.
          batch: pace || tenantOf ? undefined : { maxBatch: MAX_BATCH, handler: (messages) => counted(() => this.handleBatch(messages, handler, inScope, one, beforeCommit)) },
        }),
      );
    }
  }

  /**
   * Consecutive messages in one transaction (one commit instead of one each, under load); if any fails
   * the batch rolls back and they go one by one: those before the failing one are handled, and it is
   * tried again before any after it.
   */
  private async handleBatch(
    messages: StreamMessage[],
    handler: StreamHandler<T>,
    inScope: <R>(message: StreamMessage, work: () => Promise<R>) => Promise<R>,
    one: (message: StreamMessage) => Promise<void>,
    beforeCommit?: (trx: Kysely<T>) => Promise<void>,
  ): Promise<void> {
    if (messages.length === 1) return one(messages[0]);
    const events: OutgoingEvent[] = [];
    let stored: StoredEvent[] | undefined;
    const after: (() => Promise<unknown>)[] = [];
    try {
      await handleBatchOnce(
        this.store,
        this.name,
        messages,
        this.platform.clock.now(),
        (trx, message) => inScope(message, () => handler(trx, message, this.collector(events), (work) => after.push(work))),
        async (trx) => {
          await beforeCommit?.(trx);
          stored = await writeOutbox(trx, events, this.platform.clock.now());
        },
      );
    } catch (err) {
      this.logger.debug({ err, from: messages[0].seq, count: messages.length }, "batch rolled back; handling its messages one by one");
      for (const message of messages) await one(message);
      return;
    }
    this.committed(events, stored);
    await this.afterCommitted(after);
  }

  private async afterCommitted(after: (() => Promise<unknown>)[]): Promise<void> {
    for (const work of after) await work().catch((err) => this.logger.warn({ err }, "work after a consumer's commit failed"));
  }

  /** One message, once: the handler's work, its events and the inbox row in one transaction. */
  private async handleMessage(
    message: StreamMessage,
    handler: StreamHandler<T>,
    tenantOf?: (message: StreamMessage) => string,
    beforeCommit?: (trx: Kysely<T>) => Promise<void>,
  ): Promise<void> {
    const events: OutgoingEvent[] = [];
    let stored: StoredEvent[] | undefined;
    const emit = this.collector(events);
    const after: (() => Promise<unknown>)[] = [];
    const db = tenantOf ? this.store.forTenant(tenantOf(message)) : this.store.db;
    const applied = await handleOnce(
      this.store,
      this.name,
      message,
      this.platform.clock.now(),
      async (trx) => {
        await handler(trx, message, emit, (work) => after.push(work));
        await beforeCommit?.(trx);
        stored = await writeOutbox(trx, events, this.platform.clock.now());
      },
      db,
    );
    if (!applied) return;
    this.committed(events, stored);
    await this.afterCommitted(after);
  }

  /** Runs `work` in a transaction; events it emits are written in the same transaction and relayed after commit. */
  tx<R>(work: (trx: Kysely<T>, emit: Emit) => Promise<R>): Promise<R> {
    return this.transact(this.db, work);
  }

  /** Reads and writes of one tenant: the handle that may touch the tenant tables, scoped to `tenantId`. */
  forTenant(tenantId: string | number): Kysely<T> {
    return this.store.forTenant(tenantId);
  }

  /** `tx` as one tenant: every query on a tenant table in `work` is scoped to `tenantId`. */
  tenantTx<R>(tenantId: string | number, work: (trx: Kysely<T>, emit: Emit) => Promise<R>): Promise<R> {
    return this.transact(this.store.forTenant(tenantId), work);
  }

  private async transact<R>(db: Kysely<T>, work: (trx: Kysely<T>, emit: Emit) => Promise<R>): Promise<R> {
    // Tenant-scoped handles carry their own scope: only transactions on the service's handle are grouped.
    const group = db === this.store.db ? this.group : undefined;
    for (let attempt = 0; ; attempt++) {
      const events: OutgoingEvent[] = [];
      let stored: StoredEvent[] | undefined;
      const inTransaction = async (trx: Kysely<T>) => {
        // A group commit may run this again after undoing its first run (see GroupCommit).
        events.length = 0;
        const value = await work(trx, this.collector(events));
        stored = await writeOutbox(trx, events, this.platform.clock.now());
        return value;
      };
      try {
        const result = await (group ? group.run(inTransaction) : db.transaction().execute(inTransaction));
        this.committed(events, stored);
        return result;
      } catch (err) {
        // The engine chose this transaction as a deadlock victim and rolled it back whole: run it again.
        if (!isDeadlock(err) || attempt >= 4) throw err;
        await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 20 * (attempt + 1)));
      }
    }
  }

  /**
   * Runs a transaction branch the coordinator called (its call in `meta.tx`) behind the barrier: the
   * work and the barrier row commit together, so repeats, empty compensations and hanging tries are
   * handled before the work is reached.
   */
  async branch<R>(
    meta: { tx?: BranchCall },
    work: (trx: Kysely<T>, emit: Emit, call: BranchCall) => Promise<R>,
    /** For a branch on a tenant's data: the transaction is scoped to this tenant. */
    tenantId?: string | number,
  ): Promise<BarrierOutcome<R>> {
    const call = branchCallOf(meta);
    const db = tenantId === undefined ? this.db : this.store.forTenant(tenantId);
    const outcome = await this.transact(db, (trx, emit) => throughBarrier(trx, call, this.platform.clock.now(), () => work(trx, emit, call)));
    crashPoint("tx.branch.committed");
    return outcome;
  }

  /** Events of the work running now; each carries the lane and the trace of that work, so consumers continue in them. */
  private collector(events: OutgoingEvent[]): Emit {
    const lane = currentLane();
    const trace = this.platform.messageTracing.header();
    const headers = lane === undefined && trace === undefined ? undefined : { ...(lane === undefined ? {} : { [LANE_HEADER]: lane }), ...(trace === undefined ? {} : { [TRACE_HEADER]: trace }) };
    return (subject, data, id, position) => events.push({ subject, data, id: id ?? newId(this.platform.clock.now()), headers, position });
  }

  /** Drops inbox rows a day past the log's retention (the day covers clock skew between nodes). */
  pruneInbox(): Promise<number> {
    return pruneInbox(this.store, this.platform.clock.now() - RETENTION_MS - 86_400_000);
  }

  async stop(): Promise<void> {
    clearInterval(this.housekeeping);
    for (const s of this.subscriptions.splice(0)) await s.stop();
    await this.relay?.stop();
    await this.sdb?.close();
    this.sdb = undefined;
  }
}
