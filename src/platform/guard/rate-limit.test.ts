import { describe, expect, it } from "vitest";
import { engines } from "../../../test/support/harness";
import { ManualClock } from "../clock/clock";
import type { Kv } from "../kv/kv";
import { MemoryKv } from "../kv/memory.kv";
import { RedisKv } from "../kv/redis.kv";
import { leaseFor, RateLimit } from "./rate-limit";

/** Calls admitted out of `calls`, taken round-robin from the limiters (nodes). */
async function admitted(limiters: RateLimit[], calls: number): Promise<number> {
  let ok = 0;
  for (let i = 0; i < calls; i++) {
    try {
      await limiters[i % limiters.length].consume("tenant-1");
      ok++;
    } catch (err) {
      expect((err as { type: string }).type).toBe("LIMITED");
    }
  }
  return ok;
}

describe("leased rate limits", () => {
  it("lease about 1 % of the limit, at least one point", () => {
    expect(leaseFor(1)).toBe(1);
    expect(leaseFor(250)).toBe(2);
    expect(leaseFor(1_000_000)).toBe(10_000);
  });

  it("admit exactly the limit in a window, spending leases locally, and the remainder of a lease that ran past it", async () => {
    const kv: Kv = new MemoryKv(new ManualClock(), "rl-test:");
    // 95 points in leases of 10: nine whole leases, then 5 of the tenth.
    const limit = new RateLimit(kv, { name: "leased", points: 95, durationSeconds: 60, lease: 10 }, "LIMITED");
    expect(await admitted([limit], 120)).toBe(95);
    await limit.reset("tenant-1");
    expect(await admitted([limit], 3)).toBe(3);
  });

  it("take one lease at a time: concurrent callers wait for it instead of each taking their own", async () => {
    const kv: Kv = new MemoryKv(new ManualClock(), "rl-test:");
    const limit = new RateLimit(kv, { name: "burst", points: 1_000, durationSeconds: 60, lease: 100 }, "LIMITED");
    const outcomes = await Promise.allSettled(Array.from({ length: 500 }, () => limit.consume("tenant-1")));
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(500);
    expect(await admitted([limit], 600)).toBe(500);
  });

  it.runIf(engines.redis)("share one limit between nodes through Redis: never more than it, whoever takes the leases", async () => {
    const prefix = `rl-test-${process.pid}-${Date.now()}:`;
    const kvs = [new RedisKv(engines.redis!, prefix), new RedisKv(engines.redis!, prefix), new RedisKv(engines.redis!, prefix)];
    const nodes = kvs.map((kv) => new RateLimit(kv, { name: "shared", points: 100, durationSeconds: 60, lease: 7 }, "LIMITED"));
    expect(await admitted(nodes, 200)).toBe(100);
    for (const kv of kvs) await kv.close();
  });
});
