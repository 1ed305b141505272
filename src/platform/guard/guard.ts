import { monitorEventLoopDelay } from "node:perf_hooks";
import type { ActionSchema, Context, Middleware } from "moleculer";
import type { Counter } from "prom-client";
import type { Clock } from "../clock/clock";
import type { Kv } from "../kv/kv";
import type { Metrics } from "../observability/metrics";
import { AppError } from "../runtime/errors";
import {
  CircuitBreaker,
  type DegradeRule,
  type FlowRule,
  ParamController,
  type ParamRule,
  QpsController,
  RollingCounter,
  type SystemRule,
} from "./guard.domain";
import { leaseFor, RateLimit } from "./rate-limit";

export interface GuardRuleSet {
  flow: FlowRule[];
  degrade: DegradeRule[];
  param: ParamRule[];
  system: SystemRule[];
}

/** What a rule looks at in a call. */
export interface Subject {
  params?: unknown;
  meta?: unknown;
}

interface Compiled {
  qps: QpsController[];
  cluster: { rule: FlowRule; limiter: RateLimit }[];
  concurrency: { rule: FlowRule; inFlight: number }[];
  breakers: CircuitBreaker[];
  params: ParamController[];
}

/** An admitted call: wait `waitMs` (queueing rules), then report how it ended with `exit`. */
export class Pass {
  constructor(
    private readonly guard: Guard,
    readonly compiled: Compiled | undefined,
    readonly inbound: boolean,
    readonly startedAt: number,
    readonly waitMs: number,
  ) {}

  exit(failed: boolean): void {
    this.guard.exit(this, failed);
  }

  /** Makes the admitted call and ends the pass when it ends; a failure counts against breakers unless it was the caller's (4xx). */
  run<T>(work: () => Promise<T>): Promise<T> {
    let call: Promise<T>;
    try {
      call = work();
    } catch (err) {
      this.exit(isServiceFailure(err));
      return Promise.reject(err);
    }
    return call.then(
      (result) => {
        this.exit(false);
        return result;
      },
      (err: unknown) => {
        this.exit(isServiceFailure(err));
        throw err;
      },
    );
  }
}

/**
 * The node's flow guard: rules by resource (a gateway route `METHOD /path` or an action name),
 * replaced whole when the config centre pushes new ones. Local counters for per-node limits;
 * `clusterMode` QPS rules count across nodes through the kv (Redis when configured). A refused call
 * gets 429 (flow, hot parameter, system) or 503 (degraded), with a code naming the kind of rule.
 */
export class Guard {
  private compiled = new Map<string, Compiled>();
  private system: SystemRule = {};
  private systemOn = false;
  private readonly systemQps = new RollingCounter(1000, 10, 1);
  private inFlight = 0;
  private readonly blocked: Counter<"resource" | "rule">;

  constructor(
    private readonly clock: Clock,
    private readonly kv: Kv,
    metrics: Metrics,
    /** Mean event-loop delay over the last second, ms. */
    private readonly lag: () => number,
  ) {
    this.blocked = metrics.counter("bazaar_guard_blocked_total", "calls refused by a guard rule", ["resource", "rule"]);
  }

  load(rules: GuardRuleSet): void {
    const next = new Map<string, Compiled>();
    const of = (resource: string) => {
      let c = next.get(resource);
      if (!c) next.set(resource, (c = { qps: [], cluster: [], concurrency: [], breakers: [], params: [] }));
      return c;
    };
    for (const rule of rules.flow) {
      const c = of(rule.resource);
      if (rule.grade === "CONCURRENCY") c.concurrency.push({ rule, inFlight: 0 });
      // Without Redis there is one node to count on: a cluster rule is a local one.
      else if (rule.clusterMode && this.kv.redis)
        c.cluster.push({ rule, limiter: new RateLimit(this.kv, { name: `guard:${rule.resource}`, points: Math.floor(rule.count), durationSeconds: 1, lease: leaseFor(rule.count) }, "FLOW_LIMITED") });
      else c.qps.push(new QpsController(rule));
    }
    for (const rule of rules.degrade) of(rule.resource).breakers.push(new CircuitBreaker(rule));
    for (const rule of rules.param) of(rule.resource).params.push(new ParamController(rule));
    this.compiled = next;
    this.system = Object.assign({}, ...rules.system) as SystemRule;
    this.systemOn = rules.system.length > 0;
  }

  /** Whether any rule applies to calls on `resource` (inbound calls also meet the system rules). */
  applies(resource: string, inbound: boolean): boolean {
    return this.compiled.has(resource) || (inbound && this.systemOn);
  }

  /**
   * Decides a call; throws the refusal. Cluster-wide rules are async: callers await `cluster()` when
   * `needsCluster` says so.
   */
  enter(resource: string, subject: Subject, inbound: boolean): Pass {
    const now = this.clock.now();
    const c = this.compiled.get(resource);
    if (inbound && this.systemOn) this.checkSystem(resource, now);
    let waitMs = 0;
    if (c) {
      for (const p of c.params) {
        const value = p.valueOf(subject);
        if (value !== undefined && !p.admit(value, now))
          this.refuse(resource, "param", 429, "PARAM_FLOW_LIMITED", `${p.rule.param}=${value} is over ${p.rule.count} per ${p.rule.durationInSec}s`);
      }
      for (const q of c.qps) {
        const wait = q.admit(now);
        if (wait < 0) this.refuse(resource, "flow", 429, "FLOW_LIMITED", `over ${Math.floor(q.limit(now))} calls per second (${q.rule.behavior})`);
        if (wait > waitMs) waitMs = wait;
      }
      for (const slot of c.concurrency) if (slot.inFlight >= slot.rule.count) this.refuse(resource, "flow", 429, "FLOW_LIMITED", `over ${slot.rule.count} calls in flight`);
      for (const b of c.breakers) if (!b.tryPass(now)) this.refuse(resource, "degrade", 503, "DEGRADED", `circuit open (${b.rule.grade}); retry later`);
      for (const slot of c.concurrency) slot.inFlight++;
    }
    if (inbound && this.systemOn) {
      this.inFlight++;
      this.systemQps.add(now, 0);
    }
    return new Pass(this, c, inbound, now, waitMs);
  }

  needsCluster(pass: Pass): boolean {
    return (pass.compiled?.cluster.length ?? 0) > 0;
  }

  /**
   * What must be awaited before an admitted call starts — cluster-wide limits, a queueing rule's
   * wait — or undefined when nothing is: the common case then costs no promise. Rejects with the refusal.
   */
  ready(resource: string, pass: Pass): Promise<void> | undefined {
    if (!this.needsCluster(pass) && pass.waitMs <= 0) return undefined;
    return (async () => {
      if (this.needsCluster(pass)) await this.cluster(resource, pass);
      if (pass.waitMs > 0) await new Promise((r) => setTimeout(r, pass.waitMs));
    })();
  }

  /** The cluster-wide QPS rules of the pass's resource; on refusal the pass is released. */
  async cluster(resource: string, pass: Pass): Promise<void> {
    for (const { limiter, rule } of pass.compiled!.cluster) {
      try {
        await limiter.consume(resource);
      } catch {
        pass.exit(false);
        this.refuse(resource, "flow", 429, "FLOW_LIMITED", `over ${rule.count} calls per second across the cluster`);
      }
    }
  }

  exit(pass: Pass, failed: boolean): void {
    const c = pass.compiled;
    if (pass.inbound && this.systemOn) this.inFlight = Math.max(0, this.inFlight - 1);
    if (!c) return;
    for (const slot of c.concurrency) slot.inFlight = Math.max(0, slot.inFlight - 1);
    if (c.breakers.length === 0) return;
    const now = this.clock.now();
    for (const b of c.breakers) b.complete(now, now - pass.startedAt, failed);
  }

  private checkSystem(resource: string, now: number): void {
    const { maxConcurrency, maxEventLoopLagMs, qps } = this.system;
    if (maxConcurrency !== undefined && this.inFlight >= maxConcurrency) this.refuse(resource, "system", 429, "SYSTEM_PROTECTED", `node busy: ${this.inFlight} calls in flight`);
    if (qps !== undefined && this.systemQps.sum(now, 0) + 1 > qps) this.refuse(resource, "system", 429, "SYSTEM_PROTECTED", `node over ${qps} calls per second`);
    if (maxEventLoopLagMs !== undefined) {
      const lag = this.lag();
      if (lag > maxEventLoopLagMs) this.refuse(resource, "system", 429, "SYSTEM_PROTECTED", `node overloaded: event loop ${Math.round(lag)} ms behind`);
    }
  }

  private refuse(resource: string, rule: string, status: number, code: string, why: string): never {
    this.blocked.inc({ resource, rule });
    throw new AppError(status, code, `${resource}: ${why}`);
  }
}

/** Mean event-loop delay over the last second, sampled every 20 ms. */
export function eventLoopLag(): { read: () => number; stop: () => void } {
  const histogram = monitorEventLoopDelay({ resolution: 20 });
  histogram.enable();
  let last = 0;
  const timer = setInterval(() => {
    last = Number.isNaN(histogram.mean) ? 0 : histogram.mean / 1e6;
    histogram.reset();
  }, 1000);
  timer.unref();
  return {
    read: () => last,
    stop: () => {
      clearInterval(timer);
      histogram.disable();
    },
  };
}

/** A 5xx or a failure to answer counts against a breaker; a 4xx is the caller's problem, not the service's. */
export function isServiceFailure(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return !(typeof code === "number" && code >= 400 && code < 500);
}

/**
 * Guards every local action by its name. An action may declare `degraded(ctx, refusal)`: its answer
 * when a rule refuses the call (the seeds' fallback), instead of the refusal.
 */
export function guardMiddleware(guard: Guard): Middleware {
  return {
    name: "Guard",
    localAction(next: (ctx: Context) => Promise<unknown>, action: ActionSchema & { degraded?: (ctx: Context, refusal: AppError) => unknown }) {
      const resource = action.name as string;
      const degraded = action.degraded;
      const refused = (ctx: Context, err: unknown) => (degraded && err instanceof AppError ? degraded(ctx, err) : Promise.reject(err));
      return (ctx: Context) => {
        if (!guard.applies(resource, false)) return next(ctx);
        let pass: Pass;
        try {
          pass = guard.enter(resource, ctx, false);
        } catch (err) {
          return Promise.resolve().then(() => refused(ctx, err));
        }
        const waiting = guard.ready(resource, pass);
        if (!waiting) return pass.run(() => next(ctx));
        return waiting.then(
          () => pass.run(() => next(ctx)),
          (err: unknown) => refused(ctx, err),
        );
      };
    },
  } as unknown as Middleware;
}
