import { describe, expect, it } from "vitest";
import { CircuitBreaker, DegradeRule, FlowRule, ParamController, ParamRule, QpsController, RollingCounter, SystemRule } from "./guard.domain";

const T0 = 1_000_000_000_000;

describe("rolling counter", () => {
  it("sums what happened within the interval and forgets older buckets", () => {
    const c = new RollingCounter(1000, 10, 2);
    c.add(T0, 0, 3);
    c.add(T0 + 450, 0);
    c.add(T0 + 450, 1, 5);
    expect(c.sum(T0 + 500, 0)).toBe(4);
    expect(c.sum(T0 + 500, 1)).toBe(5);
    expect(c.sum(T0 + 1050, 0)).toBe(1);
    expect(c.sum(T0 + 2000, 0)).toBe(0);
    // A bucket reused a lap later starts from zero.
    c.add(T0 + 1000, 0);
    expect(c.sum(T0 + 1000, 0)).toBe(2);
    c.reset();
    expect(c.sum(T0 + 1000, 0)).toBe(0);
  });
});

describe("flow rules", () => {
  const flow = (rule: object) => FlowRule.parse({ resource: "r", ...rule });

  it("takes Sentinel-shaped rules with defaults, and refuses nonsense", () => {
    expect(flow({ count: 5 })).toMatchObject({ grade: "QPS", behavior: "REJECT", clusterMode: false, maxQueueingTimeMs: 500 });
    expect(FlowRule.safeParse({ resource: "r", count: 0 }).success).toBe(false);
    expect(FlowRule.safeParse({ resource: "r", count: 1, behavior: "LATER" }).success).toBe(false);
    expect(SystemRule.parse({ maxConcurrency: 3 })).toEqual({ maxConcurrency: 3 });
  });

  it("rejects past the count within a second, and lets calls through again the next second", () => {
    const q = new QpsController(flow({ count: 3 }));
    expect([q.admit(T0), q.admit(T0 + 10), q.admit(T0 + 20), q.admit(T0 + 30)]).toEqual([0, 0, 0, -1]);
    expect(q.admit(T0 + 1000)).toBe(0);
  });

  it("warms up: a cold resource starts at count/coldFactor and reaches count after the warm-up period", () => {
    const q = new QpsController(flow({ count: 30, behavior: "WARM_UP", warmUpPeriodSec: 10, coldFactor: 3 }));
    let passed = 0;
    for (let i = 0; i < 40; i++) if (q.admit(T0 + i) === 0) passed++;
    expect(passed).toBe(10);
    // Busy for the whole period: the limit climbs to the full count.
    for (let s = 1; s <= 10; s++) q.admit(T0 + s * 1000);
    expect(q.limit(T0 + 10_000)).toBe(30);
    passed = 0;
    for (let i = 0; i < 40; i++) if (q.admit(T0 + 10_500 + i) === 0) passed++;
    expect(passed).toBeGreaterThanOrEqual(28);
    // Idle for a period: cold again.
    expect(q.admit(T0 + 30_000)).toBe(0);
    expect(q.limit(T0 + 30_000)).toBe(10);
  });

  it("queues: spaces calls evenly and refuses one that would wait past the bound", () => {
    const q = new QpsController(flow({ count: 10, behavior: "QUEUE", maxQueueingTimeMs: 250 }));
    expect([q.admit(T0), q.admit(T0), q.admit(T0), q.admit(T0), q.admit(T0)]).toEqual([0, 100, 200, -1, -1]);
    expect(q.admit(T0 + 1000)).toBe(0);
  });
});

describe("circuit breakers", () => {
  const breaker = (rule: object) => new CircuitBreaker(DegradeRule.parse({ resource: "r", timeWindow: 5, minRequestAmount: 4, ...rule }));

  it("opens on the error ratio, probes once after the time window, closes on a good probe", () => {
    const b = breaker({ grade: "ERROR_RATIO", count: 0.5 });
    for (const failed of [false, true, true]) b.complete(T0, 1, failed);
    expect(b.state).toBe("CLOSED"); // three calls: under the minimum
    b.complete(T0, 1, true);
    expect(b.state).toBe("OPEN");
    expect(b.tryPass(T0 + 4_999)).toBe(false);
    expect(b.tryPass(T0 + 5_000)).toBe(true);
    expect(b.state).toBe("HALF_OPEN");
    expect(b.tryPass(T0 + 5_001)).toBe(false); // one probe at a time
    b.complete(T0 + 5_010, 1, false);
    expect(b.state).toBe("CLOSED");
    expect(b.tryPass(T0 + 5_020)).toBe(true);
  });

  it("opens again when the probe fails", () => {
    const b = breaker({ grade: "ERROR_COUNT", count: 2 });
    for (let i = 0; i < 3; i++) b.complete(T0, 1, true);
    expect(b.state).toBe("CLOSED"); // three calls, three errors: under the minimum of four
    b.complete(T0, 1, false);
    expect(b.state).toBe("OPEN");
    expect(b.tryPass(T0 + 5_000)).toBe(true);
    b.complete(T0 + 5_000, 1, true);
    expect(b.state).toBe("OPEN");
    expect(b.tryPass(T0 + 9_999)).toBe(false);
  });

  it("counts slow calls against the slow ratio, and a slow probe keeps it open", () => {
    const b = breaker({ grade: "SLOW_REQUEST_RATIO", count: 100, slowRatioThreshold: 0.5 });
    for (const rt of [50, 150, 200, 300]) b.complete(T0, rt, false);
    expect(b.state).toBe("OPEN");
    b.tryPass(T0 + 5_000);
    b.complete(T0 + 5_000, 500, false);
    expect(b.state).toBe("OPEN");
  });

  it("forgets calls older than its statistics interval", () => {
    const b = breaker({ grade: "ERROR_RATIO", count: 0.5, statIntervalMs: 1000 });
    for (let i = 0; i < 3; i++) b.complete(T0, 1, true);
    b.complete(T0 + 2000, 1, true);
    expect(b.state).toBe("CLOSED");
  });
});

describe("hot parameters", () => {
  const param = (rule: object, max?: number) => new ParamController(ParamRule.parse({ resource: "r", param: "meta.user.id", count: 2, ...rule }), max);

  it("limits each value on its own, with per-value exceptions", () => {
    const p = param({ items: [{ value: 7, count: 4 }] });
    const a = [p.admit("1", T0), p.admit("1", T0), p.admit("1", T0)];
    expect(a).toEqual([true, true, false]);
    expect(p.admit("2", T0)).toBe(true);
    expect([1, 2, 3, 4, 5].map(() => p.admit("7", T0))).toEqual([true, true, true, true, false]);
    expect(p.admit("1", T0 + 1000)).toBe(true);
  });

  it("finds the value by path and ignores calls without it", () => {
    const p = param({ param: "params.item.id" });
    expect(p.valueOf({ params: { item: { id: 42 } } })).toBe("42");
    expect(p.valueOf({ params: { item: null } })).toBeUndefined();
    expect(p.valueOf({ params: { item: { id: { x: 1 } } } })).toBeUndefined();
    expect(ParamRule.safeParse({ resource: "r", param: "user.id", count: 1 }).success).toBe(false);
  });

  it("stays bounded: past the value limit the oldest windows go", () => {
    const p = param({}, 2);
    p.admit("a", T0);
    p.admit("a", T0);
    p.admit("b", T0);
    p.admit("c", T0); // evicts a
    expect(p.admit("a", T0)).toBe(true);
  });
});
