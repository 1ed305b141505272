import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  afterFailure,
  type BranchState,
  type BranchView,
  branchIdOf,
  canCompensate,
  canTransition,
  DEFAULT_RETRY,
  isBusinessRefusal,
  isFinal,
  nextStep,
  retryDelayMs,
  stateAfter,
  TX_STATES,
} from "./tx.domain";

const b = (state: BranchState, attempts = 1, i = 0): BranchView => ({ branchId: branchIdOf(i), state, attempts });
const list = (...states: [BranchState, number?][]) => states.map(([s, a], i) => b(s, a ?? 1, i));

describe("transitions", () => {
  it("ends nowhere after a final state, and leaves STUCK only for a working phase", () => {
    for (const to of TX_STATES) {
      expect(canTransition("COMMITTED", to)).toBe(false);
      expect(canTransition("COMPENSATED", to)).toBe(false);
    }
    expect(canTransition("STUCK", "RUNNING")).toBe(true);
    expect(canTransition("STUCK", "COMMITTED")).toBe(false);
    expect(canTransition("CONFIRMING", "COMPENSATING")).toBe(false);
    expect(canTransition("TRYING", "CONFIRMING")).toBe(true);
    expect(canTransition("RUNNING", "COMMITTED")).toBe(true);
    expect(TX_STATES.filter(isFinal)).toEqual(["COMMITTED", "COMPENSATED"]);
  });

  it("numbers branches so they sort in order", () => {
    const ids = Array.from({ length: 12 }, (_, i) => branchIdOf(i));
    expect(ids[0]).toBe("01");
    expect([...ids].sort()).toEqual(ids);
  });
});

describe("next step", () => {
  it("runs saga actions in order, then commits", () => {
    expect(nextStep("SAGA", "RUNNING", list(["DONE"], ["PENDING", 0], ["PENDING", 0]))).toEqual({ kind: "call", op: "action", branchId: "02" });
    expect(nextStep("SAGA", "RUNNING", list(["DONE"], ["DONE"]))).toEqual({ kind: "finish", state: "COMMITTED" });
    expect(nextStep("SAGA", "RUNNING", list(["DONE"], ["FAILED"], ["PENDING", 0]))).toEqual({ kind: "compensate" });
  });

  it("compensates a saga in reverse, including the refused step and any step attempted without an answer", () => {
    const branches = list(["DONE"], ["DONE"], ["FAILED"], ["PENDING", 0]);
    expect(nextStep("SAGA", "COMPENSATING", branches)).toEqual({ kind: "call", op: "compensate", branchId: "03" });
    expect(nextStep("SAGA", "COMPENSATING", list(["DONE"], ["PENDING", 2]))).toEqual({ kind: "call", op: "compensate", branchId: "02" });
    expect(nextStep("SAGA", "COMPENSATING", list(["COMPENSATED"], ["COMPENSATED"], ["PENDING", 0]))).toEqual({ kind: "finish", state: "COMPENSATED" });
  });

  it("cancels every TCC branch that may have tried, but not a refused try", () => {
    expect(nextStep("TCC", "COMPENSATING", list(["DONE"], ["FAILED"]))).toEqual({ kind: "call", op: "cancel", branchId: "01" });
    expect(nextStep("TCC", "COMPENSATING", list(["COMPENSATED"], ["FAILED"]))).toEqual({ kind: "finish", state: "COMPENSATED" });
    expect(nextStep("TCC", "COMPENSATING", list(["PENDING", 1]))).toEqual({ kind: "call", op: "cancel", branchId: "01" });
  });

  it("confirms every tried TCC branch, then commits; waits while trying or stuck", () => {
    expect(nextStep("TCC", "CONFIRMING", list(["CONFIRMED"], ["DONE"]))).toEqual({ kind: "call", op: "confirm", branchId: "02" });
    expect(nextStep("TCC", "CONFIRMING", list(["CONFIRMED"]))).toEqual({ kind: "finish", state: "COMMITTED" });
    expect(nextStep("TCC", "TRYING", list(["DONE"]))).toEqual({ kind: "wait" });
    expect(nextStep("SAGA", "STUCK", list(["DONE"]))).toEqual({ kind: "wait" });
  });

  it("always reaches a final state when every call succeeds (any branch states, any phase)", () => {
    const states: BranchState[] = ["PENDING", "DONE", "FAILED", "CONFIRMED", "COMPENSATED"];
    fc.assert(
      fc.property(
        fc.constantFrom("SAGA" as const, "TCC" as const),
        fc.constantFrom("RUNNING" as const, "CONFIRMING" as const, "COMPENSATING" as const),
        fc.array(fc.tuple(fc.constantFrom(...states), fc.nat(3)), { minLength: 1, maxLength: 6 }),
        (kind, start, raw) => {
          let phase: "RUNNING" | "CONFIRMING" | "COMPENSATING" = start;
          const branches = raw.map(([s, a], i) => b(s, a, i));
          for (let guard = 0; guard < 20; guard++) {
            const step = nextStep(kind, phase, branches);
            if (step.kind === "finish") return true;
            if (step.kind === "wait") return false;
            if (step.kind === "compensate") {
              phase = "COMPENSATING";
              continue;
            }
            const target = branches.find((x) => x.branchId === step.branchId)!;
            target.state = stateAfter(step.op);
          }
          return false;
        },
      ),
    );
  });
});

describe("failures", () => {
  it("tells a business refusal from an outage", () => {
    expect(isBusinessRefusal({ code: 409, type: "INSUFFICIENT_FUNDS" })).toBe(true);
    expect(isBusinessRefusal({ code: 404, type: "SERVICE_NOT_FOUND" })).toBe(false);
    expect(isBusinessRefusal({ code: 504, type: "REQUEST_TIMEOUT" })).toBe(false);
    expect(isBusinessRefusal({ code: 503, type: "SERVICE_NOT_AVAILABLE" })).toBe(false);
    expect(isBusinessRefusal({ code: 500 })).toBe(false);
    expect(isBusinessRefusal(new Error("boom"))).toBe(false);
    expect(isBusinessRefusal(undefined)).toBe(false);
  });

  it("backs off doubling to a cap, then gives up", () => {
    const p = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 350 };
    expect([1, 2, 3, 4].map((a) => retryDelayMs(a, p))).toEqual([100, 200, 350, 350]);
    expect(afterFailure(1, p, 1000)).toEqual({ stuck: false, retryAt: 1100 });
    expect(afterFailure(4, p, 1000)).toEqual({ stuck: true });
    expect(retryDelayMs(1000, DEFAULT_RETRY)).toBe(DEFAULT_RETRY.maxDelayMs);
  });

  it("lets an operator compensate only what can still be undone", () => {
    expect(canCompensate("SAGA", "RUNNING")).toBe(true);
    expect(canCompensate("SAGA", "COMPENSATING")).toBe(true);
    expect(canCompensate("TCC", "TRYING")).toBe(true);
    expect(canCompensate("TCC", "CONFIRMING")).toBe(false);
    expect(canCompensate("SAGA", "CONFIRMING")).toBe(false);
  });

  it("names the state each successful call leaves", () => {
    expect(["try", "action", "confirm", "cancel", "compensate"].map((op) => stateAfter(op as never))).toEqual(["DONE", "DONE", "CONFIRMED", "COMPENSATED", "COMPENSATED"]);
  });
});
