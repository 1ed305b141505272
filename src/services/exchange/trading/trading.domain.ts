/**
 * Order entry rules, pure: a symbol's grid (tick, lot, minimum notional, fees) in base units, the
 * conversion of a client's decimal price and quantity onto that grid, what an order must freeze, and
 * the status an order's engine events give it. No I/O.
 */

export interface SymbolSpec {
  symbol: string;
  base: string;
  quote: string;
  baseDecimals: number;
  quoteDecimals: number;
  /** Quote base units per whole base unit, per tick. */
  tickUnits: bigint;
  /** Base units per lot. */
  lotUnits: bigint;
  /** Quote base units. */
  minNotionalUnits: bigint;
  makerFeeBps: number;
  takerFeeBps: number;
}

export type Refusal = { code: string; message: string; field: string };

/** What is wrong with a symbol's grid, or null: every price × quantity on it must be a whole number of quote units. */
export function specProblem(s: SymbolSpec): Refusal | null {
  if (s.tickUnits <= 0n) return { code: "INVALID_SYMBOL", message: "tickSize must be positive and fit the quote asset's decimals", field: "tickSize" };
  if (s.lotUnits <= 0n) return { code: "INVALID_SYMBOL", message: "lotSize must be positive and fit the base asset's decimals", field: "lotSize" };
  if ((s.tickUnits * s.lotUnits) % 10n ** BigInt(s.baseDecimals) !== 0n)
    return { code: "INVALID_SYMBOL", message: "tickSize × lotSize must be a whole number of quote units", field: "lotSize" };
  if (s.minNotionalUnits < 0n) return { code: "INVALID_SYMBOL", message: "minNotional cannot be negative", field: "minNotional" };
  return null;
}

/** Quote units for `lots` at `ticks`. */
export function notionalOf(s: SymbolSpec, ticks: bigint, lots: bigint): bigint {
  return (ticks * s.tickUnits * lots * s.lotUnits) / 10n ** BigInt(s.baseDecimals);
}

export type OrderSide = "BUY" | "SELL";
export type OrderKind = "LIMIT" | "MARKET";

export interface Placement {
  side: OrderSide;
  type: OrderKind;
  /** Price in quote base units (per whole base unit); required for LIMIT and for a MARKET buy (its protection). */
  priceUnits: bigint | null;
  quantityUnits: bigint;
}

export interface Gridded {
  ticks: bigint;
  lots: bigint;
  /** What the order sets aside: quote units for a buy, base units for a sell. */
  freezeAsset: "BASE" | "QUOTE";
  freezeUnits: bigint;
}

/**
 * The order on the symbol's grid and what it must freeze, or why not. A MARKET sell needs no price; a
 * MARKET buy carries `price` as its protection (the worst price it accepts) and freezes up to it.
 */
export function grid(s: SymbolSpec, p: Placement): Gridded | Refusal {
  if (p.quantityUnits <= 0n) return { code: "INVALID_QUANTITY", message: "quantity must be positive", field: "quantity" };
  if (p.quantityUnits % s.lotUnits !== 0n) return { code: "QUANTITY_OFF_LOT", message: `quantity must be a multiple of the lot size`, field: "quantity" };
  const lots = p.quantityUnits / s.lotUnits;
  const needsPrice = p.type === "LIMIT" || p.side === "BUY";
  if (needsPrice && p.priceUnits === null)
    return { code: "PRICE_REQUIRED", message: p.type === "LIMIT" ? "a limit order needs a price" : "a market buy needs a price: the worst it accepts", field: "price" };
  let ticks = 0n;
  if (p.priceUnits !== null) {
    if (p.priceUnits <= 0n) return { code: "INVALID_PRICE", message: "price must be positive", field: "price" };
    if (p.priceUnits % s.tickUnits !== 0n) return { code: "PRICE_OFF_TICK", message: "price must be a multiple of the tick size", field: "price" };
    ticks = p.priceUnits / s.tickUnits;
  }
  if (p.type === "LIMIT" && notionalOf(s, ticks, lots) < s.minNotionalUnits)
    return { code: "BELOW_MIN_NOTIONAL", message: "price × quantity is below the symbol's minimum notional", field: "quantity" };
  if (p.side === "SELL") return { ticks, lots, freezeAsset: "BASE", freezeUnits: p.quantityUnits };
  return { ticks, lots, freezeAsset: "QUOTE", freezeUnits: notionalOf(s, ticks, lots) };
}

export function isRefusal(g: Gridded | Refusal): g is Refusal {
  return "code" in g;
}

/** VOIDING: taken back before it reached the log, its freeze being given back. */
export type OrderStatus = "PENDING" | "VOIDING" | "NEW" | "PARTIALLY_FILLED" | "FILLED" | "CANCELLED" | "REJECTED";

/** The status once the engine ends an order for `reason`, having filled `filledLots` of it. */
export function endedStatus(reason: string, filledLots: bigint): OrderStatus {
  if (reason === "FILLED") return "FILLED";
  // Refused by the engine before anything matched.
  if ((reason === "WOULD_TAKE" || reason === "DUPLICATE_ID") && filledLots === 0n) return "REJECTED";
  return "CANCELLED";
}

export const OPEN: readonly OrderStatus[] = ["PENDING", "NEW", "PARTIALLY_FILLED"];
