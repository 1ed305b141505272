import { Errors, type Middleware } from "moleculer";

interface Pending {
  deadline: number;
  fail: (err: Error) => void;
  action: string;
  nodeID: string | undefined;
}

/**
 * Call timeouts on one coarse clock instead of Moleculer's (a timer, a race and four promises per call:
 * about 9 µs of a ~40 µs gateway request). Every call still in flight is checked every `tickMs`; one past
 * its deadline fails with Moleculer's own RequestTimeoutError (504 at the gateway), at most `tickMs` late.
 * The broker's `requestTimeout` must be 0 so Moleculer does not time calls as well.
 */
export function deadlineMiddleware(defaultMs: number, tickMs = 100): Middleware {
  const pending = new Set<Pending>();
  let ticker: NodeJS.Timeout | undefined;

  function expire(): void {
    const now = Date.now();
    for (const p of pending)
      if (p.deadline <= now) {
        pending.delete(p);
        p.fail(new Errors.RequestTimeoutError({ action: p.action, nodeID: p.nodeID }));
      }
  }

  function wrap(next: (ctx: CallContext) => Promise<unknown>, action: { name: string; timeout?: number }) {
    return (ctx: CallContext) => {
      const ms = ctx.options.timeout || action.timeout || defaultMs;
      if (!(ms > 0)) return next(ctx);
      return new Promise((resolve, reject) => {
        const p: Pending = { deadline: Date.now() + ms, fail: reject, action: action.name, nodeID: ctx.nodeID ?? undefined };
        pending.add(p);
        next(ctx).then(
          (value) => {
            pending.delete(p);
            resolve(value);
          },
          (err: unknown) => {
            pending.delete(p);
            reject(err);
          },
        );
      });
    };
  }

  return {
    name: "Deadline",
    created() {
      ticker = setInterval(expire, tickMs);
      ticker.unref();
    },
    stopped() {
      clearInterval(ticker);
    },
    localAction: wrap,
    remoteAction: wrap,
  } as unknown as Middleware;
}

interface CallContext {
  options: { timeout?: number | null };
  nodeID?: string | null;
}
