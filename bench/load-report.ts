import type { Result } from "autocannon";

/** The callback every load process gives autocannon: one JSON summary on stdout for the benchmark that spawned it. */
export function printSummary(err: Error | null, result: Result): void {
  if (err) throw err;
  process.stdout.write(
    JSON.stringify({
      requests: result.requests.total,
      seconds: result.duration,
      requestsPerSecond: Math.round(result.requests.total / result.duration),
      p50ms: result.latency.p50,
      p99ms: result.latency.p99,
      non2xx: result.non2xx,
      statusCodes: result.statusCodeStats,
      errors: result.errors,
      timeouts: result.timeouts,
    }),
  );
}
