import type { Generated, Kysely, Migration } from "kysely";
import { createPartialIndex, dropIndex, type PartialCondition, withAutoId } from "../../../platform/db/db";
import type { OrderKind, OrderSide, OrderStatus } from "./trading.domain";

/** Units are bigint, stored as decimal strings (see the account service). */
export interface TradingTables {
  symbols: {
    symbol: string;
    base: string;
    quote: string;
    base_decimals: number;
    quote_decimals: number;
    tick_units: string;
    lot_units: string;
    min_notional_units: string;
    maker_fee_bps: number;
    taker_fee_bps: number;
    status: "TRADING" | "HALTED";
    created_at: number;
  };
  /** Order ids are the engine's: numeric, from this table. */
  orders: {
    id: Generated<number>;
    user_id: number;
    symbol: string;
    side: OrderSide;
    type: OrderKind;
    tif: string;
    price_ticks: string;
    quantity_lots: string;
    filled_lots: string;
    /** Quote units the fills cost: the average price, and (for a buy) what is left frozen. */
    filled_notional: string;
    freeze_asset: string;
    freeze_units: string;
    status: OrderStatus;
    reason: string | null;
    client_order_id: string | null;
    created_at: number;
    updated_at: number;
  };
  trades: {
    id: string;
    symbol: string;
    seq: number;
    taker_order: number;
    maker_order: number;
    buyer_id: number;
    seller_id: number;
    price_ticks: string;
    quantity_lots: string;
    notional: string;
    at: number;
  };
}

export type TradingDb = Kysely<TradingTables>;

export const tradingMigrations: Record<string, Migration> = {
  "0001_exchange_trading": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("symbols")
        .addColumn("symbol", "varchar(40)", (c) => c.primaryKey())
        .addColumn("base", "varchar(16)", (c) => c.notNull())
        .addColumn("quote", "varchar(16)", (c) => c.notNull())
        .addColumn("base_decimals", "integer", (c) => c.notNull())
        .addColumn("quote_decimals", "integer", (c) => c.notNull())
        .addColumn("tick_units", "varchar(48)", (c) => c.notNull())
        .addColumn("lot_units", "varchar(48)", (c) => c.notNull())
        .addColumn("min_notional_units", "varchar(48)", (c) => c.notNull())
        .addColumn("maker_fee_bps", "integer", (c) => c.notNull())
        .addColumn("taker_fee_bps", "integer", (c) => c.notNull())
        .addColumn("status", "varchar(10)", (c) => c.notNull())
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .execute();
      await withAutoId(db, db.schema.createTable("orders"), "id")
        .addColumn("user_id", "bigint", (c) => c.notNull())
        .addColumn("symbol", "varchar(40)", (c) => c.notNull())
        .addColumn("side", "varchar(4)", (c) => c.notNull())
        .addColumn("type", "varchar(8)", (c) => c.notNull())
        .addColumn("tif", "varchar(10)", (c) => c.notNull())
        .addColumn("price_ticks", "varchar(48)", (c) => c.notNull())
        .addColumn("quantity_lots", "varchar(48)", (c) => c.notNull())
        .addColumn("filled_lots", "varchar(48)", (c) => c.notNull())
        .addColumn("filled_notional", "varchar(48)", (c) => c.notNull())
        .addColumn("freeze_asset", "varchar(16)", (c) => c.notNull())
        .addColumn("freeze_units", "varchar(48)", (c) => c.notNull())
        .addColumn("status", "varchar(20)", (c) => c.notNull())
        .addColumn("reason", "varchar(40)")
        .addColumn("client_order_id", "varchar(64)")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .addUniqueConstraint("orders_client_id", ["user_id", "client_order_id"])
        .execute();
      await db.schema.createIndex("orders_user").on("orders").columns(["user_id", "symbol", "id"]).execute();
      await db.schema.createIndex("orders_status").on("orders").columns(["status", "created_at"]).execute();
      await db.schema
        .createTable("trades")
        .addColumn("id", "varchar(80)", (c) => c.primaryKey())
        .addColumn("symbol", "varchar(40)", (c) => c.notNull())
        .addColumn("seq", "bigint", (c) => c.notNull())
        .addColumn("taker_order", "bigint", (c) => c.notNull())
        .addColumn("maker_order", "bigint", (c) => c.notNull())
        .addColumn("buyer_id", "bigint", (c) => c.notNull())
        .addColumn("seller_id", "bigint", (c) => c.notNull())
        .addColumn("price_ticks", "varchar(48)", (c) => c.notNull())
        .addColumn("quantity_lots", "varchar(48)", (c) => c.notNull())
        .addColumn("notional", "varchar(48)", (c) => c.notNull())
        .addColumn("at", "bigint", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("trades_buyer").on("trades").columns(["buyer_id", "symbol"]).execute();
      await db.schema.createIndex("trades_seller").on("trades").columns(["seller_id", "symbol"]).execute();
    },
  },
  /**
   * The sweeper's question (which orders are still in entry, or giving their freeze back) asked of an
   * index over those orders alone: the full index took an entry for every order ever placed, and moved
   * it at every change of status — two or three times an order.
   */
  "0002_exchange_trading_orders_in_entry": {
    async up(db: Kysely<any>) {
      await dropIndex(db, "orders_status", "orders");
      await createPartialIndex(db, "orders_in_entry", "orders", ["status", "created_at"], IN_ENTRY);
    },
  },
};

/** Orders whose entry has not ended: PENDING until on the log, VOIDING while their freeze goes back. */
export const IN_ENTRY: PartialCondition = { column: "status", values: ["PENDING", "VOIDING"] };
