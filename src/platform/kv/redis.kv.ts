import Redis from "ioredis";
import type { Kv } from "./kv";

// INCRBY then PEXPIRE only on creation, in one round trip and atomically.
const INCR_WITH_TTL = `
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 and v == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v`;

export class RedisKv implements Kv {
  readonly redis: Redis;

  constructor(url: string, readonly prefix: string) {
    this.redis = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 3, enableOfflineQueue: true });
    this.redis.defineCommand("bazaarIncrTtl", { numberOfKeys: 1, lua: INCR_WITH_TTL });
  }

  async get(key: string): Promise<string | null> {
    return this.redis.get(this.prefix + key);
  }
  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    if (ttlMs) await this.redis.set(this.prefix + key, value, "PX", ttlMs);
    else await this.redis.set(this.prefix + key, value);
  }
  async setNX(key: string, value: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(this.prefix + key, value, "PX", ttlMs, "NX")) === "OK";
  }
  async del(key: string): Promise<void> {
    await this.redis.del(this.prefix + key);
  }
  async incrBy(key: string, by: number, ttlMs = 0): Promise<number> {
    const cmd = (this.redis as unknown as { bazaarIncrTtl(k: string, by: number, ttl: number): Promise<number> }).bazaarIncrTtl;
    return Number(await cmd.call(this.redis, this.prefix + key, by, ttlMs));
  }
  async close(): Promise<void> {
    await this.redis.quit();
  }
}
