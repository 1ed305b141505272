import { AsyncLocalStorage } from "node:async_hooks";
import type { Middleware } from "moleculer";
import type { Meta } from "../runtime/action";

/** The header a stream message carries its release lane in. */
export const LANE_HEADER = "x-bazaar-lane";

const current = new AsyncLocalStorage<string | undefined>();

/** The release lane of the work running now: the request's (in an action), the message's (in a consumer). */
export function currentLane(): string | undefined {
  return current.getStore();
}

/**
 * Runs `work` as part of `lane`: calls it makes and events it emits carry the lane. Work without a
 * lane runs in none, whoever started it. On Node 20 an AsyncLocalStorage in use taxes every promise of
 * the process, so only systems that route by lane pay for it: with no lane around, `work` just runs.
 */
export function withLane<T>(lane: string | undefined, work: () => T): T {
  if (lane !== undefined) return current.run(lane, work);
  return current.getStore() === undefined ? work() : current.exit(work);
}

/**
 * Carries the lane through what `ctx.meta` does not reach: an action's handler runs inside its
 * request's lane, and a call made without a context (`broker.call` from a stream consumer, a
 * sweeper) takes the lane of the work it is part of.
 */
export function laneMiddleware(): Middleware {
  return {
    name: "lane",
    localAction(next: (ctx: unknown) => unknown) {
      return (ctx: { meta: Meta }) => (ctx.meta?.lane === undefined ? next(ctx) : withLane(ctx.meta.lane, () => next(ctx)));
    },
    call(next: (action: string, params: unknown, opts?: { meta?: Meta }) => unknown) {
      return (action: string, params: unknown, opts: { meta?: Meta } = {}) => {
        const lane = currentLane();
        if (lane === undefined || opts.meta?.lane !== undefined) return next(action, params, opts);
        return next(action, params, { ...opts, meta: { ...opts.meta, lane } });
      };
    },
  } as unknown as Middleware;
}
