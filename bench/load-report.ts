import type { Instance, Result } from "autocannon";

/**
 * The summary every load process prints for the benchmark that spawned it: one JSON line on stdout.
 * Its duration is timed here, from autocannon's start to the last response: with `amount`, autocannon
 * reports only on its next one-second tick, so its own duration rounds the run up to whole seconds
 * (one run's 20,400 votes took 5.18 s and were counted over 6.01 s: a seventh fewer requests a second).
 */
export function reportWhenDone(instance: Instance): void {
  let started = Date.now();
  let last = started;
  instance.on("start", () => (started = last = Date.now()));
  instance.on("response", () => (last = Date.now()));
  instance.on("done", (result: Result) => {
    const seconds = Math.max(last - started, 1) / 1000;
    process.stdout.write(
      JSON.stringify({
        requests: result.requests.total,
        seconds,
        requestsPerSecond: Math.round(result.requests.total / seconds),
        p50ms: result.latency.p50,
        p99ms: result.latency.p99,
        non2xx: result.non2xx,
        statusCodes: result.statusCodeStats,
        errors: result.errors,
        timeouts: result.timeouts,
      }),
    );
  });
}
