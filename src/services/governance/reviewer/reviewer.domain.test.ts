import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  accuracyPermille,
  applyOutcome,
  assign,
  type Candidate,
  casesToday,
  DEFAULT_RULES,
  dayKey,
  drawPanel,
  effectiveStatus,
  ineligibility,
  PoolIndex,
  profileFactsNeeded,
  release,
  type Reviewer,
  seededRandom,
  weightOf,
} from "./reviewer.domain";

const DAY = 86_400_000;
const NOW = 1_000 * DAY;

function reviewer(over: Partial<Reviewer> = {}): Reviewer {
  return {
    userId: 1,
    status: "ACTIVE",
    suspendedUntil: null,
    accountCreatedAt: NOW - 100 * DAY,
    lastActiveAt: NOW - DAY,
    lastViolationAt: null,
    votes: 0,
    coherentVotes: 0,
    noShows: 0,
    consecutiveNoShows: 0,
    openCases: 0,
    casesToday: 0,
    dayKey: dayKey(NOW),
    lastAssignedAt: null,
    ...over,
  };
}

const open = { ...DEFAULT_RULES, maxOpenCases: 0, maxCasesPerDay: 0 };

describe("profile facts", () => {
  it("matter to eligibility only when a rule that reads them is in force", () => {
    const fact = fc.option(fc.integer({ min: 0, max: NOW + 10 * DAY }), { nil: null });
    fc.assert(
      fc.property(
        fc.record({ activeWithinDays: fc.nat(3), minAccountAgeDays: fc.nat(3), violationCooldownDays: fc.nat(3), minAccuracy: fc.constantFrom(0, 0.5), maxOpenCases: fc.nat(3) }),
        fc.record({ accountCreatedAt: fact, lastActiveAt: fact, lastViolationAt: fact, openCases: fc.nat(4), votes: fc.nat(20) }),
        fc.record({ accountCreatedAt: fact, lastActiveAt: fact, lastViolationAt: fact }),
        (set, r, otherFacts) => {
          const rules = { ...DEFAULT_RULES, ...set };
          const a = reviewer(r);
          const b = reviewer({ ...r, ...otherFacts });
          if (!profileFactsNeeded(rules)) expect(ineligibility(b, rules, NOW)).toBe(ineligibility(a, rules, NOW));
        },
      ),
    );
    expect(profileFactsNeeded(DEFAULT_RULES)).toBe(false);
    expect(profileFactsNeeded({ ...DEFAULT_RULES, activeWithinDays: 1 })).toBe(true);
  });
});

describe("eligibility", () => {
  it("admits an active reviewer when every rule is off", () => {
    expect(ineligibility(reviewer(), open, NOW)).toBeNull();
    expect(ineligibility(reviewer({ lastActiveAt: null, accountCreatedAt: null }), open, NOW)).toBeNull();
  });
  it("applies each rule", () => {
    expect(ineligibility(reviewer({ status: "OPTED_OUT" }), open, NOW)).toBe("NOT_ACTIVE");
    expect(ineligibility(reviewer({ status: "SUSPENDED", suspendedUntil: NOW + 1 }), open, NOW)).toBe("NOT_ACTIVE");
    expect(ineligibility(reviewer({ lastActiveAt: NOW - 8 * DAY }), { ...open, activeWithinDays: 7 }, NOW)).toBe("INACTIVE_USER");
    expect(ineligibility(reviewer({ lastActiveAt: null }), { ...open, activeWithinDays: 7 }, NOW)).toBe("INACTIVE_USER");
    expect(ineligibility(reviewer({ lastViolationAt: NOW - 10 * DAY }), { ...open, violationCooldownDays: 30 }, NOW)).toBe("RECENT_VIOLATION");
    expect(ineligibility(reviewer({ lastViolationAt: NOW - 31 * DAY }), { ...open, violationCooldownDays: 30 }, NOW)).toBeNull();
    expect(ineligibility(reviewer({ lastViolationAt: NOW - DAY }), open, NOW)).toBeNull();
    expect(ineligibility(reviewer({ accountCreatedAt: NOW - DAY }), { ...open, minAccountAgeDays: 30 }, NOW)).toBe("ACCOUNT_TOO_NEW");
    expect(ineligibility(reviewer({ votes: 20, coherentVotes: 5 }), { ...open, minAccuracy: 0.5 }, NOW)).toBe("LOW_ACCURACY");
    expect(ineligibility(reviewer({ openCases: 3 }), { ...open, maxOpenCases: 3 }, NOW)).toBe("TOO_MANY_OPEN_CASES");
    expect(ineligibility(reviewer({ casesToday: 10 }), { ...open, maxCasesPerDay: 10 }, NOW)).toBe("DAILY_LIMIT");
    expect(ineligibility(reviewer({ lastAssignedAt: NOW - 1000 }), { ...open, cooldownSeconds: 60 }, NOW)).toBe("COOLING_DOWN");
    expect(ineligibility(reviewer({ lastAssignedAt: NOW - 60_000 }), { ...open, cooldownSeconds: 60 }, NOW)).toBeNull();
  });
  it("resets the daily count on a new day and ends suspensions by themselves", () => {
    const yesterday = reviewer({ casesToday: 10, dayKey: dayKey(NOW) - 1 });
    expect(casesToday(yesterday, NOW)).toBe(0);
    expect(ineligibility(yesterday, { ...open, maxCasesPerDay: 10 }, NOW)).toBeNull();
    expect(effectiveStatus({ status: "SUSPENDED", suspendedUntil: NOW }, NOW)).toBe("ACTIVE");
    expect(effectiveStatus({ status: "SUSPENDED", suspendedUntil: NOW + 1 }, NOW)).toBe("SUSPENDED");
  });
});

describe("accuracy and weight", () => {
  it("smooths towards 0.8 and follows agreement", () => {
    expect(accuracyPermille({ votes: 0, coherentVotes: 0 })).toBe(800);
    expect(accuracyPermille({ votes: 95, coherentVotes: 95 })).toBe(990);
    expect(accuracyPermille({ votes: 95, coherentVotes: 0 })).toBe(40);
    expect(weightOf({ votes: 95, coherentVotes: 0 })).toBe(50);
    expect(weightOf({ votes: 10, coherentVotes: 10 })).toBeGreaterThan(weightOf({ votes: 10, coherentVotes: 5 }));
  });
});

describe("standing after results", () => {
  it("counts votes and coherence, resets no-show streaks", () => {
    let r = applyOutcome(reviewer({ consecutiveNoShows: 2 }), "COHERENT", DEFAULT_RULES, NOW);
    expect(r).toMatchObject({ votes: 1, coherentVotes: 1, consecutiveNoShows: 0 });
    r = applyOutcome(r, "INCOHERENT", DEFAULT_RULES, NOW);
    expect(r).toMatchObject({ votes: 2, coherentVotes: 1 });
    expect(applyOutcome(r, "ABSTAINED", DEFAULT_RULES, NOW)).toEqual(r);
  });
  it("suspends chronic non-responders", () => {
    let r = reviewer();
    for (let i = 0; i < 3; i++) r = applyOutcome(r, "NO_SHOW", DEFAULT_RULES, NOW);
    expect(r.status).toBe("SUSPENDED");
    expect(r.suspendedUntil).toBe(NOW + 7 * DAY);
    expect(r.noShows).toBe(3);
  });
  it("suspends reviewers whose accuracy falls under the bar once enough votes are in", () => {
    let r = reviewer();
    for (let i = 0; i < 9; i++) r = applyOutcome(r, "INCOHERENT", DEFAULT_RULES, NOW);
    expect(r.status).toBe("ACTIVE");
    r = applyOutcome(r, "INCOHERENT", DEFAULT_RULES, NOW);
    expect(r.status).toBe("SUSPENDED");
  });
  it("never suspends an opted-out reviewer", () => {
    let r = reviewer({ status: "OPTED_OUT" });
    for (let i = 0; i < 5; i++) r = applyOutcome(r, "NO_SHOW", DEFAULT_RULES, NOW);
    expect(r.status).toBe("OPTED_OUT");
  });
  it("assigns and releases seats", () => {
    const r = assign(reviewer({ casesToday: 4, dayKey: dayKey(NOW) - 1 }), NOW);
    expect(r).toMatchObject({ openCases: 1, casesToday: 1, dayKey: dayKey(NOW), lastAssignedAt: NOW });
    expect(release(release(r)).openCases).toBe(0);
  });
});

describe("panel draw", () => {
  const pool = (n: number): Candidate[] => Array.from({ length: n }, (_, i) => ({ userId: i + 1, weight: 100 + (i % 7) * 100 }));

  it("is reproducible from the seed and the candidate list, in any order", () => {
    const candidates = pool(50);
    const a = drawPanel(candidates, 5, "seed-1", new Set());
    expect(drawPanel([...candidates].reverse(), 5, "seed-1", new Set())).toEqual(a);
    expect(drawPanel(candidates, 5, "seed-2", new Set())).not.toEqual(a);
  });

  it("never draws an excluded or duplicate id and draws as many as it can", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ userId: fc.integer({ min: 1, max: 60 }), weight: fc.integer({ min: 0, max: 1000 }) }), { maxLength: 80 }),
        fc.integer({ min: 1, max: 15 }),
        fc.string(),
        fc.uniqueArray(fc.integer({ min: 1, max: 60 }), { maxLength: 20 }),
        (candidates, count, seed, excluded) => {
          const exclude = new Set(excluded);
          const drawn = drawPanel(candidates, count, seed, exclude);
          expect(new Set(drawn).size).toBe(drawn.length);
          for (const id of drawn) expect(exclude.has(id)).toBe(false);
          const firstWeight = new Map<number, number>();
          for (const c of [...candidates].sort((x, y) => x.userId - y.userId)) if (!firstWeight.has(c.userId)) firstWeight.set(c.userId, c.weight);
          const available = [...firstWeight].filter(([id, w]) => !exclude.has(id) && w > 0).length;
          expect(drawn.length).toBe(Math.min(count, available));
        },
      ),
    );
  });

  it("respects fatigue: eligible-then-drawn reviewers never exceed the open-case limit", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 5, maxLength: 40 }), fc.string(), (openCases, seed) => {
        const rules = { ...DEFAULT_RULES, maxOpenCases: 3 };
        const reviewers = openCases.map((n, i) => reviewer({ userId: i + 1, openCases: n }));
        const eligible = reviewers.filter((r) => ineligibility(r, rules, NOW) === null);
        const drawn = drawPanel(eligible.map((r) => ({ userId: r.userId, weight: weightOf(r) })), 3, seed, new Set());
        for (const id of drawn) expect(assign(reviewers[id - 1], NOW).openCases).toBeLessThanOrEqual(3);
      }),
    );
  });

  it("favours heavier candidates", () => {
    const candidates = [
      { userId: 1, weight: 1000 },
      { userId: 2, weight: 100 },
    ];
    let heavy = 0;
    for (let i = 0; i < 2000; i++) if (drawPanel(candidates, 1, `s${i}`, new Set())[0] === 1) heavy++;
    expect(heavy / 2000).toBeGreaterThan(0.85);
  });

  it("has a uniform-looking generator", () => {
    const random = seededRandom("x");
    let sum = 0;
    for (let i = 0; i < 10_000; i++) {
      const v = random();
      expect(v >= 0 && v < 1).toBe(true);
      sum += v;
    }
    expect(sum / 10_000).toBeCloseTo(0.5, 1);
  });
});

describe("the pool in memory", () => {
  // Operations on a pool and a plain model of it: every reviewer's latest standing (votes, here) and
  // profile facts (last activity, here) by user, draw keys unique. A standing written comes without facts.
  const op = fc.oneof(
    fc.record({ kind: fc.constant("put" as const), userId: fc.integer({ min: 1, max: 12 }), key: fc.integer({ min: 0, max: 40 }), votes: fc.nat(9), active: fc.nat(9) }),
    fc.record({ kind: fc.constant("standing" as const), userId: fc.integer({ min: 1, max: 14 }), votes: fc.nat(9) }),
    fc.record({ kind: fc.constant("facts" as const), userId: fc.integer({ min: 1, max: 14 }), active: fc.nat(9) }),
  );

  it("walks every reviewer once, in draw-key order from the pivot round to those before it, each with the standing and facts last written", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), fc.integer({ min: -1, max: 42 }), (ops, pivot) => {
        const pool = new PoolIndex();
        const model = new Map<number, { key: number; votes: number; active: number }>();
        for (const o of ops) {
          const m = model.get(o.userId);
          if (o.kind === "put") {
            // Draw keys are unique in the table: a key held by someone else is not given again.
            if ([...model].some(([id, held]) => held.key === o.key && id !== o.userId)) continue;
            pool.put(o.key, reviewer({ userId: o.userId, votes: o.votes, lastActiveAt: o.active }));
            model.set(o.userId, { key: o.key, votes: o.votes, active: o.active });
          } else if (o.kind === "standing") {
            expect(pool.updateStanding(reviewer({ userId: o.userId, votes: o.votes, lastActiveAt: null }))).toBe(m !== undefined);
            if (m) m.votes = o.votes;
          } else {
            expect(pool.updateFacts(o.userId, { accountCreatedAt: null, lastActiveAt: o.active, lastViolationAt: null })).toBe(m !== undefined);
            if (m) m.active = o.active;
          }
        }
        const ordered = [...model].sort((a, b) => a[1].key - b[1].key);
        const first = ordered.findIndex(([, m]) => m.key >= pivot);
        const expected = first < 0 ? ordered : [...ordered.slice(first), ...ordered.slice(0, first)];
        const walked: [number, number, number | null][] = [];
        pool.walk(pivot, (r) => {
          walked.push([r.userId, r.votes, r.lastActiveAt]);
          return true;
        });
        expect(walked).toEqual(expected.map(([id, m]) => [id, m.votes, m.active]));
        expect(pool.size).toBe(model.size);
        for (const [id, m] of model) expect(pool.get(id)).toMatchObject({ votes: m.votes, lastActiveAt: m.active });
        expect(pool.get(99)).toBeUndefined();
      }),
    );
  });

  it("stops walking when the visitor has enough", () => {
    const pool = new PoolIndex();
    for (let i = 1; i <= 10; i++) pool.put(i * 10, reviewer({ userId: i }));
    const seen: number[] = [];
    pool.walk(75, (r) => {
      seen.push(r.userId);
      return seen.length < 4;
    });
    expect(seen).toEqual([8, 9, 10, 1]);
  });
});
