import { describe, expect, it } from "vitest";
import { bucketOf, scaled, tickerOf, withTrade } from "./market.domain";

describe("candles", () => {
  it("bucket trades by interval and track open, high, low, close and volume", () => {
    const t = Date.UTC(2026, 10, 25, 10, 7, 30);
    expect(bucketOf(t, "1m")).toBe(Date.UTC(2026, 10, 25, 10, 7));
    expect(bucketOf(t, "5m")).toBe(Date.UTC(2026, 10, 25, 10, 5));
    expect(bucketOf(t, "4h")).toBe(Date.UTC(2026, 10, 25, 8));
    expect(bucketOf(t, "1d")).toBe(Date.UTC(2026, 10, 25));
    let c = withTrade(undefined, 0, 100, 2);
    c = withTrade(c, 0, 105, 1);
    c = withTrade(c, 0, 98, 4);
    c = withTrade(c, 0, 101, 1);
    expect(c).toEqual({ openTime: 0, open: 100, high: 105, low: 98, close: 101, volume: 8, trades: 4 });
  });

  it("sum a day of minute candles into a ticker", () => {
    expect(tickerOf([])).toBeNull();
    const a = { openTime: 0, open: 10, high: 12, low: 9, close: 11, volume: 3, trades: 2 };
    const b = { openTime: 60_000, open: 11, high: 15, low: 8, close: 14, volume: 5, trades: 1 };
    expect(tickerOf([a, b])).toEqual({ open: 10, high: 15, low: 8, last: 14, volume: 8, trades: 3 });
  });

  it("turn ticks and lots back into decimals with the step's places", () => {
    expect(scaled(3_000_000, "0.010000")).toBe("30000.000000");
    expect(scaled(25, "0.00010000")).toBe("0.00250000");
    expect(scaled(7, "5")).toBe("35");
  });
});
