import { z } from "zod";

/**
 * Flow control and circuit breaking (the Sentinel role), pure: rules in Sentinel's shape, the rolling
 * counters and controllers that decide each call, and the breaker's state machine. Time is passed in;
 * nothing here allocates per call.
 */

const resource = z.string().min(1).max(200);

export const FlowRule = z.object({
  /** A gateway route `METHOD /path/pattern` or an action name `service.action`. */
  resource,
  grade: z.enum(["QPS", "CONCURRENCY"]).default("QPS"),
  count: z.number().positive(),
  /** QPS only: REJECT at once, WARM_UP (the limit ramps up from count/coldFactor), or QUEUE (calls spaced evenly, waiting up to maxQueueingTimeMs). */
  behavior: z.enum(["REJECT", "WARM_UP", "QUEUE"]).default("REJECT"),
  warmUpPeriodSec: z.number().int().min(1).max(3600).default(10),
  coldFactor: z.number().min(1.1).max(100).default(3),
  maxQueueingTimeMs: z.number().int().min(0).max(60_000).default(500),
  /** QPS only: count calls across every node (through Redis when configured) instead of per node. */
  clusterMode: z.boolean().default(false),
});
export type FlowRule = z.infer<typeof FlowRule>;

export const DegradeRule = z.object({
  resource,
  /** SLOW_REQUEST_RATIO: count is the slowest acceptable time in ms; ERROR_RATIO: count in 0..1; ERROR_COUNT: count of errors. */
  grade: z.enum(["SLOW_REQUEST_RATIO", "ERROR_RATIO", "ERROR_COUNT"]),
  count: z.number().min(0),
  /** SLOW_REQUEST_RATIO only: the share of slow calls that opens the breaker. */
  slowRatioThreshold: z.number().min(0).max(1).default(1),
  /** Seconds the breaker stays open before letting one probe through. */
  timeWindow: z.number().int().min(1).max(3600),
  minRequestAmount: z.number().int().min(1).default(5),
  statIntervalMs: z.number().int().min(100).max(600_000).default(1000),
});
export type DegradeRule = z.infer<typeof DegradeRule>;

export const ParamRule = z.object({
  resource,
  /** Where the hot value is: `params.<path>` or `meta.<path>`, e.g. `meta.user.id`, `params.itemId`. */
  param: z.string().regex(/^(params|meta)(\.[A-Za-z0-9_]+)+$/, "params.<path> or meta.<path>"),
  count: z.number().int().min(0),
  durationInSec: z.number().int().min(1).max(3600).default(1),
  /** Per-value exceptions: a different count for particular values. */
  items: z.array(z.object({ value: z.union([z.string(), z.number()]), count: z.number().int().min(0) })).max(1000).default([]),
});
export type ParamRule = z.infer<typeof ParamRule>;

export const SystemRule = z.object({
  /** Calls in flight across every guarded resource of the node. */
  maxConcurrency: z.number().int().min(1).optional(),
  /** Event-loop delay (mean over the last second, ms) beyond which new calls are turned away. */
  maxEventLoopLagMs: z.number().min(1).optional(),
  /** Calls per second across every guarded resource of the node. */
  qps: z.number().positive().optional(),
});
export type SystemRule = z.infer<typeof SystemRule>;

export const GuardRules = {
  flow: z.array(FlowRule).max(1000),
  degrade: z.array(DegradeRule).max(1000),
  param: z.array(ParamRule).max(1000),
  system: z.array(SystemRule).max(10),
};

/**
 * Counts per time bucket over a rolling interval (Sentinel's LeapArray): `buckets` slots of
 * interval/buckets ms, reused in a ring; a slot older than the interval is cleared when reached.
 */
export class RollingCounter {
  private readonly starts: Float64Array;
  private readonly counts: Float64Array;
  private readonly bucketMs: number;

  constructor(
    readonly intervalMs: number,
    readonly buckets: number,
    readonly metrics: number,
  ) {
    this.bucketMs = intervalMs / buckets;
    this.starts = new Float64Array(buckets).fill(-1);
    this.counts = new Float64Array(buckets * metrics);
  }

  add(now: number, metric: number, n = 1): void {
    const slot = Math.floor(now / this.bucketMs);
    const i = slot % this.buckets;
    const start = slot * this.bucketMs;
    if (this.starts[i] !== start) {
      this.starts[i] = start;
      this.counts.fill(0, i * this.metrics, (i + 1) * this.metrics);
    }
    this.counts[i * this.metrics + metric] += n;
  }

  sum(now: number, metric: number): number {
    const oldest = Math.floor(now / this.bucketMs) * this.bucketMs - this.intervalMs;
    let total = 0;
    for (let i = 0; i < this.buckets; i++) if (this.starts[i] > oldest) total += this.counts[i * this.metrics + metric];
    return total;
  }

  reset(): void {
    this.starts.fill(-1);
  }
}

/** A QPS limit, by behaviour. `admit` answers -1 to reject, else the ms to wait before going on (0 mostly). */
export class QpsController {
  private readonly window = new RollingCounter(1000, 10, 1);
  private warmStartAt = -Infinity;
  private lastPassAt = -Infinity;
  private latestPassedAt = -Infinity;

  constructor(readonly rule: FlowRule) {}

  /** The limit now: for WARM_UP it climbs linearly from count/coldFactor to count over the warm-up period after idling. */
  limit(now: number): number {
    const { count, behavior, warmUpPeriodSec, coldFactor } = this.rule;
    if (behavior !== "WARM_UP") return count;
    const warmUpMs = warmUpPeriodSec * 1000;
    const since = now - this.warmStartAt;
    const cold = count / coldFactor;
    return since >= warmUpMs ? count : cold + ((count - cold) * since) / warmUpMs;
  }

  admit(now: number): number {
    const { behavior } = this.rule;
    if (behavior === "QUEUE") {
      // Leaky bucket: one call per 1000/count ms; a call that would wait too long is refused.
      const cost = 1000 / this.rule.count;
      const expected = Math.max(now, this.latestPassedAt + cost);
      const wait = expected - now;
      if (wait > this.rule.maxQueueingTimeMs) return -1;
      this.latestPassedAt = expected;
      return Math.ceil(wait);
    }
    if (behavior === "WARM_UP" && now - this.lastPassAt >= this.rule.warmUpPeriodSec * 1000) this.warmStartAt = now;
    if (this.window.sum(now, 0) + 1 > this.limit(now)) return -1;
    this.window.add(now, 0);
    this.lastPassAt = now;
    return 0;
  }
}

export type BreakerState = "CLOSED" | "OPEN" | "HALF_OPEN";

const TOTAL = 0;
const ERRORS = 1;
const SLOW = 2;

/**
 * A circuit breaker: counts calls, errors and slow calls over `statIntervalMs`; past the rule's
 * threshold (with at least minRequestAmount calls) it opens for `timeWindow` seconds, then lets a
 * single probe through (HALF_OPEN): its success closes the breaker, its failure opens it again.
 */
export class CircuitBreaker {
  state: BreakerState = "CLOSED";
  private retryAt = 0;
  private readonly stats: RollingCounter;

  constructor(readonly rule: DegradeRule) {
    this.stats = new RollingCounter(rule.statIntervalMs, 1, 3);
  }

  tryPass(now: number): boolean {
    if (this.state === "CLOSED") return true;
    if (this.state === "OPEN" && now >= this.retryAt) {
      this.state = "HALF_OPEN";
      return true;
    }
    return false;
  }

  complete(now: number, rtMs: number, failed: boolean): void {
    const slow = this.rule.grade === "SLOW_REQUEST_RATIO" && rtMs > this.rule.count;
    if (this.state === "HALF_OPEN") {
      if (failed || slow) this.open(now);
      else {
        this.state = "CLOSED";
        this.stats.reset();
      }
      return;
    }
    if (this.state !== "CLOSED") return;
    this.stats.add(now, TOTAL);
    if (failed) this.stats.add(now, ERRORS);
    if (slow) this.stats.add(now, SLOW);
    const total = this.stats.sum(now, TOTAL);
    if (total < this.rule.minRequestAmount) return;
    const { grade, count } = this.rule;
    const tripped =
      grade === "ERROR_COUNT"
        ? this.stats.sum(now, ERRORS) > count
        : grade === "ERROR_RATIO"
          ? this.stats.sum(now, ERRORS) / total > count
          : this.stats.sum(now, SLOW) / total > this.rule.slowRatioThreshold;
    if (tripped) this.open(now);
  }

  private open(now: number): void {
    this.state = "OPEN";
    this.retryAt = now + this.rule.timeWindow * 1000;
  }
}

/**
 * Per-value fixed windows for one hot-parameter rule. Bounded: past `maxValues` distinct values in
 * play, the oldest windows are forgotten (a forgotten value starts a fresh window).
 */
export class ParamController {
  private readonly windows = new Map<string, { start: number; count: number }>();
  private readonly exceptions: Map<string, number>;
  private readonly path: string[];

  constructor(
    readonly rule: ParamRule,
    private readonly maxValues = 10_000,
  ) {
    this.exceptions = new Map(rule.items.map((i) => [String(i.value), i.count]));
    this.path = rule.param.split(".");
  }

  /** The hot value in a call, or undefined when the call does not carry it (then the rule does not apply). */
  valueOf(subject: { params?: unknown; meta?: unknown }): string | undefined {
    let v: unknown = subject;
    for (const key of this.path) {
      if (typeof v !== "object" || v === null) return undefined;
      v = (v as Record<string, unknown>)[key];
    }
    return typeof v === "string" || typeof v === "number" ? String(v) : undefined;
  }

  admit(value: string, now: number): boolean {
    const limit = this.exceptions.get(value) ?? this.rule.count;
    const durationMs = this.rule.durationInSec * 1000;
    let w = this.windows.get(value);
    if (!w) {
      if (this.windows.size >= this.maxValues) this.windows.delete(this.windows.keys().next().value!);
      w = { start: now - (now % durationMs), count: 0 };
      this.windows.set(value, w);
    } else if (now - w.start >= durationMs) {
      w.start = now - (now % durationMs);
      w.count = 0;
    }
    if (w.count + 1 > limit) return false;
    w.count++;
    return true;
  }
}
