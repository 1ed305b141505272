/**
 * Named crash points for fault-injection tests. `BAZAAR_CRASH_AT=<point>` (or `<point>@<n>`) makes the
 * process SIGKILL itself the n-th time (default the first) it reaches that point — a kill at an exact
 * step boundary, which a kill from outside can only hit by luck. Unset, a point costs one comparison.
 */
const [crashAt, nth] = (process.env.BAZAAR_CRASH_AT ?? "").split("@");
const crashOn = Math.max(1, Number(nth) || 1);
let reached = 0;

export function crashPoint(name: string): void {
  if (name !== crashAt) return;
  if (++reached >= crashOn) process.kill(process.pid, "SIGKILL");
}
