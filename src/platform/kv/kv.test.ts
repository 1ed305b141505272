import { describe, expect, it } from "vitest";
import { engines } from "../../../test/support/harness";
import { ManualClock } from "../clock/clock";
import type { Kv, KvScript } from "./kv";
import { MemoryKv } from "./memory.kv";
import { RedisKv } from "./redis.kv";

/** Takes one ticket while fewer than ARGV[1] are out, remembering the holder (ARGV[2]) in a hash. */
const takeTicket: KvScript = {
  name: "test_take_ticket",
  lua: `
if redis.call('HGET', KEYS[2], ARGV[2]) then return {'HELD'} end
local out = tonumber(redis.call('GET', KEYS[1]) or '0')
if out >= tonumber(ARGV[1]) then return {'FULL', out} end
redis.call('HSET', KEYS[2], ARGV[2], '1')
return {'TAKEN', redis.call('INCRBY', KEYS[1], 1)}`,
  embedded(ops, keys, args) {
    if (ops.hget(keys[1], args[1]) !== null) return ["HELD"];
    const out = Number(ops.get(keys[0]) ?? "0");
    if (out >= Number(args[0])) return ["FULL", String(out)];
    ops.hset(keys[1], args[1], "1");
    return ["TAKEN", String(ops.incrBy(keys[0], 1))];
  },
};

/** Refuses a negative amount with an error of the script's own; adds the rest. */
const addPositive: KvScript = {
  name: "test_add_positive",
  lua: `
if tonumber(ARGV[1]) < 0 then return redis.error_reply('NEGATIVE') end
return {tostring(redis.call('INCRBY', KEYS[1], ARGV[1]))}`,
  embedded(ops, keys, args) {
    if (Number(args[0]) < 0) throw new Error("NEGATIVE");
    return [String(ops.incrBy(keys[0], Number(args[0])))];
  },
};

/** One contract, both adapters: the embedded kv must behave like Redis. */
function contract(name: string, make: () => { kv: Kv; advance: (ms: number) => Promise<void> }) {
  describe(`kv contract: ${name}`, () => {
    it("gets, sets, deletes, and expires keys", async () => {
      const { kv, advance } = make();
      expect(await kv.get("a")).toBeNull();
      await kv.set("a", "1");
      await kv.set("b", "2", 50);
      expect(await kv.get("a")).toBe("1");
      expect(await kv.get("b")).toBe("2");
      await advance(80);
      expect(await kv.get("b")).toBeNull();
      await kv.del("a");
      expect(await kv.get("a")).toBeNull();
      await kv.close();
    });
    it("sets only when absent, until the key expires", async () => {
      const { kv, advance } = make();
      expect(await kv.setNX("n", "x", 50)).toBe(true);
      expect(await kv.setNX("n", "y", 50)).toBe(false);
      expect(await kv.get("n")).toBe("x");
      await advance(80);
      expect(await kv.setNX("n", "z", 50)).toBe(true);
      await kv.close();
    });
    it("increments atomically, with the TTL set on creation only", async () => {
      const { kv, advance } = make();
      const results = await Promise.all(Array.from({ length: 50 }, () => kv.incrBy("c", 2, 60)));
      expect(Math.max(...results)).toBe(100);
      expect(new Set(results).size).toBe(50);
      await advance(30);
      expect(await kv.incrBy("c", 1, 60)).toBe(101);
      await advance(50);
      expect(await kv.incrBy("c", 1)).toBe(1);
      await kv.close();
    });
    it("runs a script atomically under concurrency, with the same answers on both adapters", async () => {
      const { kv } = make();
      const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => kv.run(takeTicket, ["out", "holders"], [25, `u${i % 30}`])));
      const taken = answers.filter((a) => a[0] === "TAKEN");
      expect(taken).toHaveLength(25);
      expect(new Set(taken.map((a) => a[1]))).toEqual(new Set(Array.from({ length: 25 }, (_, i) => String(i + 1))));
      expect(answers.filter((a) => a[0] === "HELD").length + answers.filter((a) => a[0] === "FULL").length).toBe(15);
      expect(Object.keys(await kv.hgetall("holders"))).toHaveLength(25);
      expect(await kv.hgetall("nobody")).toEqual({});
      expect(await kv.hget("holders", "u1")).toBe("1");
      expect(await kv.hget("holders", "nobody")).toBeNull();
      await kv.close();
    });

    it("answers each script of a burst on its own: one that fails does not fail the others", async () => {
      const { kv } = make();
      const outcomes = await Promise.allSettled([1, 2, -5, 3, 4].map((n) => kv.run(addPositive, ["sum"], [n])));
      expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled", "fulfilled"]);
      expect(String((outcomes[2] as PromiseRejectedResult).reason)).toContain("NEGATIVE");
      expect(outcomes.filter((o) => o.status === "fulfilled").map((o) => (o as PromiseFulfilledResult<string[]>).value[0])).toEqual(["1", "3", "6", "10"]);
      expect(await kv.get("sum")).toBe("10");
      await kv.close();
    });
  });
}

contract("memory", () => {
  const clock = new ManualClock();
  return { kv: new MemoryKv(clock, "p:"), advance: async (ms) => clock.advance(ms) };
});

if (engines.redis) {
  contract("redis", () => ({
    kv: new RedisKv(engines.redis!, `kvtest:${Math.random().toString(36).slice(2)}:`),
    advance: (ms) => new Promise((r) => setTimeout(r, ms)),
  }));
}

describe("memory kv housekeeping", () => {
  it("keeps namespaces apart and sweeps expired keys as it writes", async () => {
    const clock = new ManualClock();
    const a = new MemoryKv(clock, "a:");
    const b = new MemoryKv(clock, "b:");
    await a.set("k", "1");
    expect(await b.get("k")).toBeNull();
    for (let i = 0; i < 10_000; i++) await a.set(`t${i}`, "v", 1);
    clock.advance(2);
    for (let i = 0; i < 10_000; i++) await a.set(`u${i}`, "v", 1);
    expect((a as unknown as { entries: Map<string, unknown> }).entries.size).toBeLessThan(20_000);
  });
});
