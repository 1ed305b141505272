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
  /** Namespace prefix of every key, so tenants of one Redis never meet. */
  readonly prefix: string;
  /** The Redis client behind a real adapter, for platform parts (shared rate limits) that need it. */
  readonly redis?: Redis;
  close(): Promise<void>;
}
