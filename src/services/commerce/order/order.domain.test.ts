import { describe, expect, it } from "vitest";
import { canTransition, dayOf, ORDER_STATUSES, totalOf, transitionRefusal } from "./order.domain";

describe("order state machine", () => {
  it("moves forward only along the lifecycle, and ends in COMPLETED-then-REFUNDED, CANCELLED or REFUNDED", () => {
    expect(canTransition("PENDING_PAYMENT", "PAID")).toBe(true);
    expect(canTransition("PENDING_PAYMENT", "CANCELLED")).toBe(true);
    expect(canTransition("PENDING_PAYMENT", "SHIPPED")).toBe(false);
    expect(canTransition("PAID", "CANCELLED")).toBe(false);
    expect(canTransition("SHIPPED", "COMPLETED")).toBe(true);
    expect(canTransition("COMPLETED", "REFUNDED")).toBe(true);
    for (const to of ORDER_STATUSES) {
      expect(canTransition("CANCELLED", to)).toBe(false);
      expect(canTransition("REFUNDED", to)).toBe(false);
    }
  });

  it("names the state that refuses a move", () => {
    expect(transitionRefusal("PAID", "CANCELLED")).toEqual({ code: "ORDER_PAID", message: "the order is paid; it cannot become cancelled" });
    expect(transitionRefusal("PENDING_PAYMENT", "PAID")).toBeNull();
  });
});

describe("money and days", () => {
  it("totals lines in minor units and refuses an unsafe total", () => {
    expect(totalOf([{ sku: "a", quantity: 2, price: 150 }, { sku: "b", quantity: 1, price: 30 }])).toBe(330);
    expect(() => totalOf([{ sku: "a", quantity: 10_000, price: Number.MAX_SAFE_INTEGER }])).toThrow(RangeError);
  });

  it("counts days in UTC", () => {
    expect(dayOf(Date.UTC(2026, 10, 25, 23, 59))).toBe(20261125);
    expect(dayOf(Date.UTC(2026, 10, 26, 0, 0))).toBe(20261126);
  });
});
