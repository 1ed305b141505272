/**
 * Named crash points for fault-injection tests. `BAZAAR_CRASH_AT=<point>` (or `<point>@<n>`) makes the
 * process SIGKILL itself the n-th time (default the first) it reaches that point — a kill at an exact
 * step boundary, which a kill from outside can only hit by luck. An in-process test arms a point with
 * `failNextAt` instead: the work stops there with an error, leaving what a crash would leave. Unset, a
 * point costs one comparison and one lookup.
 */
const [crashAt, nth] = (process.env.BAZAAR_CRASH_AT ?? "").split("@");
const crashOn = Math.max(1, Number(nth) || 1);
let reached = 0;

/** Points armed in this process, with how many more passes through each throw. */
const armed = new Map<string, number>();

export function crashPoint(name: string): void {
  const left = armed.get(name);
  if (left !== undefined) {
    if (left > 1) armed.set(name, left - 1);
    else armed.delete(name);
    throw new Error(`fault injected at ${name}`);
  }
  if (name !== crashAt) return;
  if (++reached >= crashOn) process.kill(process.pid, "SIGKILL");
}

/** Makes the next `times` passes through crash point `name` in this process throw (tests only). */
export function failNextAt(name: string, times = 1): void {
  armed.set(name, times);
}
