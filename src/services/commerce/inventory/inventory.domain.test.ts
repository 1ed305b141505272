import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { available, canTransition, isHeld, isRefusal, type Level, type MovementKind, move, normaliseItems } from "./inventory.domain";

describe("stock movements", () => {
  const level = { onHand: 10, reserved: 4 };

  it("holds, returns and sells stock", () => {
    expect(move(level, "RESERVE", 6)).toEqual({ onHand: 10, reserved: 10 });
    expect(move(level, "RELEASE", 4)).toEqual({ onHand: 10, reserved: 0 });
    expect(move(level, "EXPIRE", 1)).toEqual({ onHand: 10, reserved: 3 });
    expect(move(level, "SELL", 4)).toEqual({ onHand: 6, reserved: 0 });
    expect(move(level, "SET", 20)).toEqual({ onHand: 20, reserved: 4 });
    expect(move(level, "RETURN", 3)).toEqual({ onHand: 13, reserved: 4 });
    expect(move(level, "TRANSFER_OUT", 6)).toEqual({ onHand: 4, reserved: 4 });
    expect(move(level, "TRANSFER_IN", 6)).toEqual({ onHand: 16, reserved: 4 });
  });

  it("refuses to hold more than is available, or to count below what is held", () => {
    expect(move(level, "RESERVE", 7)).toMatchObject({ code: "INSUFFICIENT_STOCK" });
    expect(move(level, "TRANSFER_OUT", 7)).toMatchObject({ code: "INSUFFICIENT_STOCK" });
    expect(move(level, "SET", 3)).toMatchObject({ code: "STOCK_BELOW_RESERVED" });
  });

  it("never lets a level go negative, whatever the sequence", () => {
    const kinds: MovementKind[] = ["SET", "RESERVE", "RELEASE", "EXPIRE", "SELL", "RETURN", "TRANSFER_OUT", "TRANSFER_IN"];
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...kinds), fc.nat(50)), { maxLength: 60 }), (steps) => {
        let l: Level = { onHand: 0, reserved: 0 };
        for (const [kind, q] of steps) {
          // A sale only ever sells what a reservation holds.
          const quantity = kind === "SELL" ? Math.min(q, l.reserved) : q;
          const next = move(l, kind, quantity);
          if (!isRefusal(next)) l = next;
          if (l.onHand < 0 || l.reserved < 0 || available(l) < 0) return false;
        }
        return true;
      }),
    );
  });
});

describe("reservations", () => {
  it("are held until sold, released or expired, and end once", () => {
    expect(canTransition("RESERVED", "CONFIRMED")).toBe(true);
    expect(canTransition("RESERVED", "SOLD")).toBe(false);
    expect(canTransition("CONFIRMED", "SOLD")).toBe(true);
    expect(canTransition("CONFIRMED", "EXPIRED")).toBe(true);
    expect(canTransition("EXPIRED", "CONFIRMED")).toBe(false);
    expect(canTransition("SOLD", "RELEASED")).toBe(false);
    expect(["RESERVED", "CONFIRMED", "SOLD", "RELEASED", "EXPIRED"].filter((s) => isHeld(s as never))).toEqual(["RESERVED", "CONFIRMED"]);
  });

  it("merge lines by SKU and warehouse, in a stable order", () => {
    expect(
      normaliseItems([
        { sku: "pen", quantity: 1 },
        { sku: "cap", quantity: 2, warehouse: "east" },
        { sku: "pen", quantity: 3, warehouse: "main" },
        { sku: "cap", quantity: 1, warehouse: "west" },
      ]),
    ).toEqual([
      { sku: "cap", warehouse: "east", quantity: 2 },
      { sku: "cap", warehouse: "west", quantity: 1 },
      { sku: "pen", warehouse: "main", quantity: 4 },
    ]);
  });
});
