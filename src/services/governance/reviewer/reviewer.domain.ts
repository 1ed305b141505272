/**
 * The reviewer pool: who may sit on a panel, how a panel is drawn, and how results move a
 * reviewer's standing. Pure; the service supplies rows and the clock.
 */

export type ReviewerStatus = "ACTIVE" | "SUSPENDED" | "OPTED_OUT";

export interface PoolRules {
  activeWithinDays: number;
  minAccountAgeDays: number;
  /** Days after a violation upheld against a user's own content before they may judge others (0 disables). */
  violationCooldownDays: number;
  /** 0..1: smoothed agreement with final verdicts. */
  minAccuracy: number;
  maxOpenCases: number;
  maxCasesPerDay: number;
  cooldownSeconds: number;
  /** Consecutive missed deadlines that suspend a reviewer (0 disables). */
  suspendAfterNoShows: number;
  /** Accuracy under this, once enough votes are in, suspends (0 disables). */
  suspendBelowAccuracy: number;
  minVotesForAccuracy: number;
  suspensionDays: number;
}

export const DEFAULT_RULES: PoolRules = {
  activeWithinDays: 0,
  minAccountAgeDays: 0,
  violationCooldownDays: 0,
  minAccuracy: 0,
  maxOpenCases: 5,
  maxCasesPerDay: 50,
  cooldownSeconds: 0,
  suspendAfterNoShows: 3,
  suspendBelowAccuracy: 0.3,
  minVotesForAccuracy: 10,
  suspensionDays: 7,
};

export interface Reviewer {
  userId: number;
  status: ReviewerStatus;
  suspendedUntil: number | null;
  accountCreatedAt: number | null;
  lastActiveAt: number | null;
  /** The last violation upheld against the user's own content (appeals that overturned it excluded). */
  lastViolationAt: number | null;
  votes: number;
  coherentVotes: number;
  noShows: number;
  consecutiveNoShows: number;
  openCases: number;
  casesToday: number;
  dayKey: number;
  lastAssignedAt: number | null;
}

const DAY = 86_400_000;

export function dayKey(now: number): number {
  return Math.floor(now / DAY);
}

/** A suspension ends by itself when its time is up. */
export function effectiveStatus(r: Pick<Reviewer, "status" | "suspendedUntil">, now: number): ReviewerStatus {
  if (r.status === "SUSPENDED" && r.suspendedUntil !== null && r.suspendedUntil <= now) return "ACTIVE";
  return r.status;
}

/**
 * Agreement with final verdicts, smoothed towards 0.8 by a prior of five votes so one early miss
 * does not sink a newcomer and one lucky vote does not crown one. Per mille, an integer.
 */
export function accuracyPermille(r: Pick<Reviewer, "votes" | "coherentVotes">): number {
  return Math.round(((r.coherentVotes + 4) * 1000) / (r.votes + 5));
}

/** Selection weight: accurate reviewers are drawn more often; nobody's weight reaches zero. */
export function weightOf(r: Pick<Reviewer, "votes" | "coherentVotes">): number {
  return Math.max(50, accuracyPermille(r));
}

export function casesToday(r: Pick<Reviewer, "casesToday" | "dayKey">, now: number): number {
  return r.dayKey === dayKey(now) ? r.casesToday : 0;
}

export type Ineligibility =
  | "NOT_ACTIVE"
  | "INACTIVE_USER"
  | "ACCOUNT_TOO_NEW"
  | "RECENT_VIOLATION"
  | "LOW_ACCURACY"
  | "TOO_MANY_OPEN_CASES"
  | "DAILY_LIMIT"
  | "COOLING_DOWN";

/** Whether any rule in force reads the facts copied from the user's profile (activity, account age, violations). */
export function profileFactsNeeded(rules: PoolRules): boolean {
  return rules.activeWithinDays > 0 || rules.minAccountAgeDays > 0 || rules.violationCooldownDays > 0;
}

/** Why this reviewer cannot be drawn now, or null. Zero-valued rules are off. */
export function ineligibility(r: Reviewer, rules: PoolRules, now: number): Ineligibility | null {
  if (effectiveStatus(r, now) !== "ACTIVE") return "NOT_ACTIVE";
  if (rules.activeWithinDays > 0 && (r.lastActiveAt === null || now - r.lastActiveAt > rules.activeWithinDays * DAY))
    return "INACTIVE_USER";
  if (rules.minAccountAgeDays > 0 && (r.accountCreatedAt === null || now - r.accountCreatedAt < rules.minAccountAgeDays * DAY))
    return "ACCOUNT_TOO_NEW";
  if (rules.violationCooldownDays > 0 && r.lastViolationAt !== null && now - r.lastViolationAt < rules.violationCooldownDays * DAY) return "RECENT_VIOLATION";
  if (rules.minAccuracy > 0 && accuracyPermille(r) < Math.round(rules.minAccuracy * 1000)) return "LOW_ACCURACY";
  if (rules.maxOpenCases > 0 && r.openCases >= rules.maxOpenCases) return "TOO_MANY_OPEN_CASES";
  if (rules.maxCasesPerDay > 0 && casesToday(r, now) >= rules.maxCasesPerDay) return "DAILY_LIMIT";
  if (rules.cooldownSeconds > 0 && r.lastAssignedAt !== null && now - r.lastAssignedAt < rules.cooldownSeconds * 1000)
    return "COOLING_DOWN";
  return null;
}

export interface Candidate {
  userId: number;
  weight: number;
}

/** sfc32 seeded from a string: a small, fast PRNG whose draws are reproducible from the stored seed. */
export function seededRandom(seed: string): () => number {
  let h1 = 1779033703,
    h2 = 3144134277,
    h3 = 1013904242,
    h4 = 2773480762;
  for (let i = 0; i < seed.length; i++) {
    const k = seed.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  let a = h1 >>> 0,
    b = h2 >>> 0,
    c = h3 >>> 0,
    d = h4 >>> 0;
  return () => {
    a |= 0;
    b |= 0;
    c |= 0;
    d |= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

/**
 * Draws up to `count` distinct candidates, weighted, without replacement (Efraimidis–Spirakis:
 * each gets key u^(1/w), the largest keys win). Candidates are ordered by id first, so the same
 * seed and list always give the same panel. Excluded ids are never drawn.
 */
export function drawPanel(candidates: readonly Candidate[], count: number, seed: string, exclude: ReadonlySet<number>): number[] {
  const random = seededRandom(seed);
  const keyed: { userId: number; key: number }[] = [];
  const sorted = [...candidates].sort((x, y) => x.userId - y.userId);
  let previous: number | undefined;
  for (const c of sorted) {
    if (c.userId === previous) continue;
    previous = c.userId;
    const u = random();
    if (exclude.has(c.userId) || c.weight <= 0) continue;
    keyed.push({ userId: c.userId, key: Math.log(u || Number.MIN_VALUE) / c.weight });
  }
  keyed.sort((x, y) => y.key - x.key || x.userId - y.userId);
  return keyed.slice(0, count).map((k) => k.userId);
}

export type Outcome = "COHERENT" | "INCOHERENT" | "ABSTAINED" | "NO_SHOW";

/** A reviewer's standing after one result; may suspend for no-shows or poor accuracy. */
export function applyOutcome(r: Reviewer, outcome: Outcome, rules: PoolRules, now: number): Reviewer {
  const next = { ...r };
  if (outcome === "COHERENT" || outcome === "INCOHERENT") {
    next.votes += 1;
    if (outcome === "COHERENT") next.coherentVotes += 1;
    next.consecutiveNoShows = 0;
  } else if (outcome === "NO_SHOW") {
    next.noShows += 1;
    next.consecutiveNoShows += 1;
  }
  const chronicNoShow = rules.suspendAfterNoShows > 0 && next.consecutiveNoShows >= rules.suspendAfterNoShows;
  const inaccurate =
    rules.suspendBelowAccuracy > 0 &&
    next.votes >= rules.minVotesForAccuracy &&
    accuracyPermille(next) < Math.round(rules.suspendBelowAccuracy * 1000);
  if (effectiveStatus(next, now) === "ACTIVE" && next.status !== "OPTED_OUT" && (chronicNoShow || inaccurate)) {
    next.status = "SUSPENDED";
    next.suspendedUntil = now + rules.suspensionDays * DAY;
    next.consecutiveNoShows = 0;
  }
  return next;
}

/** Taking a seat: one more open case, counted against today's limit and the cool-down. */
export function assign(r: Reviewer, now: number): Reviewer {
  return { ...r, openCases: r.openCases + 1, casesToday: casesToday(r, now) + 1, dayKey: dayKey(now), lastAssignedAt: now };
}

export function release(r: Reviewer): Reviewer {
  return { ...r, openCases: Math.max(0, r.openCases - 1) };
}

/** What a reviewer's eligibility reads from their profile (copied from the profile service). */
export type EligibilityFacts = Pick<Reviewer, "accountCreatedAt" | "lastActiveAt" | "lastViolationAt">;

/**
 * The pool in draw-key order, in memory: what a draw walks instead of reading the table a window at a
 * time (the window's rows were about a tenth of a governance case's CPU). A copy of what the service
 * wrote, which may lag; the save of every drawn reviewer still checks the table's row.
 */
export class PoolIndex {
  /** Draw keys, ascending. */
  private readonly keys: number[] = [];
  private readonly byKey = new Map<number, Reviewer>();
  private readonly keyOf = new Map<number, number>();

  get size(): number {
    return this.keys.length;
  }

  /** Holds the reviewer at `drawKey`, in place of what was held for them. */
  put(drawKey: number, r: Reviewer): void {
    const held = this.keyOf.get(r.userId);
    if (held !== drawKey) {
      if (held !== undefined) {
        this.keys.splice(this.lowerBound(held), 1);
        this.byKey.delete(held);
      }
      this.keys.splice(this.lowerBound(drawKey), 0, drawKey);
      this.keyOf.set(r.userId, drawKey);
    }
    this.byKey.set(drawKey, r);
  }

  /**
   * A held reviewer's standing, as a save wrote it; the profile facts held stay (a reviewer read for a
   * write comes without them). False when they are not held.
   */
  updateStanding(r: Reviewer): boolean {
    const held = this.get(r.userId);
    if (!held) return false;
    this.byKey.set(this.keyOf.get(r.userId)!, { ...r, accountCreatedAt: held.accountCreatedAt, lastActiveAt: held.lastActiveAt, lastViolationAt: held.lastViolationAt });
    return true;
  }

  /** A held reviewer's profile facts, as copied from the profile service. False when they are not held. */
  updateFacts(userId: number, facts: EligibilityFacts): boolean {
    const held = this.get(userId);
    if (!held) return false;
    this.byKey.set(this.keyOf.get(userId)!, { ...held, ...facts });
    return true;
  }

  get(userId: number): Reviewer | undefined {
    const key = this.keyOf.get(userId);
    return key === undefined ? undefined : this.byKey.get(key);
  }

  /**
   * Every reviewer once, in draw-key order from the first key at or after `pivot`, round past the end
   * to those before it (the order a draw walks the table); stops when `visit` answers false.
   */
  walk(pivot: number, visit: (r: Reviewer) => boolean): void {
    const n = this.keys.length;
    const start = this.lowerBound(pivot);
    for (let i = 0; i < n; i++) if (!visit(this.byKey.get(this.keys[(start + i) % n])!)) return;
  }

  /** Where `key` is, or would go, in `keys`. */
  private lowerBound(key: number): number {
    let lo = 0;
    let hi = this.keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.keys[mid] < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
