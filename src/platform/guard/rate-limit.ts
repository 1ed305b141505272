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
}

/**
 * A fixed-window limiter: per process on the embedded kv, shared by every node through Redis.
 * `consume` throws 429 with the rule's name as code.
 */
export class RateLimit {
  private readonly limiter: RateLimiterMemory | RateLimiterRedis;

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
    try {
      await this.limiter.consume(key);
    } catch (res) {
      if (res instanceof RateLimiterRes) {
        const seconds = Math.ceil(res.msBeforeNext / 1000);
        throw tooMany(this.code, `too many attempts (${this.rule.name}); retry in ${seconds}s`);
      }
      throw res;
    }
  }

  async reset(key: string): Promise<void> {
    await this.limiter.delete(key);
  }
}
