import type Redis from "ioredis";

/**
 * The cache / atomic-counter port. The embedded adapter keeps the same semantics as the Redis one
 * (TTL, NX, atomic increments), so code written against it behaves the same on both.
 */
export interface Kv {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, ttlMs?: number): Promise<void>;
  /** Sets only if absent; true when this call set it. */
  setNX(key: string, value: string, ttlMs: number): Promise<boolean>;
  del(key: string): Promise<void>;
  /** Atomic increment; the TTL applies when the key is created. */
  incrBy(key: string, by: number, ttlMs?: number): Promise<number>;
  /** One field of a hash, or null. */
  hget(key: string, field: string): Promise<string | null>;
  /** Fields of a hash (empty when the key is absent). */
  hgetall(key: string): Promise<Record<string, string>>;
  /**
   * Runs a script atomically: Lua on Redis, its embedded twin in-process (synchronous, so nothing
   * interleaves). Keys are given unprefixed; the adapter prefixes them.
   */
  run(script: KvScript, keys: readonly string[], args: readonly (string | number)[]): Promise<string[]>;
  /** Namespace prefix of every key, so tenants of one Redis never meet. */
  readonly prefix: string;
  /** The Redis client behind a real adapter, for platform parts (shared rate limits) that need it. */
  readonly redis?: Redis;
  close(): Promise<void>;
}

/** The synchronous commands an embedded script may use: the Redis ones its Lua twin calls, same semantics. */
export interface KvOps {
  get(key: string): string | null;
  set(key: string, value: string, ttlMs?: number): void;
  /** Sets only if absent; true when it set. */
  setNX(key: string, value: string, ttlMs?: number): boolean;
  incrBy(key: string, by: number): number;
  exists(key: string): boolean;
  hget(key: string, field: string): string | null;
  hset(key: string, field: string, value: string): void;
  hdel(key: string, field: string): void;
}

/**
 * One atomic operation written twice: `lua` for Redis, `embedded` for the in-process kv. Both take
 * the same keys and string arguments and return the same array of strings; one test suite runs
 * every script against both adapters.
 */
export interface KvScript {
  readonly name: string;
  readonly lua: string;
  embedded(ops: KvOps, keys: readonly string[], args: readonly string[]): string[];
}
