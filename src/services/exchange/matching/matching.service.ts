import type { ServiceSchema } from "moleculer";
import { push, untilNextBeat } from "../../../platform/gateway/push";
import { routesWithSchemas } from "../../../platform/gateway/routes";
import { action } from "../../../platform/runtime/action";
import type { Leadership } from "../../../platform/election/election";
import type { Platform } from "../../../platform/runtime/platform";
import type { Emit } from "../../../platform/runtime/service-host";
import { PerTransaction } from "../../../platform/runtime/per-transaction";
import { type DepthUpdate, MatchingCommand, MatchingContract as C, type MatchingEvent, type MatchingOutcome, matchingRoutes, MatchingSubjects } from "./matching.contract";
import {
  BUY,
  CANCELLED,
  depthChanges,
  DUPLICATE_ID,
  mergeDepth,
  EXPIRED,
  FILLED,
  FOK,
  GTC,
  IOC,
  LIMIT,
  MARKET,
  type MatchSink,
  OrderBook,
  POST_ONLY,
  SELF_TRADE,
  SELL,
  type Side,
  UNKNOWN_ORDER,
  WOULD_TAKE,
} from "./matching.domain";
import { type MatchingDb, matchingMigrations, type MatchingTables } from "./matching.store";

/** Levels per side that depth updates (and the WebSocket depth channel) follow. */
export const DEPTH_LEVELS = 50;

/**
 * WebSocket depth pushes are conflated to one per symbol per this many ms (a busy book changes on
 * every command; a thousand subscribers cannot take every change). The stream keeps every update.
 */
export const DEPTH_PUSH_MS = 100;

/** A book is saved every this many commands; a restart replays at most this many from the journal. */
export const SNAPSHOT_EVERY = 1000;

const SIDES = { BUY, SELL } as const;
const TYPES = { LIMIT, MARKET } as const;
const TIFS = { GTC, IOC, FOK, POST_ONLY } as const;
const REASONS: Record<number, string> = {
  [FILLED]: "FILLED",
  [EXPIRED]: "EXPIRED",
  [CANCELLED]: "CANCELLED",
  [SELF_TRADE]: "SELF_TRADE",
  [WOULD_TAKE]: "WOULD_TAKE",
  [DUPLICATE_ID]: "DUPLICATE_ID",
  [UNKNOWN_ORDER]: "UNKNOWN_ORDER",
};
const sideName = (s: Side) => (s === BUY ? "BUY" : "SELL");

type Unsequenced<E> = E extends MatchingEvent ? Omit<E, "seq" | "at"> : never;

/** One symbol's engine: its book, where it stands, and the events of the command being applied. */
class Engine implements MatchSink {
  readonly book = new OrderBook(this, 1024);
  readonly pending: Unsequenced<MatchingEvent>[] = [];
  /** While replaying the journal the events were published long ago: none are kept. */
  replaying = false;

  constructor(
    readonly symbol: string,
    public commandSeq: number,
    public eventSeq: number,
  ) {}

  trade(takerId: number, makerId: number, price: number, quantity: number, takerSide: Side, makerRemaining: number): void {
    if (!this.replaying) this.pending.push({ kind: "TRADE", symbol: this.symbol, takerId, makerId, price, quantity, takerSide: sideName(takerSide), makerRemaining });
  }
  rested(orderId: number, side: Side, price: number, remaining: number): void {
    if (!this.replaying) this.pending.push({ kind: "RESTED", symbol: this.symbol, orderId, side: sideName(side), price, remaining });
  }
  ended(orderId: number, reason: number, remaining: number): void {
    if (!this.replaying) this.pending.push({ kind: "ENDED", symbol: this.symbol, orderId, reason: REASONS[reason], remaining });
  }

  apply(c: MatchingCommand): void {
    if (c.kind === "CANCEL") this.book.cancel(c.orderId);
    else this.book.place(c.orderId, c.account, SIDES[c.side], TYPES[c.type], TIFS[c.tif], c.price, c.quantity);
  }
}

/**
 * The matching service (exchange): one in-memory engine per symbol following the ordered command log.
 * Each command is applied once (the inbox), journalled, and its events published with the symbol's own
 * gap-free sequence — all in one transaction; every `SNAPSHOT_EVERY` commands the book is saved, so a
 * restart loads the last snapshot and replays only the journal after it. Deterministic: the same
 * commands always give the same events and the same book.
 */
export function matchingService(platform: Platform): ServiceSchema {
  const { replica } = platform.config;
  if (replica !== undefined && !/^[a-z0-9]{1,16}$/.test(replica)) throw new Error(`BAZAAR_REPLICA must be 1-16 of a-z0-9 (got "${replica}")`);
  // Each replica has its own database and its own durable place on the command log.
  const host = platform.host<MatchingTables>(replica ? `matching_${replica}` : "matching", matchingMigrations);
  const { clock } = platform;
  const engines = new Map<string, Engine>();
  let leadership: Leadership | undefined;
  let depthTimer: NodeJS.Timeout | undefined;
  // Summed over the engines, 1: a leader publishes; 0 for long: nobody does (an alert).
  const leading = platform.metrics.gauge("bazaar_matching_leading", "1 while this matching engine is the leader that publishes, else 0");

  /** The symbol's engine as the database has it: the snapshot, then the journal after it. */
  async function load(db: MatchingDb, symbol: string): Promise<Engine> {
    const state = await db.selectFrom("engines").selectAll().where("symbol", "=", symbol).executeTakeFirst();
    const engine = new Engine(symbol, Number(state?.command_seq ?? 0), Number(state?.event_seq ?? 0));
    const snapshot = await db.selectFrom("snapshots").selectAll().where("symbol", "=", symbol).orderBy("seq", "desc").limit(1).executeTakeFirst();
    if (snapshot) engine.book.restore(JSON.parse(snapshot.book) as number[][]);
    const tail = await db
      .selectFrom("journal")
      .select("command")
      .where("symbol", "=", symbol)
      .where("seq", ">", Number(snapshot?.seq ?? 0))
      .orderBy("seq")
      .execute();
    engine.replaying = true;
    for (const row of tail) engine.apply(JSON.parse(row.command) as MatchingCommand);
    engine.replaying = false;
    return engine;
  }

  const engineState = host.prepare((db, $: { symbol: string }) => host.store.forUpdate(db.selectFrom("engines").select("command_seq").where("symbol", "=", $.symbol)));

  /**
   * The engine for a command, checked against the database inside the command's transaction: one
   * whose last transaction did not commit (the book moved, the rows did not) is thrown away and rebuilt.
   */
  async function engineFor(trx: MatchingDb, symbol: string): Promise<Engine> {
    const state = await engineState.first(trx, { symbol });
    const cached = engines.get(symbol);
    if (cached && cached.commandSeq === Number(state?.command_seq ?? 0)) return cached;
    const fresh = await load(trx, symbol);
    engines.set(symbol, fresh);
    return fresh;
  }

  const saveJournal = host.prepare((db, $: { rows: MatchingTables["journal"][] }) =>
    db.insertInto("journal").values($.rows.map((r) => ({ symbol: r.symbol, seq: r.seq, command: r.command }))),
  );
  const saveEngine = host.prepare((db, $: { symbol: string; commandSeq: number; eventSeq: number }) =>
    host.store.upsert(db.insertInto("engines").values({ symbol: $.symbol, command_seq: $.commandSeq, event_seq: $.eventSeq }), ["symbol"], ["command_seq", "event_seq"]),
  );

  /**
   * A transaction's (a consumer batch's) work per symbol: the engine checked once at its first command,
   * the journal rows and the engine's place written once, just before the commit.
   */
  interface Batch {
    engine: Engine;
    journal: MatchingTables["journal"][];
    snapshotDue: boolean;
  }
  const batches = new PerTransaction(() => new Map<string, Batch>());

  async function onCommand(trx: MatchingDb, c: MatchingCommand, emit: Emit): Promise<void> {
    const symbols = batches.of(trx);
    let b = symbols.get(c.symbol);
    if (!b) symbols.set(c.symbol, (b = { engine: await engineFor(trx, c.symbol), journal: [], snapshotDue: false }));
    const { engine } = b;
    const seq = engine.commandSeq + 1;
    engine.pending.length = 0;
    const before = [engine.book.levels(BUY, DEPTH_LEVELS), engine.book.levels(SELL, DEPTH_LEVELS)];
    engine.apply(c);
    const previous = engine.eventSeq;
    // Replicas must emit identical events: their time is the command's, never the engine's clock.
    const { at } = c;
    const events = engine.pending.map((e, i) => ({ ...e, seq: previous + i + 1, at }) as MatchingEvent);
    const sequence = previous + events.length;
    // One message per command (not per batch): replicas batch differently, and must publish the same
    // messages. Every command decides at least one event (the order's own end or rest).
    const bids = depthChanges(before[0], engine.book.levels(BUY, DEPTH_LEVELS));
    const asks = depthChanges(before[1], engine.book.levels(SELL, DEPTH_LEVELS));
    const outcome: MatchingOutcome = { symbol: c.symbol, previous, sequence, events };
    if (bids.length + asks.length > 0) outcome.depth = { bids, asks };
    emit(MatchingSubjects.events, outcome, `outcome:${c.symbol}:${sequence}`, { key: `events:${c.symbol}`, seq: sequence });
    b.journal.push({ symbol: c.symbol, seq, command: JSON.stringify(c) });
    if (seq % SNAPSHOT_EVERY === 0) b.snapshotDue = true;
    engine.commandSeq = seq;
    engine.eventSeq = sequence;
  }

  async function writeBatch(trx: MatchingDb): Promise<void> {
    const symbols = batches.take(trx);
    if (!symbols) return;
    for (const [symbol, { engine, journal, snapshotDue }] of symbols) {
      await saveJournal.run(trx, { rows: journal });
      await saveEngine.run(trx, { symbol, commandSeq: engine.commandSeq, eventSeq: engine.eventSeq });
      // Taken at the batch's end: the book as of its last command.
      if (snapshotDue) await trx.insertInto("snapshots").values({ symbol, seq: engine.commandSeq, book: JSON.stringify(engine.book.snapshot()), at: clock.now() }).execute();
    }
  }

  return {
    name: "matching",
    settings: { routes: routesWithSchemas(matchingRoutes, C) },
    actions: {
      /** The book's levels best first, with the sequence of the last event it reflects. */
      depth: action(C.depth, async (ctx) => {
        const { symbol, limit } = ctx.params;
        const engine = engines.get(symbol) ?? (await load(host.db, symbol));
        if (!engines.has(symbol)) engines.set(symbol, engine);
        return { symbol, sequence: engine.eventSeq, bids: engine.book.levels(BUY, limit), asks: engine.book.levels(SELL, limit) };
      }),
    },
    created() {
      // Committed depth changes go to WebSocket subscribers of the symbol's depth (from the leader only),
      // merged over DEPTH_PUSH_MS: still a chain a client follows from `previous` to `sequence`.
      const pending = new Map<string, DepthUpdate>();
      const flush = () => {
        depthTimer = undefined;
        if (leadership?.leading) for (const [symbol, update] of pending) push(this.broker, "depth", symbol, update);
        pending.clear();
      };
      host.onCommitted((events) => {
        if (!leadership?.leading) return;
        for (const e of events) {
          if (e.subject !== MatchingSubjects.events) continue;
          const outcome = e.data as MatchingOutcome;
          if (!outcome.depth) continue;
          const update: DepthUpdate = { symbol: outcome.symbol, previous: outcome.previous, sequence: outcome.sequence, ...outcome.depth };
          const before = pending.get(update.symbol);
          pending.set(update.symbol, before ? mergeDepth(before, update) : update);
        }
        if (pending.size > 0 && !depthTimer) depthTimer = setTimeout(flush, untilNextBeat(DEPTH_PUSH_MS));
      });
      host.consume(MatchingSubjects.commands, async (trx, message, emit) => {
        const parsed = MatchingCommand.safeParse(message.data);
        if (!parsed.success) {
          // A malformed command can never apply; holding the log for it would stop every symbol.
          host.logger.error({ id: message.id, issues: parsed.error.issues }, "dropped a malformed command");
          return;
        }
        await onCommand(trx, parsed.data, emit);
      }, { beforeCommit: writeBatch });
    },
    async started() {
      // Every replica follows the whole log and keeps its books current; only the leader publishes.
      leadership = platform.election.campaign("matching", replica ? `${platform.nodeId}/${replica}` : platform.nodeId);
      leading.set(0);
      leadership.onChange((now) => leading.set(now ? 1 : 0));
      host.publishWhileLeading(leadership);
      await host.start();
    },
    async stopped() {
      // Resigning first hands over at once instead of after the lease runs out.
      await leadership?.resign();
      leading.set(0);
      clearTimeout(depthTimer);
      await host.stop();
      engines.clear();
    },
  };
}
