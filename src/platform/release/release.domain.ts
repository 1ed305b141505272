import { z } from "zod";

/**
 * Release strategies, pure: which lane (node version) a request is routed to — by header, cookie,
 * a sticky share of users, or weights — and which endpoints may serve it: not drained, of the live
 * colour (blue-green), of the request's lane when any node runs it. No I/O; randomness passed in.
 */

const lane = z.string().min(1).max(64);

export const RouteRule = z.union([
  z.object({ header: z.string().min(1).max(64).toLowerCase(), equals: z.string().max(200), lane }),
  z.object({ cookie: z.string().min(1).max(64), equals: z.string().max(200), lane }),
  /** A sticky share of signed-in users: the same user always lands in the same lane. */
  z.object({ userPercent: z.number().min(0).max(100), lane }),
  /** Per request: the lane drawn by weight (e.g. {"1.0.0": 90, "1.1.0": 10}). */
  z.object({ weights: z.record(lane, z.number().int().min(0)).refine((w) => Object.values(w).some((n) => n > 0), "at least one positive weight") }),
]);
export type RouteRule = z.infer<typeof RouteRule>;

/** Config centre value release/routing. */
export const Routing = z.object({
  /** The lane of requests no rule picks; unset: any node. */
  stable: lane.optional(),
  /** Blue-green: only nodes of this colour serve (while any is up); switch it back to switch back. */
  colour: z.string().min(1).max(32).optional(),
  /** First match wins. */
  rules: z.array(RouteRule).max(100).default([]),
});
export type Routing = z.infer<typeof Routing>;

export const NO_ROUTING: Routing = { rules: [] };

export interface RequestFacts {
  header(name: string): string | undefined;
  cookie(name: string): string | undefined;
  userId?: number;
}

/** A stable bucket 0..99 for a user (FNV-1a of the id), so a percentage rule is sticky per user. */
export function userBucket(userId: number): number {
  let h = 0x811c9dc5;
  const s = String(userId);
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // Spread the low bits before taking the bucket: consecutive ids would otherwise cluster.
  h ^= h >>> 16;
  h = Math.imul(h, 0x45d9f3b);
  h ^= h >>> 16;
  return (h >>> 0) % 100;
}

/** The lane drawn from `weights` for a uniform `r` in [0, 1). */
export function pickWeighted(weights: Record<string, number>, r: number): string {
  const entries = Object.entries(weights).filter(([, w]) => w > 0);
  const total = entries.reduce((s, [, w]) => s + w, 0);
  let point = r * total;
  for (const [name, w] of entries) {
    if (point < w) return name;
    point -= w;
  }
  return entries[entries.length - 1][0];
}

/** The lane a request goes to, or undefined for "the stable lane, or anywhere". */
export function laneFor(routing: Routing, request: RequestFacts, random: () => number): string | undefined {
  for (const rule of routing.rules) {
    if ("header" in rule) {
      if (request.header(rule.header) === rule.equals) return rule.lane;
    } else if ("cookie" in rule) {
      if (request.cookie(rule.cookie) === rule.equals) return rule.lane;
    } else if ("userPercent" in rule) {
      if (request.userId !== undefined && userBucket(request.userId) < rule.userPercent) return rule.lane;
    } else return pickWeighted(rule.weights, random());
  }
  return routing.stable;
}

/**
 * The lane a request carries on its hops: none when it was decided for the stable lane, or for a lane
 * no node serves — its hops then go where a call without a lane goes anyway, and carrying a lane costs
 * (on Node 20, the AsyncLocalStorage that takes it through events and context-less calls slows every
 * promise of the process once used).
 */
export function laneToCarry(decided: string | undefined, routing: Routing, served: ReadonlySet<string>): string | undefined {
  return decided !== undefined && decided !== routing.stable && served.has(decided) ? decided : undefined;
}

export interface NodeFacts {
  version?: string;
  colour?: string;
  drained?: boolean;
}

/**
 * The endpoints that may serve a call in `lane`: drained nodes take nothing new (unless every one is
 * drained); the live colour only, while a node of it is up; the lane's nodes, else the stable lane's,
 * else any. Each narrowing applies only when it leaves someone to serve.
 */
export function eligible<E>(endpoints: readonly E[], facts: (e: E) => NodeFacts, lane: string | undefined, routing: Routing): E[] {
  let out = endpoints.filter((e) => !facts(e).drained);
  if (out.length === 0) out = [...endpoints];
  const narrow = (keep: (f: NodeFacts) => boolean) => {
    const kept = out.filter((e) => keep(facts(e)));
    if (kept.length > 0) out = kept;
    return kept.length > 0;
  };
  if (routing.colour) narrow((f) => f.colour === routing.colour);
  if (!(lane && narrow((f) => f.version === lane)) && routing.stable) narrow((f) => f.version === routing.stable);
  return out;
}

/** Cookie header parsing for cookie rules: `a=1; b=2`. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}
