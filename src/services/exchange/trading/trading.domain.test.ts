import { describe, expect, it } from "vitest";
import { endedStatus, grid, notionalOf, type SymbolSpec, specProblem } from "./trading.domain";

const btc: SymbolSpec = {
  symbol: "BTC-USDT",
  base: "BTC",
  quote: "USDT",
  baseDecimals: 8,
  quoteDecimals: 6,
  tickUnits: 10_000n,
  lotUnits: 10_000n,
  minNotionalUnits: 10_000_000n,
  makerFeeBps: 10,
  takerFeeBps: 20,
};

describe("the grid", () => {
  it("accepts symbols whose every price × quantity is whole quote units", () => {
    expect(specProblem(btc)).toBeNull();
    expect(specProblem({ ...btc, lotUnits: 1n })?.field).toBe("lotSize");
    expect(specProblem({ ...btc, tickUnits: 0n })?.field).toBe("tickSize");
    expect(specProblem({ ...btc, lotUnits: 0n })?.field).toBe("lotSize");
    expect(specProblem({ ...btc, minNotionalUnits: -1n })?.field).toBe("minNotional");
    expect(notionalOf(btc, 3_000_000n, 2_000n)).toBe(6_000_000_000n);
  });

  it("puts an order on the grid and says what it freezes", () => {
    expect(grid(btc, { side: "BUY", type: "LIMIT", priceUnits: 30_000_000_000n, quantityUnits: 20_000_000n })).toEqual({ ticks: 3_000_000n, lots: 2_000n, freezeAsset: "QUOTE", freezeUnits: 6_000_000_000n });
    expect(grid(btc, { side: "SELL", type: "MARKET", priceUnits: null, quantityUnits: 20_000_000n })).toEqual({ ticks: 0n, lots: 2_000n, freezeAsset: "BASE", freezeUnits: 20_000_000n });
    expect(grid(btc, { side: "BUY", type: "MARKET", priceUnits: null, quantityUnits: 20_000_000n })).toMatchObject({ code: "PRICE_REQUIRED" });
    expect(grid(btc, { side: "SELL", type: "LIMIT", priceUnits: null, quantityUnits: 20_000_000n })).toMatchObject({ code: "PRICE_REQUIRED" });
    expect(grid(btc, { side: "BUY", type: "LIMIT", priceUnits: 30_000_000_001n, quantityUnits: 20_000_000n })).toMatchObject({ code: "PRICE_OFF_TICK" });
    expect(grid(btc, { side: "BUY", type: "LIMIT", priceUnits: 0n, quantityUnits: 20_000_000n })).toMatchObject({ code: "INVALID_PRICE" });
    expect(grid(btc, { side: "BUY", type: "LIMIT", priceUnits: 30_000_000_000n, quantityUnits: 1n })).toMatchObject({ code: "QUANTITY_OFF_LOT" });
    expect(grid(btc, { side: "BUY", type: "LIMIT", priceUnits: 30_000_000_000n, quantityUnits: 0n })).toMatchObject({ code: "INVALID_QUANTITY" });
    expect(grid(btc, { side: "BUY", type: "LIMIT", priceUnits: 10_000n, quantityUnits: 10_000n })).toMatchObject({ code: "BELOW_MIN_NOTIONAL" });
  });

  it("names an ended order's status from the engine's reason", () => {
    expect(endedStatus("FILLED", 5n)).toBe("FILLED");
    expect(endedStatus("WOULD_TAKE", 0n)).toBe("REJECTED");
    expect(endedStatus("DUPLICATE_ID", 0n)).toBe("REJECTED");
    expect(endedStatus("EXPIRED", 0n)).toBe("CANCELLED");
    expect(endedStatus("SELF_TRADE", 3n)).toBe("CANCELLED");
    expect(endedStatus("CANCELLED", 0n)).toBe("CANCELLED");
  });
});
