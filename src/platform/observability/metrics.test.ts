import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { HotCounter, HotHistogram } from "./metrics";

describe("hot-path metrics, read by the registry at scrape time", () => {
  it("exposes a counter per label set, labels in their declared order", async () => {
    const registry = new Registry();
    const c = new HotCounter(registry, "t_requests_total", "requests", ["method", "status"]);
    c.labels("GET", 200).inc();
    c.labels("GET", 200).inc(2);
    c.labels("POST", 409).inc();
    // A value given as a number or as its string is one label set, not two series.
    expect(c.labels("POST", "409")).toBe(c.labels("POST", 409));
    const text = await registry.metrics();
    expect(text).toContain("# TYPE t_requests_total counter");
    expect(text).toContain('t_requests_total{method="GET",status="200"} 3');
    expect(text).toContain('t_requests_total{method="POST",status="409"} 1');
  });

  it("exposes a histogram's cumulative buckets, +Inf, sum and count", async () => {
    const registry = new Registry();
    const h = new HotHistogram(registry, "t_seconds", "latency", ["route"], [0.01, 0.1, 1]);
    const child = h.labels("/a");
    for (const v of [0.005, 0.01, 0.05, 0.5, 3]) child.observe(v);
    const text = await registry.metrics();
    expect(text).toContain("# TYPE t_seconds histogram");
    expect(text).toContain('t_seconds_bucket{route="/a",le="0.01"} 2');
    expect(text).toContain('t_seconds_bucket{route="/a",le="0.1"} 3');
    expect(text).toContain('t_seconds_bucket{route="/a",le="1"} 4');
    expect(text).toContain('t_seconds_bucket{route="/a",le="+Inf"} 5');
    expect(text).toContain('t_seconds_count{route="/a"} 5');
    expect(Number(/t_seconds_sum\{route="\/a"\} (\S+)/.exec(text)?.[1])).toBeCloseTo(3.565, 9);
  });

  it("starts over on reset, children held by callers included, and refuses a second metric of the same name", async () => {
    const registry = new Registry();
    const c = new HotCounter(registry, "t_total", "t", ["k"]);
    const held = c.labels("x");
    held.inc(5);
    const h = new HotHistogram(registry, "t_h", "t", ["k"], [1]);
    h.labels("x").observe(0.5);
    registry.resetMetrics();
    held.inc();
    const text = await registry.metrics();
    expect(text).toContain('t_total{k="x"} 1');
    expect(text).toContain('t_h_count{k="x"} 0');
    expect(text).toContain('t_h_sum{k="x"} 0');
    expect(() => new HotCounter(registry, "t_total", "t", ["k"])).toThrow(/already been registered/);
  });
});
