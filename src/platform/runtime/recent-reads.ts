import type { Clock } from "../clock/clock";

/**
 * Reads every request makes of data that rarely changes (a vote policy, the reviewer pool's rules),
 * kept and trusted for `ttlMs`: a change made through this instance drops its entry (`drop`); one made
 * through another reaches this one within `ttlMs`, or at once when that instance broadcasts it and the
 * handler here drops it. A value not found is not kept: callers may name keys that do not exist.
 */
export class RecentReads<K, V> {
  private readonly entries = new Map<K, { value: V; readAt: number }>();

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs: number,
  ) {}

  async get(key: K, read: () => Promise<V | undefined>): Promise<V | undefined> {
    const known = this.entries.get(key);
    if (known && this.clock.now() - known.readAt < this.ttlMs) return known.value;
    const readAt = this.clock.now();
    const value = await read();
    if (value === undefined) this.entries.delete(key);
    else this.entries.set(key, { value, readAt });
    return value;
  }

  drop(key: K): void {
    this.entries.delete(key);
  }
}
