import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { admit, attemptIdFor, campaignOfAttempt, campaignProblem, countsOf, settleRefusal } from "./flash.domain";

const window = { startsAt: 100, endsAt: 200, perUserLimit: 3 };

describe("flash admission", () => {
  it("checks the window, then warming, then stock, then the buyer's limit", () => {
    expect(admit(window, { remaining: 10, used: 0 }, 1, 99)).toEqual({ admitted: false, code: "NOT_STARTED" });
    expect(admit(window, { remaining: 10, used: 0 }, 1, 200)).toEqual({ admitted: false, code: "ENDED" });
    expect(admit(window, { remaining: null, used: 0 }, 1, 150)).toEqual({ admitted: false, code: "NOT_WARM" });
    expect(admit(window, { remaining: 1, used: 3 }, 2, 150)).toEqual({ admitted: false, code: "SOLD_OUT" });
    expect(admit(window, { remaining: 5, used: 2 }, 2, 150)).toEqual({ admitted: false, code: "LIMIT_REACHED" });
    expect(admit(window, { remaining: 2, used: 1 }, 2, 100)).toEqual({ admitted: true });
  });

  it("never admits more than the stock or the limit, whatever the sequence", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 30 }), fc.array(fc.record({ user: fc.integer({ min: 0, max: 5 }), q: fc.integer({ min: 1, max: 4 }) }), { maxLength: 80 }), (stock, asks) => {
        let remaining = stock;
        const used = new Map<number, number>();
        for (const { user, q } of asks) {
          if (admit(window, { remaining, used: used.get(user) ?? 0 }, q, 150).admitted) {
            remaining -= q;
            used.set(user, (used.get(user) ?? 0) + q);
          }
        }
        expect(remaining).toBeGreaterThanOrEqual(0);
        for (const u of used.values()) expect(u).toBeLessThanOrEqual(window.perUserLimit);
      }),
    );
  });
});

describe("flash campaigns", () => {
  const ok = { price: 100, stock: 10, startsAt: 1_000, endsAt: 2_000, perUserLimit: 2 };
  it("refuses a window that ends before it starts or is already over, and a limit above the stock", () => {
    expect(campaignProblem(ok, 500)).toBeNull();
    expect(campaignProblem({ ...ok, endsAt: 1_000 }, 500)?.field).toBe("endsAt");
    expect(campaignProblem(ok, 2_000)?.message).toMatch(/already be over/);
    expect(campaignProblem({ ...ok, perUserLimit: 11 }, 500)?.field).toBe("perUserLimit");
  });

  it("lets the database refuse what would oversell or break a limit", () => {
    expect(settleRefusal({ stock: 5, taken: 4, userUnits: 0, perUserLimit: 2 }, 2)).toBe("SOLD_OUT");
    expect(settleRefusal({ stock: 5, taken: 0, userUnits: 1, perUserLimit: 2 }, 2)).toBe("LIMIT_REACHED");
    expect(settleRefusal({ stock: 5, taken: 3, userUnits: 0, perUserLimit: 2 }, 2)).toBeNull();
  });

  it("counts from the kv when it has the campaign, from the database otherwise", () => {
    expect(countsOf(10, 4, 5)).toEqual({ stock: 10, admitted: 5, ordered: 4, remaining: 5 });
    expect(countsOf(10, 4, null)).toEqual({ stock: 10, admitted: 4, ordered: 4, remaining: 6 });
  });

  it("names an attempt so its campaign can be read back from it", () => {
    expect(campaignOfAttempt(attemptIdFor("cmp1", "abc"))).toBe("cmp1");
    expect(campaignOfAttempt("nodot")).toBeNull();
    expect(campaignOfAttempt(".x")).toBeNull();
  });
});
