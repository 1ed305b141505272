import type { Kysely } from "kysely";
import type { ServiceBroker, ServiceSchema } from "moleculer";
import { iso } from "../../../platform/clock/clock";
import { routesWithSchemas } from "../../../platform/gateway/routes";
import { action } from "../../../platform/runtime/action";
import { push, PushBatcher } from "../../../platform/gateway/push";
import { notFound } from "../../../platform/runtime/errors";
import type { Platform } from "../../../platform/runtime/platform";
import type { Emit } from "../../../platform/runtime/service-host";
import { PerTransaction } from "../../../platform/runtime/per-transaction";
import { type MatchingEvent, type MatchingOutcome, MatchingSubjects } from "../matching/matching.contract";
import { MarketContract as C, marketRoutes } from "./market.contract";
import { bucketOf, type Candle, INTERVALS, type Interval, scaled, tickerOf, withTrade } from "./market.domain";
import { marketMigrations, type MarketTables } from "./market.store";

interface Grid {
  tickSize: string;
  lotSize: string;
}

const DAY = 86_400_000;

/** Trades of a busy symbol are pushed together, at most this often (the first after a quiet spell at once). */
const TRADES_PUSH_MS = 100;

/** The public trades feed on the stream, and the WebSocket channel it is pushed on. */
export const MARKET_TRADE = "exchange.market.trade";

interface PublicTrade {
  symbol: string;
  seq: number;
  price: number;
  quantity: number;
  takerSide: "BUY" | "SELL";
  at: number;
}

/**
 * Market data from the engine's events: the public trades feed and K-lines (1m to 1d) kept as trades
 * arrive, each trade once (by its sequence); 24h tickers from the minute candles. Prices and quantities
 * leave as decimal strings on the symbol's grid.
 */
export function marketService(platform: Platform): ServiceSchema {
  const host = platform.host<MarketTables>("market", marketMigrations);
  const { clock } = platform;
  const grids = new Map<string, Grid>();
  let broker: ServiceBroker;

  async function gridOf(symbol: string): Promise<Grid> {
    const known = grids.get(symbol);
    if (known) return known;
    const symbols = await broker.call<({ symbol: string } & Grid)[], object>("trading.listSymbols", {});
    for (const s of symbols) grids.set(s.symbol, { tickSize: s.tickSize, lotSize: s.lotSize });
    const found = grids.get(symbol);
    if (!found) throw notFound("SYMBOL_NOT_FOUND", `no symbol ${symbol}`);
    return found;
  }

  const candleOf = (r: MarketTables["klines"]): Candle => ({
    openTime: Number(r.open_time),
    open: Number(r.open),
    high: Number(r.high),
    low: Number(r.low),
    close: Number(r.close),
    volume: Number(r.volume),
    trades: Number(r.trades),
  });

  /**
   * A batch's trades and the candles they move, per transaction: each candle read once and written
   * once (with the trades, just before the commit) however many of the batch's trades fall in it.
   */
  interface Batch {
    seqs: Set<string>;
    trades: MarketTables["trades"][];
    candles: Map<string, { symbol: string; interval: Interval; candle: Candle }>;
  }
  const batches = new PerTransaction<Batch>(() => ({ seqs: new Set(), trades: [], candles: new Map() }));
  /** The statements every trade passes through, prepared once (see prepared.ts). */
  const q = {
    recorded: host.prepare((db, $: { symbol: string; seq: number }) => db.selectFrom("trades").select("seq").where("symbol", "=", $.symbol).where("seq", "=", $.seq)),
    candles: host.prepare((db, $: { symbol: string; keys: { interval: Interval; openTime: number }[] }) =>
      host.store.forUpdate(
        db
          .selectFrom("klines")
          .selectAll()
          .where("symbol", "=", $.symbol)
          .where((eb) => eb.or($.keys.map((k) => eb.and([eb("interval", "=", k.interval), eb("open_time", "=", k.openTime)])))),
      ),
    ),
    addTrades: host.prepare((db, $: { rows: MarketTables["trades"][] }) => db.insertInto("trades").values($.rows)),
    setCandles: host.prepare((db, $: { rows: MarketTables["klines"][] }) =>
      host.store.upsert(db.insertInto("klines").values($.rows), ["symbol", "interval", "open_time"], ["open", "high", "low", "close", "volume", "trades"]),
    ),
  };

  async function onTrade(trx: Kysely<MarketTables>, e: Extract<MatchingEvent, { kind: "TRADE" }>, emit: Emit): Promise<void> {
    const b = batches.of(trx);
    const id = `${e.symbol}:${e.seq}`;
    if (b.seqs.has(id) || (await q.recorded.first(trx, { symbol: e.symbol, seq: e.seq }))) return;
    b.seqs.add(id);
    b.trades.push({ symbol: e.symbol, seq: e.seq, price: e.price, quantity: e.quantity, taker_side: e.takerSide, at: e.at });
    const feed: PublicTrade = { symbol: e.symbol, seq: e.seq, price: e.price, quantity: e.quantity, takerSide: e.takerSide, at: e.at };
    emit(MARKET_TRADE, feed, `market-trade:${e.symbol}:${e.seq}`);
    const buckets = (Object.keys(INTERVALS) as Interval[]).map((interval) => {
      const openTime = bucketOf(e.at, interval);
      return { interval, openTime, key: `${e.symbol}|${interval}|${openTime}` };
    });
    const unread = buckets.filter((k) => !b.candles.has(k.key));
    if (unread.length > 0) {
      // The candles this batch has not touched yet, in one statement.
      const rows = await q.candles.all(trx, { symbol: e.symbol, keys: unread });
      for (const r of rows) b.candles.set(`${e.symbol}|${r.interval}|${Number(r.open_time)}`, { symbol: e.symbol, interval: r.interval as Interval, candle: candleOf(r) });
    }
    for (const { interval, openTime, key } of buckets) {
      const known = b.candles.get(key);
      b.candles.set(key, { symbol: e.symbol, interval, candle: withTrade(known?.candle, openTime, e.price, e.quantity) });
    }
  }

  async function writeBatch(trx: Kysely<MarketTables>): Promise<void> {
    const b = batches.take(trx);
    if (!b) return;
    if (b.trades.length > 0) await q.addTrades.run(trx, { rows: b.trades });
    const candles = [...b.candles.values()].map(({ symbol, interval, candle: c }) => ({
      symbol,
      interval,
      open_time: c.openTime,
      open: c.open,
      high: c.high,
      low: c.low,
      close: c.close,
      volume: c.volume,
      trades: c.trades,
    }));
    if (candles.length > 0)
      await q.setCandles.run(trx, { rows: candles });
  }

  // A symbol's trades go to WebSocket subscribers as lists, at most one push per TRADES_PUSH_MS.
  const tradePushes = new PushBatcher<object>((channel, key, items) => push(broker, channel, key, items), TRADES_PUSH_MS);

  function pushTrade(t: PublicTrade): void {
    const g = grids.get(t.symbol)!;
    tradePushes.add("trades", t.symbol, { seq: t.seq, price: scaled(t.price, g.tickSize), quantity: scaled(t.quantity, g.lotSize), takerSide: t.takerSide, at: iso(t.at) });
  }

  return {
    name: "market",
    settings: { routes: routesWithSchemas(marketRoutes, C) },
    actions: {
      trades: action(C.trades, async (ctx) => {
        const { symbol, limit } = ctx.params;
        const g = await gridOf(symbol);
        const rows = await host.db.selectFrom("trades").selectAll().where("symbol", "=", symbol).orderBy("seq", "desc").limit(limit).execute();
        return rows.map((t) => ({ seq: Number(t.seq), price: scaled(Number(t.price), g.tickSize), quantity: scaled(Number(t.quantity), g.lotSize), takerSide: t.taker_side, at: iso(Number(t.at)) }));
      }),

      klines: action(C.klines, async (ctx) => {
        const { symbol, interval, limit } = ctx.params;
        const g = await gridOf(symbol);
        const rows = await host.db.selectFrom("klines").selectAll().where("symbol", "=", symbol).where("interval", "=", interval).orderBy("open_time", "desc").limit(limit).execute();
        return rows.reverse().map((r) => {
          const c = candleOf(r);
          return {
            openTime: iso(c.openTime),
            open: scaled(c.open, g.tickSize),
            high: scaled(c.high, g.tickSize),
            low: scaled(c.low, g.tickSize),
            close: scaled(c.close, g.tickSize),
            volume: scaled(c.volume, g.lotSize),
            trades: c.trades,
          };
        });
      }),

      tickers: action(C.tickers, async () => {
        const since = bucketOf(clock.now() - DAY, "1m") + INTERVALS["1m"];
        const rows = await host.db.selectFrom("klines").selectAll().where("interval", "=", "1m").where("open_time", ">=", since).orderBy("symbol").orderBy("open_time").execute();
        const bySymbol = new Map<string, Candle[]>();
        for (const r of rows) bySymbol.set(r.symbol, [...(bySymbol.get(r.symbol) ?? []), candleOf(r)]);
        const out = [];
        for (const [symbol, candles] of bySymbol) {
          const t = tickerOf(candles)!;
          const g = await gridOf(symbol);
          out.push({
            symbol,
            open: scaled(t.open, g.tickSize),
            high: scaled(t.high, g.tickSize),
            low: scaled(t.low, g.tickSize),
            last: scaled(t.last, g.tickSize),
            volume: scaled(t.volume, g.lotSize),
            trades: t.trades,
          });
        }
        return out;
      }),
    },
    created() {
      host.consume(MatchingSubjects.events, async (trx, message, emit) => {
        for (const e of (message.data as MatchingOutcome).events) if (e.kind === "TRADE") await onTrade(trx, e, emit);
      }, { beforeCommit: writeBatch });
      // Recorded trades go to WebSocket subscribers once committed, as decimals on the grid.
      host.onCommitted((events) => {
        for (const e of events) {
          if (e.subject !== MARKET_TRADE) continue;
          const t = e.data as PublicTrade;
          const g = grids.get(t.symbol);
          if (!g) {
            gridOf(t.symbol).then(() => pushTrade(t), (err) => host.logger.warn({ err, symbol: t.symbol }, "trade not pushed"));
            continue;
          }
          pushTrade(t);
        }
      });
    },
    async started() {
      broker = this.broker;
      await host.start();
    },
    async stopped() {
      tradePushes.flush();
      await host.stop();
    },
  };
}
