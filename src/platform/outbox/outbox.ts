import { type Generated, type Kysely, type Migration, sql } from "kysely";
import type { Logger } from "pino";
import { dialectOf, isUniqueViolation, type ServiceDb, withAutoId } from "../db/db";
import { prepare } from "../db/prepared";
import type { Leadership } from "../election/election";
import { Pause } from "../runtime/pause";
import type { Stream, StreamMessage } from "../stream/stream";

/** Outbox and inbox tables live in every service's own database, created by its first migration. */
export const platformMigrations: Record<string, Migration> = {
  "0000_platform_outbox_inbox": {
    async up(db: Kysely<any>) {
      await withAutoId(db, db.schema.createTable("outbox"), "seq")
        .addColumn("event_id", "varchar(64)", (c) => c.notNull().unique())
        .addColumn("subject", "varchar(128)", (c) => c.notNull())
        .addColumn("payload", "text", (c) => c.notNull())
        .addColumn("headers", "text", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema
        .createTable("inbox")
        .addColumn("consumer", "varchar(64)", (c) => c.notNull())
        .addColumn("event_id", "varchar(128)", (c) => c.notNull())
        .addColumn("handled_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("inbox_pk", ["consumer", "event_id"])
        .execute();
    },
  },
  // Event ids carry natural keys (`tx-submitted:<gid>`, gids up to 128 characters), wider than the
  // first migration allowed. SQLite does not enforce lengths; the server engines are widened.
  "0000_platform_outbox_wide_ids": {
    async up(db: Kysely<any>) {
      const dialect = dialectOf(db);
      for (const table of ["outbox", "inbox"]) {
        if (dialect === "mysql") await db.schema.alterTable(table).modifyColumn("event_id", "varchar(160)", (c) => c.notNull()).execute();
        else if (dialect === "postgres") await db.schema.alterTable(table).alterColumn("event_id", (c) => c.setDataType("varchar(160)")).execute();
      }
    },
  },
  // Events that only a leader publishes carry their place in a sequence of their own (a symbol's
  // events), so a standby can drop what its leader already published and continue after it.
  "0000_platform_outbox_positions": {
    async up(db: Kysely<any>) {
      await db.schema.alterTable("outbox").addColumn("partition_key", "varchar(64)").execute();
      await db.schema.alterTable("outbox").addColumn("position", "bigint").execute();
    },
  },
  // (Named to sort after the migrations it changes: a new database runs them in name order.)
  // An event's id was unique in the outbox too, but a row lives there only until it is relayed, so
  // that key never guarded a repeat: the stream's own dedup by id does. Kept, it cost an index entry
  // written and deleted for every event.
  "0000_platform_outbox_without_unique_ids": {
    async up(db: Kysely<any>) {
      const dialect = dialectOf(db);
      if (dialect === "mysql") await sql`alter table outbox drop index event_id`.execute(db);
      else if (dialect === "postgres") await sql`alter table outbox drop constraint outbox_event_id_key`.execute(db);
      else {
        // SQLite drops a column's unique key only with its table: the rows move to a copy without it,
        // and the copy keeps the sequence, so no seq is given out twice.
        await withAutoId(db, db.schema.createTable("outbox_unkeyed"), "seq")
          .addColumn("event_id", "varchar(160)", (c) => c.notNull())
          .addColumn("subject", "varchar(128)", (c) => c.notNull())
          .addColumn("payload", "text", (c) => c.notNull())
          .addColumn("headers", "text", (c) => c.notNull())
          .addColumn("created_at", "bigint", (c) => c.notNull())
          .addColumn("partition_key", "varchar(64)")
          .addColumn("position", "bigint")
          .execute();
        await sql`insert into outbox_unkeyed select seq, event_id, subject, payload, headers, created_at, partition_key, position from outbox`.execute(db);
        await sql`delete from sqlite_sequence where name = 'outbox_unkeyed'`.execute(db);
        await sql`insert into sqlite_sequence (name, seq) select 'outbox_unkeyed', seq from sqlite_sequence where name = 'outbox'`.execute(db);
        await db.schema.dropTable("outbox").execute();
        await db.schema.alterTable("outbox_unkeyed").renameTo("outbox").execute();
      }
    },
  },
};

export interface OutboxTables {
  outbox: {
    seq: Generated<number>;
    event_id: string;
    subject: string;
    payload: string;
    headers: string;
    created_at: number;
    partition_key: string | null;
    position: number | null;
  };
  inbox: { consumer: string; event_id: string; handled_at: number };
}

export interface OutgoingEvent {
  subject: string;
  data: unknown;
  /** Stable id when the event has a natural one; otherwise the caller's newId(). */
  id: string;
  headers?: Record<string, string>;
  /** The event's place in a gap-free sequence of its own (`key`), for events only a leader publishes. */
  position?: EventPosition;
}

export interface EventPosition {
  key: string;
  seq: number;
}

type OutboxRow = Omit<OutboxTables["outbox"], "seq">;
type InboxRow = OutboxTables["inbox"];

/** The statements every message passes through, prepared once (see prepared.ts). */
const q = {
  addEvents: prepare((db: Kysely<OutboxTables>, $: { rows: OutboxRow[] }) =>
    db.insertInto("outbox").values($.rows),
  ),
  oldest: prepare((db: Kysely<OutboxTables>, $: { limit: number }) => db.selectFrom("outbox").selectAll().orderBy("seq").limit($.limit)),
  published: prepare((db: Kysely<OutboxTables>, $: { seqs: number[] }) => db.deleteFrom("outbox").where("seq", "in", $.seqs)),
  publishedThrough: prepare((db: Kysely<OutboxTables>, $: { last: number }) => db.deleteFrom("outbox").where("seq", "<=", $.last)),
  handled: prepare((db: Kysely<OutboxTables>, $: { consumer: string; ids: string[] }) => db.selectFrom("inbox").select("event_id").where("consumer", "=", $.consumer).where("event_id", "in", $.ids)),
  handle: prepare((db: Kysely<OutboxTables>, $: { rows: InboxRow[] }) =>
    db.insertInto("inbox").values($.rows),
  ),
};

/** An event as its outbox row holds it, with the row's seq: what the relay publishes. */
export interface StoredEvent {
  seq: number;
  id: string;
  subject: string;
  json: string;
  headers: Record<string, string>;
}

/**
 * Writes events in the caller's transaction: they exist exactly when the state change does. On SQLite
 * answers them with their seqs (one writer: a multi-row insert's rows take consecutive seqs ending at
 * its last rowid), for the relay to be handed once the transaction commits.
 */
export async function writeOutbox(trx: Kysely<any>, events: OutgoingEvent[], now: number): Promise<StoredEvent[] | undefined> {
  if (events.length === 0) return undefined;
  const rows = events.map((e) => ({
    event_id: e.id,
    subject: e.subject,
    payload: JSON.stringify(e.data),
    headers: JSON.stringify(e.headers ?? {}),
    created_at: now,
    partition_key: e.position?.key ?? null,
    position: e.position?.seq ?? null,
  }));
  if (dialectOf(trx) !== "sqlite") {
    await q.addEvents.run(trx, { rows });
    return undefined;
  }
  const first = (await q.addEvents.insertId(trx, { rows })) - rows.length + 1;
  return events.map((e, i) => ({ seq: first + i, id: e.id, subject: e.subject, json: rows[i].payload, headers: e.headers ?? {} }));
}

/** How often a standby learns what its leader published and drops it from its own outbox. */
const FOLLOW_EVERY_MS = 1000;
/** Rows published in one pass at most. */
const BATCH = 256;
/** Events handed over and not yet published beyond which the relay forgets them and reads the table (the stream is down). */
const MAX_HANDED = 10_000;

/**
 * Moves committed outbox rows to the stream in order, then deletes them. A crash between publish
 * and delete republishes the same ids, which the stream's dedup and the consumers' inbox absorb.
 *
 * On SQLite the committed events are also handed over in memory (`handOver`), and while they follow
 * on from the last row published without a gap they go out without reading their rows back; only
 * the delete touches the table. Anything else — a start, a gap, a failed pass — reads the table,
 * which is always right.
 *
 * With a leadership (replicas that compute the same events), only the leader publishes, and after
 * each batch records how far each sequence got; a standby keeps its rows and drops those its leader
 * recorded, so on taking over it publishes exactly from where the leader stopped.
 */
export class OutboxRelay {
  private stopped = false;
  /** Committed events by seq, not yet published (SQLite without a leadership only). */
  private readonly handed = new Map<number, StoredEvent>();
  /** The seq after the last row published, once a pass has published one. */
  private next?: number;
  private publishedHanded = false;
  private readonly pause = new Pause();
  private pending = false;
  private running?: Promise<void>;
  /** While leading: the last published position per sequence key (undefined until loaded). */
  private progress?: Record<string, number>;
  private followedAt = -Infinity;

  constructor(
    private readonly sdb: ServiceDb<any>,
    private readonly stream: Stream,
    private readonly logger: Logger,
    private readonly leadership?: Leadership,
  ) {
    leadership?.onChange((leading) => {
      this.progress = undefined;
      if (leading) this.kick();
    });
  }

  start(): void {
    this.running = this.loop();
  }

  /** Called after a commit that wrote events, so they leave at once instead of at the next poll. */
  kick(): void {
    this.pending = true;
    this.pause.wake();
  }

  /** The events of a transaction that has committed, with their seqs: published from here when they follow on. */
  handOver(events: StoredEvent[]): void {
    if (!this.leadership) {
      if (this.handed.size + events.length > MAX_HANDED) this.handed.clear();
      for (const e of events) if (this.next === undefined || e.seq >= this.next) this.handed.set(e.seq, e);
    }
    this.kick();
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      this.pending = false;
      try {
        const moved = await this.relayBatch();
        failures = 0;
        // Past the last event handed over, the table holds nothing more unless a gap says so (the next
        // hand-over finds it; a poll too): wait for one rather than read the table for nothing.
        if (moved > 0 && !this.caughtUp()) continue;
      } catch (err) {
        failures++;
        this.logger.warn({ err, failures }, "outbox relay failed; retrying");
      }
      if (!this.pending) await this.pause.for(failures > 0 ? Math.min(5000, 100 * 2 ** failures) : 500);
    }
  }

  /** Relays up to one batch; returns how many rows moved. */
  async relayBatch(): Promise<number> {
    const { leadership } = this;
    if (leadership && !leadership.leading) {
      await this.follow(leadership);
      return 0;
    }
    if (leadership && !this.progress) {
      const progress = await leadership.loadProgress();
      await this.dropPublished(progress);
      this.progress = progress;
    }
    this.publishedHanded = this.next !== undefined && this.handed.has(this.next);
    if (this.publishedHanded) return this.relayHanded(this.next!);
    const rows = await q.oldest.all(this.sdb.db as Kysely<OutboxTables>, { limit: BATCH });
    if (rows.length === 0) return 0;
    // Fencing: checked again right before publishing, as the lease may have lapsed during the read.
    if (leadership && !leadership.leading) return 0;
    await this.stream.publishAll(
      rows.map((row) => ({ subject: row.subject, json: row.payload, id: row.event_id, headers: JSON.parse(row.headers) })),
    );
    if (leadership && this.progress) {
      const progress = this.progress;
      for (const row of rows) if (row.partition_key !== null && row.position !== null) progress[row.partition_key] = Math.max(progress[row.partition_key] ?? 0, Number(row.position));
      // Refused: deposed meanwhile. The rows stay; the successor's dedup absorbs what just went out.
      if (!(await leadership.saveProgress(progress))) return 0;
    }
    const db = this.sdb.db as Kysely<OutboxTables>;
    // Exactly the rows published: on a server engine a transaction holding a lower seq may commit
    // after this read, and a range delete would drop its event unpublished. SQLite has one writer,
    // so the read saw every row up to its last: a range, one statement whatever the batch's length.
    if (dialectOf(db) === "sqlite") {
      const last = rows[rows.length - 1].seq;
      await q.publishedThrough.run(db, { last });
      this.next = last + 1;
      for (const seq of this.handed.keys()) if (seq <= last) this.handed.delete(seq);
    } else await q.published.run(db, { seqs: rows.map((r) => r.seq) });
    return rows.length;
  }

  /** Whether the last pass published handed-over events and none follow them yet. */
  private caughtUp(): boolean {
    return this.publishedHanded && this.next !== undefined && !this.handed.has(this.next);
  }

  /** Publishes the handed-over events that run on without a gap from `from`, then deletes their rows. */
  private async relayHanded(from: number): Promise<number> {
    const events: StoredEvent[] = [];
    for (let seq = from; events.length < BATCH; seq++) {
      const e = this.handed.get(seq);
      if (!e) break;
      events.push(e);
      this.handed.delete(seq);
    }
    // A failure from here leaves `next` where it was: the next pass reads those rows from the table.
    await this.stream.publishAll(events.map((e) => ({ subject: e.subject, json: e.json, id: e.id, headers: e.headers })));
    const last = from + events.length - 1;
    await q.publishedThrough.run(this.sdb.db as Kysely<OutboxTables>, { last });
    this.next = last + 1;
    return events.length;
  }

  /** As a standby: drop what the leader has published (at most once per FOLLOW_EVERY_MS). */
  private async follow(leadership: Leadership): Promise<void> {
    const now = performance.now();
    if (now - this.followedAt < FOLLOW_EVERY_MS) return;
    this.followedAt = now;
    await this.dropPublished(await leadership.loadProgress());
  }

  private async dropPublished(progress: Record<string, number>): Promise<void> {
    for (const [key, position] of Object.entries(progress))
      await (this.sdb.db as Kysely<OutboxTables>).deleteFrom("outbox").where("partition_key", "=", key).where("position", "<=", position).execute();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.pause.wake();
    await this.running;
  }
}

/**
 * Runs `apply` in one transaction with the inbox row for (consumer, message id): a redelivered
 * message finds its row and is skipped, so its effect happens once. Returns false for a repeat.
 */
export async function handleOnce<T>(
  sdb: ServiceDb<T>,
  consumer: string,
  message: StreamMessage,
  now: number,
  apply: (trx: Kysely<T>) => Promise<void>,
  /** The handle to run in: the service's own, or one tenant's when the message is about one tenant. */
  db: Kysely<T> = sdb.db,
): Promise<boolean> {
  try {
    return await db.transaction().execute(async (trx) => {
      const inbox = trx as unknown as Kysely<OutboxTables>;
      if (await q.handled.first(inbox, { consumer, ids: [message.id] })) return false;
      await q.handle.run(inbox, { rows: [{ consumer, event_id: message.id, handled_at: now }] });
      await apply(trx);
      return true;
    });
  } catch (err) {
    // Two deliveries raced past the check: the loser's transaction rolled back entirely. Any other
    // conflict is the handler's own and must be redelivered, never mistaken for a repeat.
    if (isUniqueViolation(err) && (await inboxHas(sdb, consumer, message.id))) return false;
    throw err;
  }
}

/**
 * `handleOnce` for consecutive messages in one transaction: the inbox is checked and written for all of
 * them at once, `apply` runs for each one not seen before, in order, then `finish`. Any failure rolls
 * back the whole batch (the caller can then go message by message). Answers the messages applied.
 */
export async function handleBatchOnce<T>(
  sdb: ServiceDb<T>,
  consumer: string,
  messages: StreamMessage[],
  now: number,
  apply: (trx: Kysely<T>, message: StreamMessage) => Promise<void>,
  finish: (trx: Kysely<T>) => Promise<void>,
): Promise<StreamMessage[]> {
  return sdb.db.transaction().execute(async (trx) => {
    const inbox = trx as unknown as Kysely<OutboxTables>;
    const ids = [...new Set(messages.map((m) => m.id))];
    const seen = new Set((await q.handled.all(inbox, { consumer, ids })).map((r) => r.event_id));
    const fresh: StreamMessage[] = [];
    for (const m of messages) {
      // A message twice in one batch (the log deduplicates by id, but only within its window) counts once.
      if (seen.has(m.id)) continue;
      seen.add(m.id);
      fresh.push(m);
    }
    if (fresh.length > 0) await q.handle.run(inbox, { rows: fresh.map((m) => ({ consumer, event_id: m.id, handled_at: now })) });
    for (const m of fresh) await apply(trx, m);
    await finish(trx);
    return fresh;
  });
}

async function inboxHas(sdb: ServiceDb<any>, consumer: string, eventId: string): Promise<boolean> {
  const row = await (sdb.db as Kysely<OutboxTables>)
    .selectFrom("inbox")
    .select("event_id")
    .where("consumer", "=", consumer)
    .where("event_id", "=", eventId)
    .executeTakeFirst();
  return row !== undefined;
}

/** Forgets inbox rows older than `before`: their messages have left the log and cannot be redelivered. */
export async function pruneInbox(sdb: ServiceDb<any>, before: number): Promise<number> {
  const result = await (sdb.db as Kysely<OutboxTables>).deleteFrom("inbox").where("handled_at", "<", before).executeTakeFirst();
  return Number(result.numDeletedRows);
}
