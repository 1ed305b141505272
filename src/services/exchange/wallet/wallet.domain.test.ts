import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { afterFreeze, canMove, dayOf, forkPoint, isConfirmed, type Limits, toChainUnits, toLedgerUnits, type WithdrawalStatus, withdrawalProblem } from "./wallet.domain";

const ALL: WithdrawalStatus[] = ["PENDING", "PENDING_APPROVAL", "APPROVED", "SENT", "CONFIRMED", "FAILED", "REJECTED"];

describe("a withdrawal's life", () => {
  it("moves only along its edges; final states go nowhere", () => {
    const edges = ALL.flatMap((from) => ALL.filter((to) => canMove(from, to)).map((to) => `${from}>${to}`));
    expect(edges).toEqual([
      "PENDING>PENDING_APPROVAL",
      "PENDING>APPROVED",
      "PENDING>REJECTED",
      "PENDING_APPROVAL>APPROVED",
      "PENDING_APPROVAL>REJECTED",
      "APPROVED>SENT",
      "SENT>CONFIRMED",
      "SENT>FAILED",
    ]);
    // Nothing sent can be rejected, and nothing approved skips signing.
    expect(canMove("SENT", "REJECTED")).toBe(false);
    expect(canMove("APPROVED", "CONFIRMED")).toBe(false);
  });

  it("waits for an operator only above the threshold", () => {
    expect(afterFreeze(100n, 100n)).toBe("APPROVED");
    expect(afterFreeze(101n, 100n)).toBe("PENDING_APPROVAL");
  });
});

describe("limits", () => {
  const limits: Limits = { maxPerWithdrawal: 50n, dailyMax: 100n, approvalAbove: 10n };
  it("names what is wrong", () => {
    expect(withdrawalProblem(0n, limits, 0n)?.code).toBe("INVALID_AMOUNT");
    expect(withdrawalProblem(-1n, limits, 0n)?.code).toBe("INVALID_AMOUNT");
    expect(withdrawalProblem(51n, limits, 0n)?.code).toBe("ABOVE_LIMIT");
    expect(withdrawalProblem(50n, limits, 50n)).toBeNull();
    expect(withdrawalProblem(50n, limits, 51n)?.code).toBe("DAILY_LIMIT");
  });

  it("never lets a day's total pass the daily maximum", () => {
    fc.assert(
      fc.property(fc.array(fc.bigInt({ min: 1n, max: 60n }), { maxLength: 20 }), (amounts) => {
        let used = 0n;
        for (const a of amounts) if (withdrawalProblem(a, limits, used) === null) used += a;
        return used <= limits.dailyMax;
      }),
    );
  });
});

describe("the chain", () => {
  it("counts a deposit's own block as its first confirmation", () => {
    expect(isConfirmed(10, 12, 3)).toBe(true);
    expect(isConfirmed(10, 11, 3)).toBe(false);
    expect(isConfirmed(10, 10, 1)).toBe(true);
  });

  it("finds the highest scanned block the reorganised chain still has", () => {
    const ours = [
      { number: 105, hash: "e" },
      { number: 104, hash: "d" },
      { number: 103, hash: "c" },
      { number: 102, hash: "b" },
    ];
    const chain = new Map([
      [105, "E'"],
      [104, "D'"],
      [103, "c"],
      [102, "b"],
    ]);
    expect(forkPoint(ours, (n) => chain.get(n))).toBe(103);
    expect(forkPoint(ours, () => "x")).toBeNull();
    // A chain now shorter than what we scanned: the missing heights are not matches.
    expect(forkPoint(ours, (n) => (n > 103 ? undefined : chain.get(n)))).toBe(103);
  });

  it("converts between chain and ledger units without creating any", () => {
    expect(toLedgerUnits(1_234_567_890_123_456_789n, 18, 8)).toBe(123_456_789n);
    expect(toChainUnits(123_456_789n, 8, 18)).toBe(1_234_567_890_000_000_000n);
    expect(toLedgerUnits(5n, 6, 6)).toBe(5n);
    expect(() => toLedgerUnits(1n, 6, 8)).toThrow(/decimals/);
    expect(() => toChainUnits(1n, 8, 6)).toThrow(/decimals/);
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: 10n ** 30n }), (units) => toLedgerUnits(toChainUnits(units, 8, 18), 18, 8) === units));
  });

  it("puts a time in its UTC day", () => {
    expect(dayOf(0)).toBe(0);
    expect(dayOf(86_399_999)).toBe(0);
    expect(dayOf(86_400_000)).toBe(1);
  });
});
