import { readFileSync } from "node:fs";
import { type EventLoopUtilization, performance } from "node:perf_hooks";

/** Above this share of its time busy, the process (or the host) is saturated by what it answers live. */
export const BUSY_ABOVE = 0.9;
/** The share of its configured rate a paced consumer keeps while the process is saturated. */
export const SHARE_WHEN_BUSY = 0.1;
/** How often the process's busyness is measured (over the window since the last measure). */
const BUSY_WINDOW_MS = 250;

/**
 * The rate a paced consumer keeps: its configured rate, or a tenth of it while the process or its
 * host is saturated. A backlog waits in the log until a spike passes; requests answered live (a flash
 * sale's attempts) keep the CPU. Never below one message a second.
 */
export function paceFor(rate: number, busy: number): number {
  const configured = Math.max(1, rate);
  return busy > BUSY_ABOVE ? Math.max(1, configured * SHARE_WHEN_BUSY) : configured;
}

/** CPU time of the whole host so far (Linux /proc/stat, in clock ticks), or undefined where there is none. */
export function hostCpuTicks(): { busy: number; total: number } | undefined {
  let line: string;
  try {
    line = readFileSync("/proc/stat", "latin1").slice(0, 256).split("\n")[0];
  } catch {
    return undefined;
  }
  // cpu user nice system idle iowait irq softirq steal ...: idle and iowait are the idle time.
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  const total = ticks.reduce((a, b) => a + b, 0);
  return { busy: total - ticks[3] - (ticks[4] ?? 0), total };
}

/** Share of `to - from` the host's CPUs were busy (0 when no time passed or there is no reading). */
export function hostBusyBetween(from: { busy: number; total: number } | undefined, to: { busy: number; total: number } | undefined): number {
  if (!from || !to || to.total <= from.total) return 0;
  return (to.busy - from.busy) / (to.total - from.total);
}

let measured: { at: number; mark: EventLoopUtilization; host: ReturnType<typeof hostCpuTicks>; busy: number } | undefined;

/**
 * How busy this node is (0–1) over the last quarter second or so: its event loop's utilisation or
 * its host's CPUs, whichever is busier. The host counts because a node is one of several processes
 * on it (workers, a database): each loop can have room while together they leave the CPUs none.
 */
export function processBusy(): number {
  const now = performance.now();
  if (!measured) {
    measured = { at: now, mark: performance.eventLoopUtilization(), host: hostCpuTicks(), busy: 0 };
    return 0;
  }
  if (now - measured.at >= BUSY_WINDOW_MS) {
    const mark = performance.eventLoopUtilization();
    const host = hostCpuTicks();
    const busy = Math.max(performance.eventLoopUtilization(mark, measured.mark).utilization, hostBusyBetween(measured.host, host));
    measured = { at: now, mark, host, busy };
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
