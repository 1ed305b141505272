import type { Kysely } from "kysely";
import type { ServiceBroker, ServiceSchema } from "moleculer";
import { iso } from "../../../platform/clock/clock";
import { routesWithSchemas } from "../../../platform/gateway/routes";
import { action } from "../../../platform/runtime/action";
import { push } from "../../../platform/gateway/push";
import { notFound } from "../../../platform/runtime/errors";
import type { Platform } from "../../../platform/runtime/platform";
import type { Emit } from "../../../platform/runtime/service-host";
import { type MatchingEvent, MatchingSubjects } from "../matching/matching.contract";
import { MarketContract as C, marketRoutes } from "./market.contract";
import { bucketOf, type Candle, INTERVALS, type Interval, scaled, tickerOf, withTrade } from "./market.domain";
import { marketMigrations, type MarketTables } from "./market.store";

interface Grid {
  tickSize: string;
  lotSize: string;
}

const DAY = 86_400_000;

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

  async function onTrade(trx: Kysely<MarketTables>, e: Extract<MatchingEvent, { kind: "TRADE" }>, emit: Emit): Promise<void> {
    if (await trx.selectFrom("trades").select("seq").where("symbol", "=", e.symbol).where("seq", "=", e.seq).executeTakeFirst()) return;
    await trx.insertInto("trades").values({ symbol: e.symbol, seq: e.seq, price: e.price, quantity: e.quantity, taker_side: e.takerSide, at: e.at }).execute();
    const feed: PublicTrade = { symbol: e.symbol, seq: e.seq, price: e.price, quantity: e.quantity, takerSide: e.takerSide, at: e.at };
    emit(MARKET_TRADE, feed, `market-trade:${e.symbol}:${e.seq}`);
    // The trade's candle in every interval: read in one statement, then each updated, the new ones inserted together.
    const buckets = (Object.keys(INTERVALS) as Interval[]).map((interval) => ({ interval, openTime: bucketOf(e.at, interval) }));
    const rows = await host.store
      .forUpdate(
        trx
          .selectFrom("klines")
          .selectAll()
          .where("symbol", "=", e.symbol)
          .where((eb) => eb.or(buckets.map((b) => eb.and([eb("interval", "=", b.interval), eb("open_time", "=", b.openTime)])))),
      )
      .execute();
    const fresh = [];
    for (const { interval, openTime } of buckets) {
      const row = rows.find((r) => r.interval === interval && Number(r.open_time) === openTime);
      const next = withTrade(row && candleOf(row), openTime, e.price, e.quantity);
      const values = { open: next.open, high: next.high, low: next.low, close: next.close, volume: next.volume, trades: next.trades };
      if (row) await trx.updateTable("klines").set(values).where("symbol", "=", e.symbol).where("interval", "=", interval).where("open_time", "=", openTime).execute();
      else fresh.push({ symbol: e.symbol, interval, open_time: openTime, ...values });
    }
    if (fresh.length > 0) await trx.insertInto("klines").values(fresh).execute();
  }

  function pushTrade(t: PublicTrade): void {
    const g = grids.get(t.symbol)!;
    push(broker, "trades", t.symbol, { seq: t.seq, price: scaled(t.price, g.tickSize), quantity: scaled(t.quantity, g.lotSize), takerSide: t.takerSide, at: iso(t.at) });
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
        const e = message.data as MatchingEvent;
        if (e.kind === "TRADE") await onTrade(trx, e, emit);
      });
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
      await host.stop();
    },
  };
}
