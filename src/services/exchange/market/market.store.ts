import type { Kysely, Migration } from "kysely";

export interface MarketTables {
  /** The public trades feed: price in ticks, quantity in lots (the symbol's grid). */
  trades: { symbol: string; seq: number; price: number; quantity: number; taker_side: "BUY" | "SELL"; at: number };
  /** One row per symbol, interval and bucket. */
  klines: { symbol: string; interval: string; open_time: number; open: number; high: number; low: number; close: number; volume: number; trades: number };
}

export const marketMigrations: Record<string, Migration> = {
  "0001_exchange_market": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("trades")
        .addColumn("symbol", "varchar(40)", (c) => c.notNull())
        .addColumn("seq", "bigint", (c) => c.notNull())
        .addColumn("price", "bigint", (c) => c.notNull())
        .addColumn("quantity", "bigint", (c) => c.notNull())
        .addColumn("taker_side", "varchar(4)", (c) => c.notNull())
        .addColumn("at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("trades_pk", ["symbol", "seq"])
        .execute();
      await db.schema
        .createTable("klines")
        .addColumn("symbol", "varchar(40)", (c) => c.notNull())
        .addColumn("interval", "varchar(4)", (c) => c.notNull())
        .addColumn("open_time", "bigint", (c) => c.notNull())
        .addColumn("open", "bigint", (c) => c.notNull())
        .addColumn("high", "bigint", (c) => c.notNull())
        .addColumn("low", "bigint", (c) => c.notNull())
        .addColumn("close", "bigint", (c) => c.notNull())
        .addColumn("volume", "bigint", (c) => c.notNull())
        .addColumn("trades", "integer", (c) => c.notNull())
        .addPrimaryKeyConstraint("klines_pk", ["symbol", "interval", "open_time"])
        .execute();
    },
  },
};
