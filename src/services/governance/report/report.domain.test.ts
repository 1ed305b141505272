import { describe, expect, it } from "vitest";
import {
  addVote,
  appealPanel,
  appealRefusal,
  canTransition,
  isCoherent,
  isOpen,
  openKey,
  policyProblem,
  verdictOf,
  visibility,
  voteRefusal,
} from "./report.domain";

const policy = { panelSize: 5, votesToDecide: 3, voteTimeoutSeconds: 60, caseTimeoutSeconds: 600, maxAlternates: 2, coinsPerVote: 1, coinsPerCoherentVote: 1, appealWindowSeconds: 60 };

describe("case lifecycle", () => {
  it("allows only forward transitions out of open states", () => {
    expect(canTransition("OPEN", "VOTING")).toBe(true);
    expect(canTransition("OPEN", "EXPIRED")).toBe(true);
    expect(canTransition("VOTING", "UPHELD")).toBe(true);
    expect(canTransition("VOTING", "OPEN")).toBe(false);
    for (const done of ["UPHELD", "REJECTED", "EXPIRED"] as const) {
      expect(isOpen(done)).toBe(false);
      for (const to of ["OPEN", "VOTING", "UPHELD", "REJECTED", "EXPIRED"] as const) expect(canTransition(done, to)).toBe(false);
    }
    expect(isOpen("OPEN") && isOpen("VOTING")).toBe(true);
  });
});

describe("independence", () => {
  it("shows nothing of an open case but to operators, the outcome once decided, identities only to operators", () => {
    for (const status of ["OPEN", "VOTING"] as const) {
      expect(visibility(status, false)).toBe("NONE");
      expect(visibility(status, true)).toBe("FULL");
    }
    for (const status of ["UPHELD", "REJECTED", "EXPIRED"] as const) {
      expect(visibility(status, false)).toBe("OUTCOME");
      expect(visibility(status, true)).toBe("FULL");
    }
  });
});

describe("policy", () => {
  it("accepts 5/3 and 3/2 and 1/1", () => {
    expect(policyProblem(policy)).toBeNull();
    expect(policyProblem({ ...policy, panelSize: 3, votesToDecide: 2 })).toBeNull();
    expect(policyProblem({ ...policy, panelSize: 1, votesToDecide: 1 })).toBeNull();
  });
  it("rejects a threshold both sides could reach, or one above the panel", () => {
    expect(policyProblem({ ...policy, panelSize: 4, votesToDecide: 2 })?.field).toBe("votesToDecide");
    expect(policyProblem({ ...policy, votesToDecide: 6 })?.field).toBe("votesToDecide");
  });
  it("rejects a case timeout shorter than the vote timeout", () => {
    expect(policyProblem({ ...policy, caseTimeoutSeconds: 30 })?.field).toBe("caseTimeoutSeconds");
  });
});

describe("tally", () => {
  it("decides as soon as one side reaches the threshold", () => {
    let t = { violation: 0, noViolation: 0 };
    t = addVote(t, "VIOLATION");
    t = addVote(t, "NO_VIOLATION");
    t = addVote(t, "VIOLATION");
    expect(verdictOf(t, 3)).toBeNull();
    t = addVote(t, "VIOLATION");
    expect(t).toEqual({ violation: 3, noViolation: 1 });
    expect(verdictOf(t, 3)).toBe("UPHELD");
    expect(verdictOf({ violation: 1, noViolation: 2 }, 2)).toBe("REJECTED");
  });
  it("never lets both sides win under a majority threshold", () => {
    for (let size = 1; size <= 15; size++) {
      const need = Math.floor(size / 2) + 1;
      for (let v = 0; v <= size; v++) {
        const t = { violation: v, noViolation: size - v };
        const verdict = verdictOf(t, need);
        expect(verdict === "UPHELD").toBe(v >= need);
        expect(verdict === "REJECTED").toBe(size - v >= need && v < need);
      }
    }
  });
  it("a vote is coherent when it points the same way as the verdict", () => {
    expect(isCoherent("VIOLATION", "UPHELD")).toBe(true);
    expect(isCoherent("NO_VIOLATION", "REJECTED")).toBe(true);
    expect(isCoherent("VIOLATION", "REJECTED")).toBe(false);
    expect(isCoherent("NO_VIOLATION", "UPHELD")).toBe(false);
    expect(isCoherent("VIOLATION", "EXPIRED")).toBe(false);
  });
});

describe("who may vote", () => {
  const invited = { state: "INVITED" as const, deadlineAt: 1000 };
  it("refuses votes on cases not voting, from outsiders, repeats, replaced seats and late voters", () => {
    expect(voteRefusal("UPHELD", invited, 0)?.code).toBe("CASE_NOT_VOTING");
    expect(voteRefusal("OPEN", invited, 0)?.code).toBe("CASE_NOT_VOTING");
    expect(voteRefusal("VOTING", undefined, 0)).toMatchObject({ status: 403, code: "NOT_ON_PANEL" });
    expect(voteRefusal("VOTING", { ...invited, state: "VOTED" }, 0)).toMatchObject({ status: 409, code: "ALREADY_VOTED" });
    expect(voteRefusal("VOTING", { ...invited, state: "REPLACED" }, 0)?.code).toBe("SEAT_REPLACED");
    expect(voteRefusal("VOTING", { ...invited, state: "TIMED_OUT" }, 0)?.code).toBe("SEAT_REPLACED");
    expect(voteRefusal("VOTING", invited, 1000)?.code).toBe("VOTE_DEADLINE_PASSED");
    expect(voteRefusal("VOTING", invited, 999)).toBeNull();
  });
});

describe("appeals", () => {
  const upheld = { status: "UPHELD" as const, round: 1, decidedBy: "PANEL" as const, appealedBy: null, decidedAt: 10_000, targetAuthorId: 7, appealWindowSeconds: 60 };
  it("seats twice the panel plus one, deciding by majority", () => {
    expect(appealPanel(3)).toEqual({ panelSize: 7, votesToDecide: 4 });
    expect(appealPanel(5)).toEqual({ panelSize: 11, votesToDecide: 6 });
    const { panelSize, votesToDecide } = appealPanel(5);
    expect(policyProblem({ ...policy, panelSize, votesToDecide })).toBeNull();
  });
  it("lets the author appeal an upheld case once, inside the window", () => {
    expect(appealRefusal(upheld, 7, 10_000 + 60_000)).toBeNull();
    expect(appealRefusal(upheld, 8, 10_001)?.code).toBe("NOT_TARGET_AUTHOR");
    expect(appealRefusal(upheld, 7, 10_000 + 60_001)?.code).toBe("APPEAL_WINDOW_CLOSED");
    expect(appealRefusal({ ...upheld, appealedBy: "x" }, 7, 10_001)?.code).toBe("ALREADY_APPEALED");
    expect(appealRefusal({ ...upheld, round: 2 }, 7, 10_001)?.code).toBe("APPEAL_IS_FINAL");
    expect(appealRefusal({ ...upheld, decidedBy: "OPERATOR" }, 7, 10_001)?.code).toBe("OPERATOR_DECISION_FINAL");
    expect(appealRefusal({ ...upheld, status: "REJECTED" }, 7, 10_001)?.code).toBe("NOTHING_TO_APPEAL");
    expect(appealRefusal({ ...upheld, status: "VOTING", decidedAt: null }, 7, 10_001)?.code).toBe("NOTHING_TO_APPEAL");
    expect(appealRefusal({ ...upheld, decidedAt: null }, 7, 10_001)?.code).toBe("APPEAL_WINDOW_CLOSED");
  });
  it("keys open cases by target", () => {
    expect(openKey("LISTING", "42")).toBe("LISTING:42");
  });
});
