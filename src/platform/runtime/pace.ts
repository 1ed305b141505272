import { type EventLoopUtilization, performance } from "node:perf_hooks";

/** Above this share of its time busy, the process is saturated by what it answers live. */
export const BUSY_ABOVE = 0.9;
/** The share of its configured rate a paced consumer keeps while the process is saturated. */
export const SHARE_WHEN_BUSY = 0.1;
/** How often the process's busyness is measured (over the window since the last measure). */
const BUSY_WINDOW_MS = 250;

/**
 * The rate a paced consumer keeps: its configured rate, or a tenth of it while the process is
 * saturated. A backlog waits in the log until a spike passes; requests answered live (a flash sale's
 * attempts on the same node) keep the CPU. Never below one message a second.
 */
export function paceFor(rate: number, busy: number): number {
  const configured = Math.max(1, rate);
  return busy > BUSY_ABOVE ? Math.max(1, configured * SHARE_WHEN_BUSY) : configured;
}

let measured: { at: number; mark: EventLoopUtilization; busy: number } | undefined;

/** This process's event-loop utilisation (0–1) over the last quarter second or so. */
export function processBusy(): number {
  const now = performance.now();
  if (!measured) {
    measured = { at: now, mark: performance.eventLoopUtilization(), busy: 0 };
    return 0;
  }
  if (now - measured.at >= BUSY_WINDOW_MS) {
    const mark = performance.eventLoopUtilization();
    measured = { at: now, mark, busy: performance.eventLoopUtilization(mark, measured.mark).utilization };
  }
  return measured.busy;
}

/** Waits as long as it takes to keep the messages it is called for to `rate()` a second (see paceFor). */
export function pacer(rate: () => number, busy: () => number = processBusy): () => Promise<void> {
  let next = 0;
  return async () => {
    const now = performance.now();
    const wait = next - now;
    next = Math.max(now, next) + 1000 / paceFor(rate(), busy());

    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  };
}
