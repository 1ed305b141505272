import Redis from "ioredis";
import type { Kv, KvScript } from "./kv";

// INCRBY then PEXPIRE only on creation, in one round trip and atomically.
const INCR_WITH_TTL = `
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) > 0 and v == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v`;

export class RedisKv implements Kv {
  readonly redis: Redis;
  /** Scripts registered with ioredis, which runs them by EVALSHA and loads them on a miss. */
  private readonly defined = new Set<string>();

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
  async hget(key: string, field: string): Promise<string | null> {
    return this.redis.hget(this.prefix + key, field);
  }
  async hgetall(key: string): Promise<Record<string, string>> {
    return this.redis.hgetall(this.prefix + key);
  }
  /**
   * Scripts run in the same round of the event loop go to Redis as one pipeline: one write and one
   * read for all of them instead of one each (a flash sale runs one per attempt, thousands a second).
   * Each still answers, or fails, on its own. (ioredis's own auto-pipelining crashes on custom
   * commands: ioredis#1931.)
   */
  run(script: KvScript, keys: readonly string[], args: readonly (string | number)[]): Promise<string[]> {
    const name = `bazaar_${script.name}`;
    if (!this.defined.has(name)) {
      this.redis.defineCommand(name, { lua: script.lua });
      this.defined.add(name);
    }
    if (!this.queued) {
      this.queued = [];
      setImmediate(() => this.flush());
    }
    const queue = this.queued;
    return new Promise((resolve, reject) => queue.push({ name, argv: [keys.length, ...keys.map((k) => this.prefix + k), ...args], resolve, reject }));
  }

  private queued?: { name: string; argv: (string | number)[]; resolve: (r: string[]) => void; reject: (err: unknown) => void }[];

  private flush(): void {
    const calls = this.queued!;
    this.queued = undefined;
    const answer = (raw: unknown) => (raw as (string | number)[]).map(String);
    if (calls.length === 1) {
      const [{ name, argv, resolve, reject }] = calls;
      const command = (this.redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[name];
      command.call(this.redis, ...argv).then((raw) => resolve(answer(raw)), reject);
      return;
    }
    const pipeline = this.redis.pipeline() as unknown as Record<string, (...a: (string | number)[]) => unknown> & { exec(): Promise<[Error | null, unknown][] | null> };
    for (const { name, argv } of calls) pipeline[name](...argv);
    pipeline.exec().then(
      (results) =>
        calls.forEach(({ resolve, reject }, i) => {
          const [err, raw] = results?.[i] ?? [new Error("no answer from Redis"), undefined];
          if (err) reject(err);
          else resolve(answer(raw));
        }),
      (err) => calls.forEach(({ reject }) => reject(err)),
    );
  }

  async close(): Promise<void> {
    await this.redis.quit();
  }
}
