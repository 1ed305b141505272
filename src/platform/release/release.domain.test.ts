import { describe, expect, it } from "vitest";
import { cookieValue, eligible, laneFor, laneToCarry, type NodeFacts, pickWeighted, Routing, userBucket } from "./release.domain";

const request = (headers: Record<string, string> = {}, cookies: Record<string, string> = {}, userId?: number) => ({
  header: (n: string) => headers[n],
  cookie: (n: string) => cookies[n],
  userId,
});

describe("lanes", () => {
  const routing = Routing.parse({
    stable: "1",
    rules: [
      { header: "X-Bazaar-Canary", equals: "1", lane: "2" },
      { cookie: "canary", equals: "yes", lane: "2" },
      { userPercent: 10, lane: "3" },
      { weights: { "1": 3, "4": 1 } },
    ],
  });

  it("takes the first rule that matches: header (case-insensitive name), cookie, user share, then weights", () => {
    expect(laneFor(routing, request({ "x-bazaar-canary": "1" }), () => 0.99)).toBe("2");
    expect(laneFor(routing, request({}, { canary: "yes" }), () => 0.99)).toBe("2");
    const inShare = Array.from({ length: 1000 }, (_, i) => i).find((id) => userBucket(id) < 10)!;
    expect(laneFor(routing, request({}, {}, inShare), () => 0.99)).toBe("3");
    expect(laneFor(routing, request(), () => 0.1)).toBe("1");
    expect(laneFor(routing, request(), () => 0.8)).toBe("4");
  });

  it("falls back to the stable lane, or none", () => {
    expect(laneFor(Routing.parse({ stable: "1" }), request(), Math.random)).toBe("1");
    expect(laneFor(Routing.parse({}), request(), Math.random)).toBeUndefined();
    expect(Routing.safeParse({ rules: [{ weights: { "1": 0 } }] }).success).toBe(false);
  });

  it("puts a user in the same bucket every time, and a tenth of users under 10", () => {
    expect(userBucket(42)).toBe(userBucket(42));
    const under = Array.from({ length: 10_000 }, (_, i) => i + 1).filter((id) => userBucket(id) < 10).length;
    expect(under).toBeGreaterThan(850);
    expect(under).toBeLessThan(1150);
  });

  it("draws weighted lanes in proportion", () => {
    const counts: Record<string, number> = { a: 0, b: 0 };
    for (let i = 0; i < 1000; i++) counts[pickWeighted({ a: 1, b: 3, c: 0 }, i / 1000)]++;
    expect(counts).toEqual({ a: 250, b: 750 });
    expect(pickWeighted({ a: 1 }, 0.999999)).toBe("a");
  });

  it("reads cookies", () => {
    expect(cookieValue("a=1; canary=yes%21; b", "canary")).toBe("yes!");
    expect(cookieValue(undefined, "canary")).toBeUndefined();
    expect(cookieValue("a=1", "canary")).toBeUndefined();
  });
});

describe("eligible endpoints", () => {
  const nodes: Record<string, NodeFacts> = {
    a: { version: "1", colour: "blue" },
    b: { version: "2", colour: "green" },
    c: { version: "1", colour: "green", drained: true },
  };
  const pick = (lane: string | undefined, routing: object, ids = ["a", "b", "c"]) => eligible(ids, (id) => nodes[id], lane, Routing.parse(routing));

  it("skips drained nodes unless every one is drained", () => {
    expect(pick(undefined, {})).toEqual(["a", "b"]);
    expect(pick(undefined, {}, ["c"])).toEqual(["c"]);
  });

  it("serves from the live colour, the lane, then the stable lane, each only while someone is left", () => {
    expect(pick(undefined, { colour: "green" })).toEqual(["b"]);
    expect(pick(undefined, { colour: "purple" })).toEqual(["a", "b"]);
    expect(pick("2", {})).toEqual(["b"]);
    expect(pick("9", { stable: "1" })).toEqual(["a"]);
    expect(pick("9", {})).toEqual(["a", "b"]);
    expect(pick("1", { colour: "green" })).toEqual(["b"]);
  });
});

describe("the lane a request carries", () => {
  const routing = { stable: "1", rules: [] };
  it("is the decided lane only when it is not the stable one and some node serves it", () => {
    expect(laneToCarry("2", routing, new Set(["1", "2"]))).toBe("2");
    expect(laneToCarry("1", routing, new Set(["1", "2"]))).toBeUndefined();
    expect(laneToCarry("2", routing, new Set(["1"]))).toBeUndefined();
    expect(laneToCarry(undefined, routing, new Set(["1", "2"]))).toBeUndefined();
    expect(laneToCarry("2", { rules: [] }, new Set(["2"]))).toBe("2");
  });
});
