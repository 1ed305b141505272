import { z } from "zod";
import type { RouteDef } from "../../../platform/gateway/routes";
import { INTERVALS } from "./market.domain";

const symbol = z
  .string()
  .trim()
  .toUpperCase()
  .regex(/^[A-Z0-9]{2,16}-[A-Z0-9]{2,16}$/, "BASE-QUOTE, e.g. BTC-USDT");

export const MarketContract = {
  trades: z.object({ symbol, limit: z.coerce.number().int().min(1).max(1000).default(100) }),
  klines: z.object({
    symbol,
    interval: z.enum(Object.keys(INTERVALS) as [keyof typeof INTERVALS, ...(keyof typeof INTERVALS)[]]).default("1m"),
    limit: z.coerce.number().int().min(1).max(1000).default(500),
  }),
  tickers: z.object({}),
};

export const marketRoutes: RouteDef[] = [
  { method: "GET", path: "/api/exchange/trades", action: "market.trades", auth: "public" },
  { method: "GET", path: "/api/exchange/klines", action: "market.klines", auth: "public" },
  { method: "GET", path: "/api/exchange/tickers", action: "market.tickers", auth: "public" },
];
