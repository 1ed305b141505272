import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { grantsFor, redemptionRefusal } from "./reward.domain";

const base = { caseId: "c", coinsPerVote: 5, coinsPerCoherentVote: 3 };

describe("grants", () => {
  it("pays voters, adds the bonus to coherent voters, and nothing to non-voters", () => {
    const grants = grantsFor({
      ...base,
      verdict: "UPHELD",
      panel: [
        { reviewerId: 1, decision: "VIOLATION" },
        { reviewerId: 2, decision: "NO_VIOLATION" },
        { reviewerId: 3, decision: null },
      ],
    });
    expect(grants).toEqual([
      { userId: 1, amount: 8, coherent: true },
      { userId: 2, amount: 5, coherent: false },
    ]);
  });
  it("gives no coherence bonus on an expired case and skips zero grants", () => {
    expect(grantsFor({ ...base, verdict: "EXPIRED", panel: [{ reviewerId: 1, decision: "VIOLATION" }] })).toEqual([
      { userId: 1, amount: 5, coherent: false },
    ]);
    expect(grantsFor({ ...base, coinsPerVote: 0, verdict: "REJECTED", panel: [{ reviewerId: 1, decision: "VIOLATION" }] })).toEqual([]);
  });
  it("grants each reviewer at most once per case, whatever the panel list holds", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ reviewerId: fc.integer({ min: 1, max: 8 }), decision: fc.constantFrom("VIOLATION" as const, "NO_VIOLATION" as const, null) })),
        fc.constantFrom("UPHELD" as const, "REJECTED" as const, "EXPIRED" as const),
        (panel, verdict) => {
          const grants = grantsFor({ ...base, verdict, panel });
          expect(new Set(grants.map((g) => g.userId)).size).toBe(grants.length);
          for (const g of grants) expect(g.amount === 5 || g.amount === 8).toBe(true);
        },
      ),
    );
  });
});

describe("redemption", () => {
  it("needs stock and enough coins", () => {
    expect(redemptionRefusal(10, 10, 1)).toBeNull();
    expect(redemptionRefusal(9, 10, 1)?.code).toBe("INSUFFICIENT_COINS");
    expect(redemptionRefusal(100, 10, 0)?.code).toBe("OUT_OF_STOCK");
  });
});
