import { z } from "zod";
import type { RouteDef } from "../../../platform/gateway/routes";

const symbol = z.string().regex(/^[A-Z0-9]{2,16}-[A-Z0-9]{2,16}$/, "BASE-QUOTE, e.g. BTC-USDT");
/** When order entry accepted the command (ms): the time of every event it causes, on every replica. */
const at = z.number().int().nonnegative();

/** A command on the symbols' ordered command log, as order entry appends it. Prices in ticks, quantities in lots. */
export const MatchingCommand = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("PLACE"),
    symbol,
    orderId: z.number().int().positive(),
    account: z.number().int().positive(),
    side: z.enum(["BUY", "SELL"]),
    type: z.enum(["LIMIT", "MARKET"]),
    tif: z.enum(["GTC", "IOC", "FOK", "POST_ONLY"]),
    price: z.number().int().min(0),
    quantity: z.number().int().positive(),
    at,
  }),
  z.object({ kind: z.literal("CANCEL"), symbol, orderId: z.number().int().positive(), at }),
]);
export type MatchingCommand = z.infer<typeof MatchingCommand>;

export const MatchingSubjects = {
  /** The ordered command log every engine process follows. */
  commands: "exchange.commands",
  /** What the engine decided: one `MatchingOutcome` per command. */
  events: "exchange.events",
} as const;

/** `at`: the time of the command that caused the event (order entry's clock), so every replica emits the same. */
export type MatchingEvent =
  | { kind: "TRADE"; symbol: string; seq: number; at: number; takerId: number; makerId: number; price: number; quantity: number; takerSide: "BUY" | "SELL"; makerRemaining: number }
  | { kind: "RESTED"; symbol: string; seq: number; at: number; orderId: number; side: "BUY" | "SELL"; price: number; remaining: number }
  | { kind: "ENDED"; symbol: string; seq: number; at: number; orderId: number; reason: string; remaining: number };

/**
 * One command's outcome, one message: its events, numbered on from `previous` by the symbol's own
 * gap-free sequence up to `sequence`, and the change to the top of the book it made, if any. A command
 * decides the same events on every replica, so a new leader publishes the same messages.
 */
export interface MatchingOutcome {
  symbol: string;
  previous: number;
  sequence: number;
  events: MatchingEvent[];
  depth?: Pick<DepthUpdate, "bids" | "asks">;
}

/** Changes to the top of a symbol's book, from the event sequence `previous` to `sequence` (the WebSocket depth channel). */
export interface DepthUpdate {
  symbol: string;
  /** The event sequence the book was at before; a client whose book is not at it has missed an update. */
  previous: number;
  sequence: number;
  /** [price, volume] per changed level; volume 0: the level is gone (from the top levels). */
  bids: [number, number][];
  asks: [number, number][];
}

export const MatchingContract = {
  depth: z.object({ symbol, limit: z.coerce.number().int().min(1).max(500).default(20) }),
};

export const matchingRoutes: RouteDef[] = [{ method: "GET", path: "/api/exchange/depth", action: "matching.depth", auth: "public" }];
