/**
 * Market data, pure: K-line buckets and how a trade moves one, 24h tickers from the buckets, and
 * the symbol's grid turning engine ticks and lots back into decimal strings. No I/O.
 */

export const INTERVALS = { "1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000, "4h": 14_400_000, "1d": 86_400_000 } as const;
export type Interval = keyof typeof INTERVALS;

export interface Candle {
  openTime: number;
  open: number;
  high: number;
  low: number;
  close: number;
  /** Lots traded. */
  volume: number;
  trades: number;
}

/** The start of the `interval` bucket a time falls in (UTC, aligned on the epoch). */
export function bucketOf(at: number, interval: Interval): number {
  const size = INTERVALS[interval];
  return at - (((at % size) + size) % size);
}

/** The candle after a trade at `price` for `lots`; `candle` is the bucket's so far, or undefined for its first trade. */
export function withTrade(candle: Candle | undefined, openTime: number, price: number, lots: number): Candle {
  if (!candle) return { openTime, open: price, high: price, low: price, close: price, volume: lots, trades: 1 };
  return {
    openTime,
    open: candle.open,
    high: Math.max(candle.high, price),
    low: Math.min(candle.low, price),
    close: price,
    volume: candle.volume + lots,
    trades: candle.trades + 1,
  };
}

export interface Ticker {
  open: number;
  high: number;
  low: number;
  last: number;
  volume: number;
  trades: number;
}

/** The 24h ticker from the minute candles of the last 24 hours (oldest first), or null without trades. */
export function tickerOf(candles: readonly Candle[]): Ticker | null {
  if (candles.length === 0) return null;
  let high = -Infinity;
  let low = Infinity;
  let volume = 0;
  let trades = 0;
  for (const c of candles) {
    high = Math.max(high, c.high);
    low = Math.min(low, c.low);
    volume += c.volume;
    trades += c.trades;
  }
  return { open: candles[0].open, high, low, last: candles[candles.length - 1].close, volume, trades };
}

/** Ticks (or lots) times a decimal step ("0.010000") as a decimal string with the step's places. */
export function scaled(count: number, step: string): string {
  const [whole, fraction = ""] = step.split(".");
  const units = BigInt(count) * BigInt(whole + fraction);
  const digits = units.toString().padStart(fraction.length + 1, "0");
  return fraction.length === 0 ? digits : `${digits.slice(0, digits.length - fraction.length)}.${digits.slice(digits.length - fraction.length)}`;
}
