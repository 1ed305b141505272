import type { Logger } from "pino";
import type { Clock } from "../clock/clock";
import type { Kv } from "../kv/kv";

/** Largest batch one call carries (the action's contract takes up to this many ids). */
export const ACTIVITY_BATCH = 1000;

/**
 * Tells the identity service which signed-in users were active: each user at most once per window
 * across every gateway (a kv key per user and window), sent in batches every `flushMs` rather than
 * one call and one transaction per user — a flash sale brings tens of thousands of users at once.
 * A batch carries the start of the window its users were seen in: activity is counted in days, and
 * a late flush must not make a user look active later than they were.
 */
export class ActivityRecorder {
  private window = -1;
  /** Users this gateway has already looked at in the current window: no kv round trip for them. */
  private readonly seen = new Set<number>();
  /** Window start → users first seen in that window, waiting to be sent. */
  private readonly pending = new Map<number, Set<number>>();
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly kv: Kv,
    private readonly clock: Clock,
    private readonly windowMs: number,
    private readonly send: (userIds: number[], at: number) => Promise<unknown>,
    private readonly logger: Logger,
    private readonly flushMs = 250,
  ) {}

  record(userId: number): void {
    const window = Math.floor(this.clock.now() / this.windowMs);
    if (window !== this.window) {
      this.window = window;
      this.seen.clear();
    }
    if (this.seen.has(userId)) return;
    this.seen.add(userId);
    this.kv
      .setNX(`active:${userId}:${window}`, "1", this.windowMs)
      .then((first) => {
        if (!first) return;
        const at = window * this.windowMs;
        if (!this.pending.has(at)) this.pending.set(at, new Set());
        this.pending.get(at)!.add(userId);
        this.timer ??= setTimeout(() => void this.flush(), this.flushMs).unref();
      })
      .catch((err) => this.logger.warn({ err, user: userId }, "activity not recorded"));
  }

  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const windows = [...this.pending];
    this.pending.clear();
    for (const [at, users] of windows) {
      const ids = [...users];
      for (let i = 0; i < ids.length; i += ACTIVITY_BATCH) {
        const batch = ids.slice(i, i + ACTIVITY_BATCH);
        await this.send(batch, at).catch((err) => this.logger.warn({ err, users: batch.length }, "activity not recorded"));
      }
    }
  }
}
