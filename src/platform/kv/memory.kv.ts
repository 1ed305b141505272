import type { Clock } from "../clock/clock";
import type { Kv, KvOps, KvScript } from "./kv";

interface Entry {
  value: string;
  expiresAt: number;
}

/** In-process kv with Redis's TTL semantics, evaluated against the injected clock. */
export class MemoryKv implements Kv {
  private readonly entries = new Map<string, Entry>();
  private readonly hashes = new Map<string, Map<string, string>>();
  private sweeps = 0;
  /** Script commands on full (already prefixed) keys. */
  private readonly ops: KvOps = {
    get: (key) => this.liveFull(key)?.value ?? null,
    set: (key, value, ttlMs) => this.putFull(key, value, ttlMs),
    setNX: (key, value, ttlMs) => {
      if (this.liveFull(key)) return false;
      this.putFull(key, value, ttlMs);
      return true;
    },
    incrBy: (key, by) => {
      const entry = this.liveFull(key);
      if (!entry) {
        this.putFull(key, String(by));
        return by;
      }
      entry.value = String(Number(entry.value) + by);
      return Number(entry.value);
    },
    exists: (key) => this.liveFull(key) !== undefined || this.hashes.has(key),
    hget: (key, field) => this.hashes.get(key)?.get(field) ?? null,
    hset: (key, field, value) => {
      let hash = this.hashes.get(key);
      if (!hash) this.hashes.set(key, (hash = new Map()));
      hash.set(field, value);
    },
    hdel: (key, field) => {
      const hash = this.hashes.get(key);
      if (hash?.delete(field) && hash.size === 0) this.hashes.delete(key);
    },
  };

  constructor(
    private readonly clock: Clock,
    readonly prefix: string,
  ) {}

  private live(key: string): Entry | undefined {
    return this.liveFull(this.prefix + key);
  }

  private liveFull(full: string): Entry | undefined {
    const entry = this.entries.get(full);
    if (entry && entry.expiresAt <= this.clock.now()) {
      this.entries.delete(full);
      return undefined;
    }
    return entry;
  }

  private put(key: string, value: string, ttlMs?: number): void {
    this.putFull(this.prefix + key, value, ttlMs);
  }

  private putFull(full: string, value: string, ttlMs?: number): void {
    // Expired keys are otherwise only dropped on read; sweep now and then so memory stays bounded.
    if (++this.sweeps % 10_000 === 0) this.sweep();
    this.entries.set(full, { value, expiresAt: ttlMs ? this.clock.now() + ttlMs : Infinity });
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(key);
  }

  async get(key: string): Promise<string | null> {
    return this.live(key)?.value ?? null;
  }
  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    this.put(key, value, ttlMs);
  }
  async setNX(key: string, value: string, ttlMs: number): Promise<boolean> {
    if (this.live(key)) return false;
    this.put(key, value, ttlMs);
    return true;
  }
  async del(key: string): Promise<void> {
    this.entries.delete(this.prefix + key);
  }
  async incrBy(key: string, by: number, ttlMs?: number): Promise<number> {
    const entry = this.live(key);
    if (entry) {
      entry.value = String(Number(entry.value) + by);
      return Number(entry.value);
    }
    this.put(key, String(by), ttlMs);
    return by;
  }
  async hget(key: string, field: string): Promise<string | null> {
    return this.ops.hget(this.prefix + key, field);
  }
  async hgetall(key: string): Promise<Record<string, string>> {
    return Object.fromEntries(this.hashes.get(this.prefix + key) ?? []);
  }
  async run(script: KvScript, keys: readonly string[], args: readonly (string | number)[]): Promise<string[]> {
    return script.embedded(
      this.ops,
      keys.map((k) => this.prefix + k),
      args.map(String),
    );
  }
  async close(): Promise<void> {
    this.entries.clear();
    this.hashes.clear();
  }
}
