import { z } from "zod";
import type { RouteDef } from "../../../platform/gateway/routes";

const symbol = z
  .string()
  .trim()
  .toUpperCase()
  .regex(/^[A-Z0-9]{2,16}-[A-Z0-9]{2,16}$/, "BASE-QUOTE, e.g. BTC-USDT");
const decimal = z.string().regex(/^\d+(\.\d+)?$/, "a decimal number as a string, e.g. \"30000.5\"");
const id = z.coerce.number().int().positive();

export const TradingContract = {
  createSymbol: z.object({
    symbol,
    base: z.string().trim().toUpperCase(),
    quote: z.string().trim().toUpperCase(),
    tickSize: decimal,
    lotSize: decimal,
    minNotional: decimal,
    makerFeeBps: z.number().int().min(0).max(1000),
    takerFeeBps: z.number().int().min(0).max(1000),
  }),
  setSymbolStatus: z.object({ symbol, status: z.enum(["TRADING", "HALTED"]) }),
  listSymbols: z.object({}),
  place: z.object({
    symbol,
    side: z.enum(["BUY", "SELL"]),
    type: z.enum(["LIMIT", "MARKET"]),
    timeInForce: z.enum(["GTC", "IOC", "FOK", "POST_ONLY"]).optional(),
    price: decimal.optional(),
    quantity: decimal,
    clientOrderId: z.string().trim().min(1).max(64).optional(),
  }),
  cancel: z.object({ id }),
  cancelAll: z.object({ symbol }),
  get: z.object({ id }),
  list: z.object({ symbol: symbol.optional(), status: z.enum(["open", "all"]).default("all"), limit: z.coerce.number().int().min(1).max(500).default(100) }),
  myTrades: z.object({ symbol: symbol.optional(), limit: z.coerce.number().int().min(1).max(500).default(100) }),
  tick: z.object({}),
};

export interface OrderView {
  orderId: number;
  clientOrderId: string | null;
  symbol: string;
  side: string;
  type: string;
  timeInForce: string;
  price: string | null;
  quantity: string;
  filledQuantity: string;
  averagePrice: string | null;
  status: string;
  reason: string | null;
  createdAt: string;
}

export const tradingRoutes: RouteDef[] = [
  { method: "POST", path: "/api/exchange/admin/symbols", action: "trading.createSymbol", auth: ["operator"], status: 201 },
  { method: "PUT", path: "/api/exchange/admin/symbols/:symbol/status", action: "trading.setSymbolStatus", auth: ["operator"] },
  { method: "GET", path: "/api/exchange/symbols", action: "trading.listSymbols", auth: "public" },
  { method: "POST", path: "/api/exchange/orders", action: "trading.place", auth: "user", status: 201 },
  { method: "DELETE", path: "/api/exchange/orders/:id", action: "trading.cancel", auth: "user" },
  { method: "DELETE", path: "/api/exchange/orders", action: "trading.cancelAll", auth: "user" },
  { method: "GET", path: "/api/exchange/orders/:id", action: "trading.get", auth: "user" },
  { method: "GET", path: "/api/exchange/orders", action: "trading.list", auth: "user" },
  { method: "GET", path: "/api/exchange/my-trades", action: "trading.myTrades", auth: "user" },
];
