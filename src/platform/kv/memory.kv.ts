import type { Clock } from "../clock/clock";
import type { Kv } from "./kv";

interface Entry {
  value: string;
  expiresAt: number;
}

/** In-process kv with Redis's TTL semantics, evaluated against the injected clock. */
export class MemoryKv implements Kv {
  private readonly entries = new Map<string, Entry>();
  private sweeps = 0;

  constructor(
    private readonly clock: Clock,
    readonly prefix: string,
  ) {}

  private live(key: string): Entry | undefined {
    const entry = this.entries.get(this.prefix + key);
    if (entry && entry.expiresAt <= this.clock.now()) {
      this.entries.delete(this.prefix + key);
      return undefined;
    }
    return entry;
  }

  private put(key: string, value: string, ttlMs?: number): void {
    // Expired keys are otherwise only dropped on read; sweep now and then so memory stays bounded.
    if (++this.sweeps % 10_000 === 0) this.sweep();
    this.entries.set(this.prefix + key, { value, expiresAt: ttlMs ? this.clock.now() + ttlMs : Infinity });
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
  async close(): Promise<void> {
    this.entries.clear();
  }
}
