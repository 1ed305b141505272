import type { ServiceSchema } from "moleculer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { engines, eventually, startTestSystem, type TestSystem } from "../../../test/support/harness";
import { ManualClock } from "../clock/clock";
import type { Kv } from "../kv/kv";
import { MemoryKv } from "../kv/memory.kv";
import { RedisKv } from "../kv/redis.kv";
import { Metrics } from "../observability/metrics";
import { action } from "../runtime/action";
import { AppError } from "../runtime/errors";
import { Guard, type GuardRuleSet } from "./guard";
import { DegradeRule, FlowRule } from "./guard.domain";

const none: GuardRuleSet = { flow: [], degrade: [], param: [], system: [] };

function engine(clock = new ManualClock(), kv: Kv = new MemoryKv(clock, "g:"), lag = () => 0) {
  return new Guard(clock, kv, new Metrics(false), lag);
}

const refusal = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return { status: (err as AppError).code, code: (err as AppError).type };
  }
  return null;
};

describe("guard engine", () => {
  it("holds a concurrency limit until calls finish", () => {
    const g = engine();
    g.load({ ...none, flow: [FlowRule.parse({ resource: "svc.a", grade: "CONCURRENCY", count: 2 })] });
    const a = g.enter("svc.a", {}, false);
    g.enter("svc.a", {}, false);
    expect(refusal(() => g.enter("svc.a", {}, false))).toEqual({ status: 429, code: "FLOW_LIMITED" });
    a.exit(false);
    expect(refusal(() => g.enter("svc.a", {}, false))).toBeNull();
    expect(g.applies("svc.other", false)).toBe(false);
  });

  it("protects the node: concurrency, rate and event-loop lag, for inbound calls only", () => {
    let lag = 0;
    const clock = new ManualClock();
    const g = engine(clock, undefined, () => lag);
    g.load({ ...none, system: [{ maxConcurrency: 2, qps: 3, maxEventLoopLagMs: 50 }] });
    expect(g.applies("GET /x", true)).toBe(true);
    expect(g.applies("svc.a", false)).toBe(false);
    const first = g.enter("GET /x", {}, true);
    g.enter("GET /y", {}, true);
    expect(refusal(() => g.enter("GET /z", {}, true))).toEqual({ status: 429, code: "SYSTEM_PROTECTED" });
    first.exit(false);
    g.enter("GET /x", {}, true).exit(false);
    expect(refusal(() => g.enter("GET /x", {}, true))?.code).toBe("SYSTEM_PROTECTED"); // fourth call this second
    clock.advance(1000);
    lag = 80;
    expect(refusal(() => g.enter("GET /x", {}, true))?.code).toBe("SYSTEM_PROTECTED");
    lag = 10;
    expect(refusal(() => g.enter("GET /x", {}, true))).toBeNull();
  });

  it("opens a breaker on failures and answers 503 until its probe succeeds", () => {
    const clock = new ManualClock();
    const g = engine(clock);
    g.load({ ...none, degrade: [DegradeRule.parse({ resource: "svc.b", grade: "ERROR_COUNT", count: 1, timeWindow: 2, minRequestAmount: 2 })] });
    for (let i = 0; i < 2; i++) g.enter("svc.b", {}, false).exit(true);
    expect(refusal(() => g.enter("svc.b", {}, false))).toEqual({ status: 503, code: "DEGRADED" });
    clock.advance(2000);
    g.enter("svc.b", {}, false).exit(false);
    expect(refusal(() => g.enter("svc.b", {}, false))).toBeNull();
  });

  it.runIf(engines.redis)("counts cluster-wide QPS across nodes through Redis", async () => {
    const clock = new ManualClock(Date.now());
    const prefix = `guard-test-${process.pid}-${Date.now()}:`;
    const [kvA, kvB] = [new RedisKv(engines.redis!, prefix), new RedisKv(engines.redis!, prefix)];
    const [a, b] = [engine(clock, kvA), engine(clock, kvB)];
    const rules = { ...none, flow: [FlowRule.parse({ resource: "svc.c", count: 3, clusterMode: true })] };
    a.load(rules);
    b.load(rules);
    const outcomes: (string | null)[] = [];
    for (const g of [a, b, a, b, a]) {
      const pass = g.enter("svc.c", {}, false);
      expect(g.needsCluster(pass)).toBe(true);
      outcomes.push(await g.cluster("svc.c", pass).then(() => null, (err: AppError) => err.type));
    }
    expect(outcomes).toEqual([null, null, null, "FLOW_LIMITED", "FLOW_LIMITED"]);
    await kvA.close();
    await kvB.close();
  });

  it("counts a cluster rule on the node itself when there is no Redis to share", () => {
    const g = engine();
    g.load({ ...none, flow: [FlowRule.parse({ resource: "svc.c", count: 2, clusterMode: true })] });
    const first = g.enter("svc.c", {}, false);
    expect(g.needsCluster(first)).toBe(false);
    g.enter("svc.c", {}, false);
    expect(refusal(() => g.enter("svc.c", {}, false))?.code).toBe("FLOW_LIMITED");
  });
});

/** A service whose action fails on demand and declares a degraded answer. */
let failing = false;
function flakyService(): ServiceSchema {
  return {
    name: "flaky",
    actions: {
      quote: {
        ...action(z.object({ item: z.string() }), async (ctx) => {
          if (failing) throw new AppError(500, "BROKEN", "down");
          return { item: ctx.params.item, price: 100 };
        }),
        degraded: (ctx: { params: { item: string } }) => ({ item: ctx.params.item, price: null, degraded: true }),
      },
    },
  };
}

describe("rules from the config centre, live", () => {
  let sys: TestSystem;
  let base: string;
  beforeAll(async () => {
    sys = await startTestSystem({ services: ["gateway", "identity", "config", "report"], extra: { flaky: flakyService } });
    base = `/api/platform/config/${sys.config.namespace}/guard`;
    await eventually(async () => (await sys.api.put(`${base}/flow-rules`, { value: [] }, sys.admin.token)).status === 200);
  });
  afterAll(() => sys?.stop());

  it("limits a gateway route as soon as the rule is written, with 429 and the rule's code, counted", async () => {
    const route = "/api/governance/policies";
    const put = await sys.api.put(`${base}/flow-rules`, { value: [{ resource: "GET /api/governance/policies", grade: "QPS", count: 2 }] }, sys.admin.token);
    expect(put.status).toBe(200);
    await eventually(async () => sys.node.platform.guard.applies("GET /api/governance/policies", true));
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await sys.api.get(route, sys.admin.token)).status);
    expect(statuses).toEqual([200, 200, 429]);
    expect((await sys.api.get(route, sys.admin.token)).body.error.code).toBe("FLOW_LIMITED");
    sys.clock.advance(1000);
    expect((await sys.api.get(route, sys.admin.token)).status).toBe(200);
    expect((await sys.api.get("/metrics")).body).toMatch(/bazaar_guard_blocked_total\{resource="GET \/api\/governance\/policies",rule="flow"\} 2/);
    await sys.api.put(`${base}/flow-rules`, { value: [] }, sys.admin.token);
    await eventually(async () => !sys.node.platform.guard.applies("GET /api/governance/policies", true));
  });

  it("refuses a malformed rule set, naming the field", async () => {
    const bad = await sys.api.put(`${base}/flow-rules`, { value: [{ resource: "x", grade: "QPS", count: -1 }] }, sys.admin.token);
    expect(bad.body.error).toMatchObject({ code: "CONFIG_VALUE_INVALID", field: "value.0.count" });
  });

  it("answers an action's degraded answer while its breaker is open, and limits hot parameters per value", async () => {
    await sys.api.put(
      `${base}/degrade-rules`,
      { value: [{ resource: "flaky.quote", grade: "ERROR_RATIO", count: 0.5, timeWindow: 10, minRequestAmount: 2 }] },
      sys.admin.token,
    );
    await eventually(async () => sys.node.platform.guard.applies("flaky.quote", false));
    failing = true;
    for (let i = 0; i < 2; i++) await expect(sys.call("flaky.quote", { item: "x" })).rejects.toMatchObject({ type: "BROKEN" });
    failing = false;
    expect(await sys.call("flaky.quote", { item: "x" })).toEqual({ item: "x", price: null, degraded: true });
    sys.clock.advance(10_000);
    expect(await sys.call("flaky.quote", { item: "x" })).toEqual({ item: "x", price: 100 });

    await sys.api.put(`${base}/param-rules`, { value: [{ resource: "flaky.quote", param: "params.item", count: 1 }] }, sys.admin.token);
    // Once the rule is live (the push takes a moment), a second call for one item in the same second is
    // degraded; the clock stands still, so it stays so. Another item is unaffected.
    await eventually(async () => (await sys.call("flaky.quote", { item: "hot" })).degraded === true);
    expect(await sys.call("flaky.quote", { item: "hot" })).toMatchObject({ degraded: true });
    expect(await sys.call("flaky.quote", { item: "cold" })).toEqual({ item: "cold", price: 100 });
  });
});
