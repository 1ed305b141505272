import { EventEmitter } from "node:events";
import { mkdirSync } from "node:fs";
import path from "node:path";
import SqliteDatabase from "better-sqlite3";
import type { Logger } from "pino";
import { checkpointInBackground } from "../db/checkpointer";
import { configureSqlite } from "../db/db";
import { Pause } from "../runtime/pause";
import { traceIdOf } from "../observability/message-tracing";
import type { Clock } from "../clock/clock";
import {
  type ConsumeOptions,
  type OutgoingMessage,
  type PublishOptions,
  RETENTION_MS,
  retryDelay,
  type Stream,
  type StreamMessage,
  type Subscription,
} from "./stream";

type Row = [seq: number, msgId: string, data: string, headers: string];

/** Messages appended by one statement at most: one statement a round's append, not one a message. */
const APPEND_ROWS = 64;

/**
 * The embedded log: one SQLite file, append-only, with a stored position per durable consumer.
 * Consumers in this process wake on publish; consumers in other processes on the same data dir poll.
 */
export class SqliteStream implements Stream {
  private readonly file: SqliteDatabase.Database;
  private readonly appended = new EventEmitter();
  /** The append of n messages in one statement, by n (1 to APPEND_ROWS). */
  private readonly inserts = new Map<number, SqliteDatabase.Statement>();
  private readonly page: SqliteDatabase.Statement;
  private readonly position: SqliteDatabase.Statement;
  private readonly advance: SqliteDatabase.Statement;
  private readonly subscriptions = new Set<Subscription>();

  private readonly expire: SqliteDatabase.Statement;
  private readonly forgetCheckpoints: () => void;
  private readonly pruneTimer: NodeJS.Timeout;

  constructor(
    dataDir: string,
    namespace: string,
    private readonly logger: Logger,
    private readonly clock: Clock,
  ) {
    mkdirSync(dataDir, { recursive: true });
    const filename = path.join(dataDir, `bazaar_${namespace}_stream.sqlite`);
    this.file = new SqliteDatabase(filename);
    configureSqlite(this.file);
    this.forgetCheckpoints = checkpointInBackground(filename);
    this.file.exec(`
      CREATE TABLE IF NOT EXISTS messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, subject TEXT NOT NULL, msg_id TEXT NOT NULL UNIQUE,
        data TEXT NOT NULL, headers TEXT NOT NULL, at INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS messages_subject_seq ON messages (subject, seq);
      CREATE TABLE IF NOT EXISTS cursors (durable TEXT NOT NULL, subject TEXT NOT NULL, seq INTEGER NOT NULL,
        PRIMARY KEY (durable, subject));`);
    this.appended.setMaxListeners(0);
    // Raw arrays: better-sqlite3 builds row objects at about the cost of the read.
    this.page = this.file.prepare("SELECT seq, msg_id, data, headers FROM messages WHERE subject = ? AND seq > ? ORDER BY seq LIMIT 256").raw(true);
    this.position = this.file.prepare("SELECT seq FROM cursors WHERE durable = ? AND subject = ?");
    this.expire = this.file.prepare("DELETE FROM messages WHERE at < ?");
    this.prune();
    this.pruneTimer = setInterval(() => this.prune(), 3_600_000);
    this.pruneTimer.unref();
    this.advance = this.file.prepare(
      "INSERT INTO cursors (durable, subject, seq) VALUES (?, ?, ?) ON CONFLICT (durable, subject) DO UPDATE SET seq = excluded.seq",
    );
  }

  async publish(subject: string, data: unknown, options: PublishOptions): Promise<void> {
    await this.publishAll([{ subject, json: JSON.stringify(data), ...options }]);
  }

  /**
   * Group commit: what is published while the event loop handles one round of I/O goes into the log
   * in one transaction (a flash sale's thousands of admitted attempts a second were one commit each),
   * with the positions consumers reached that round. Each publish still resolves only once its
   * messages are in the file.
   */
  publishAll(messages: OutgoingMessage[]): Promise<void> {
    const pending = this.nextRound();
    pending.messages.push(...messages);
    return new Promise((resolve, reject) => pending.waiters.push({ resolve, reject }));
  }

  private pending?: {
    messages: OutgoingMessage[];
    waiters: { resolve: () => void; reject: (err: unknown) => void }[];
    /** Where each durable consumer got to, by `durable\0subject`: stored late, a crash only redelivers what the inbox drops. */
    positions: Map<string, [durable: string, subject: string, seq: number]>;
  };

  private nextRound() {
    if (!this.pending) {
      this.pending = { messages: [], waiters: [], positions: new Map() };
      setImmediate(() => this.flush());
    }
    return this.pending;
  }

  private flush(): void {
    // Close may have written the round already.
    if (!this.pending) return;
    const { messages, waiters, positions } = this.pending;
    this.pending = undefined;
    try {
      this.appendAll(messages, positions.values());
    } catch (err) {
      for (const w of waiters) w.reject(err);
      return;
    }
    for (const w of waiters) w.resolve();
    for (const subject of new Set(messages.map((m) => m.subject))) this.appended.emit(subject);
  }

  private readonly appendAll = (messages: OutgoingMessage[], positions: Iterable<[string, string, number]>) =>
    this.file.transaction(() => {
      const at = this.clock.now();
      for (let from = 0; from < messages.length; from += APPEND_ROWS) {
        const chunk = messages.slice(from, from + APPEND_ROWS);
        const values: unknown[] = [];
        for (const m of chunk) values.push(m.subject, m.id, m.json, JSON.stringify(m.headers ?? {}), at);
        this.insertOf(chunk.length).run(values);
      }
      for (const [durable, subject, seq] of positions) this.advance.run(durable, subject, seq);
    })();

  private insertOf(rows: number): SqliteDatabase.Statement {
    let insert = this.inserts.get(rows);
    if (!insert) {
      // A message already in the log (its id published before) is skipped: the log's dedup.
      insert = this.file.prepare(`INSERT OR IGNORE INTO messages (subject, msg_id, data, headers, at) VALUES ${Array(rows).fill("(?, ?, ?, ?, ?)").join(", ")}`);
      this.inserts.set(rows, insert);
    }
    return insert;
  }

  /** Records how far a consumer got; written with the round's appends (one commit, not one per page). */
  private advanceTo(durable: string, subject: string, seq: number): void {
    this.nextRound().positions.set(`${durable}\0${subject}`, [durable, subject, seq]);
  }

  async consume(options: ConsumeOptions): Promise<Subscription> {
    const { durable, subject, handler, batch } = options;
    let stopped = false;
    const pause = new Pause();
    const onAppend = () => pause.wake();
    this.appended.on(subject, onAppend);

    const loop = async () => {
      let attempt = 0;
      // A position not yet written is in the round about to be.
      const stored = this.pending?.positions.get(`${durable}\0${subject}`)?.[2];
      let from = stored ?? (this.position.get(durable, subject) as { seq: number } | undefined)?.seq ?? 0;
      while (!stopped) {
        const rows = this.page.all(subject, from) as Row[];
        if (rows.length === 0) {
          await pause.for(250);
          continue;
        }
        // The position is stored once per page: after a crash the page's handled messages come
        // again, and the consumers' inbox drops them.
        let handled = from;
        const messages = rows.map(([seq, id, data, headers]): StreamMessage => ({ id, subject, data: JSON.parse(data), headers: JSON.parse(headers), seq }));
        const size = batch?.maxBatch ?? 1;
        for (let i = 0; i < messages.length && !stopped; i += size) {
          const chunk = messages.slice(i, i + size);
          try {
            if (batch) await batch.handler(chunk);
            else await handler(chunk[0]);
            attempt = 0;
            handled = chunk[chunk.length - 1].seq;
          } catch (err) {
            this.logger.warn({ err, durable, subject, seq: chunk[0].seq, attempt, traceId: traceIdOf(chunk[0].headers) }, "stream handler failed; redelivering");
            if (handled > from) this.advanceTo(durable, subject, handled);
            from = handled;
            await pause.for(retryDelay(attempt++));
            break;
          }
        }
        if (handled > from) this.advanceTo(durable, subject, handled);
        from = handled;
      }
    };
    const running = loop();
    const subscription: Subscription = {
      stop: async () => {
        stopped = true;
        this.appended.off(subject, onAppend);
        pause.wake();
        await running;
        this.subscriptions.delete(subscription);
      },
    };
    this.subscriptions.add(subscription);
    return subscription;
  }

  /** Drops messages past the retention period; answers how many went. */
  prune(): number {
    return this.expire.run(this.clock.now() - RETENTION_MS).changes;
  }

  async close(): Promise<void> {
    clearInterval(this.pruneTimer);
    await Promise.all([...this.subscriptions].map((s) => s.stop()));
    // What was published just before closing is written, not lost.
    if (this.pending) this.flush();
    this.file.close();
    this.forgetCheckpoints();
  }
}
