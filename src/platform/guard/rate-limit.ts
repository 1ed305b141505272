import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import type { Kv } from "../kv/kv";
import { tooMany } from "../runtime/errors";

export interface LimitRule {
  /** Distinguishes limiters sharing one kv. */
  name: string;
  points: number;
  durationSeconds: number;
  /** Once exhausted, how long the key stays blocked. */
  blockSeconds?: number;
  /**
   * Points a node takes from the shared count at once and spends locally (see `leaseFor`): at
   * thousands of calls a second one store round trip per lease instead of one per call.
   */
  lease?: number;
}

/** A lease of about 1 % of the limit: each store round trip covers that many calls, and a node's unspent lease is at most 1 % of a window. */
export const leaseFor = (points: number) => Math.max(1, Math.floor(points / 100));

/**
 * A fixed-window limiter: per process on the embedded kv, shared by every node through Redis.
 * `consume` throws 429 with the rule's name as code.
 */
export class RateLimit {
  private readonly limiter: RateLimiterMemory | RateLimiterRedis;
  /**
   * Leased points per key until the window they were taken in ends. On the store's own clock
   * (rate-limiter-flexible counts windows by Date.now), so a lease never outlives its window.
   */
  private readonly leases = new Map<string, { left: number; until: number }>();
  private readonly taking = new Map<string, Promise<void>>();

  constructor(kv: Kv, private readonly rule: LimitRule, private readonly code: string) {
    const opts = {
      keyPrefix: `${kv.prefix}rl:${rule.name}`,
      points: rule.points,
      duration: rule.durationSeconds,
      blockDuration: rule.blockSeconds ?? 0,
    };
    this.limiter = kv.redis ? new RateLimiterRedis({ ...opts, storeClient: kv.redis }) : new RateLimiterMemory(opts);
  }

  async consume(key: string): Promise<void> {
    const lease = this.rule.lease ?? 1;
    if (lease === 1) return this.take(key, 1);
    for (;;) {
      const held = this.leases.get(key);
      if (held && held.left > 0 && held.until > Date.now()) {
        held.left--;
        return;
      }
      // One lease taken at a time per key: concurrent callers wait for it rather than each taking one.
      const inFlight = this.taking.get(key);
      if (!inFlight) break;
      await inFlight.catch(() => undefined);
    }
    const taking = this.take(key, lease);
    this.taking.set(key, taking);
    try {
      await taking;
    } finally {
      this.taking.delete(key);
    }
  }

  /** Takes `points` from the shared count; all but the caller's own point are held as a lease. */
  private async take(key: string, points: number): Promise<void> {
    try {
      const res = await this.limiter.consume(key, points);
      if (points > 1) this.hold(key, points - 1, res.msBeforeNext);
    } catch (res) {
      if (!(res instanceof RateLimiterRes)) throw res;
      // A lease that ran past the limit still holds what was left of it before this take.
      const granted = Math.min(points, this.rule.points - (res.consumedPoints - points));
      if (granted >= 1) {
        this.hold(key, granted - 1, res.msBeforeNext);
        return;
      }
      const seconds = Math.ceil(res.msBeforeNext / 1000);
      throw tooMany(this.code, `too many attempts (${this.rule.name}); retry in ${seconds}s`);
    }
  }

  private hold(key: string, left: number, msBeforeNext: number): void {
    if (this.leases.size > 10_000) this.leases.clear();
    this.leases.set(key, { left, until: Date.now() + msBeforeNext });
  }

  async reset(key: string): Promise<void> {
    this.leases.delete(key);
    await this.limiter.delete(key);
  }
}
