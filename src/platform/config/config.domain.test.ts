import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { diff, parseTags, promote, publish, versionFor } from "./config.domain";

describe("which version a node runs", () => {
  const empty = { releasedVersion: null, grayVersion: null, grayTags: [] };

  it("gives nothing before the first release, the released version after it", () => {
    expect(versionFor(empty, ["canary"])).toBeNull();
    expect(versionFor(publish(empty, 1, { kind: "release" }), [])).toEqual({ version: 1, gray: false });
  });

  it("gives a gray version only to nodes carrying one of its tags; a release ends the gray", () => {
    const released = publish(empty, 1, { kind: "release" });
    const gray = publish(released, 2, { kind: "gray", tags: ["canary", "zone-b", "canary"] });
    expect(gray.grayTags).toEqual(["canary", "zone-b"]);
    expect(versionFor(gray, ["zone-a", "canary"])).toEqual({ version: 2, gray: true });
    expect(versionFor(gray, ["zone-a"])).toEqual({ version: 1, gray: false });
    expect(versionFor(publish(empty, 1, { kind: "gray", tags: ["canary"] }), [])).toBeNull();
    expect(publish(gray, 3, { kind: "release" })).toEqual({ releasedVersion: 3, grayVersion: null, grayTags: [] });
  });

  it("promotes the gray version to everyone, and has nothing to promote without one", () => {
    const gray = publish(publish(empty, 1, { kind: "release" }), 2, { kind: "gray", tags: ["canary"] });
    expect(promote(gray)).toEqual({ releasedVersion: 2, grayVersion: null, grayTags: [] });
    expect(promote(empty)).toBeNull();
  });
});

describe("diff", () => {
  it("names each changed leaf by its path", () => {
    expect(diff({ a: 1, b: { c: [1, 2] }, d: "x" }, { a: 2, b: { c: [1, 3, 4] }, e: true })).toEqual([
      { path: "$.a", from: 1, to: 2 },
      { path: "$.b.c[1]", from: 2, to: 3 },
      { path: "$.b.c[2]", to: 4 },
      { path: "$.d", from: "x" },
      { path: "$.e", to: true },
    ]);
    expect(diff([1, 2], [1])).toEqual([{ path: "$[1]", from: 2 }]);
    expect(diff(undefined, { a: 1 })).toEqual([{ path: "$", to: { a: 1 } }]);
    expect(diff({ a: 1 }, undefined)).toEqual([{ path: "$", from: { a: 1 } }]);
    expect(diff({ a: 1 }, [1])).toEqual([{ path: "$", from: { a: 1 }, to: [1] }]);
  });

  it("finds no change between equal values and some between different ones", () => {
    const json = fc.jsonValue();
    fc.assert(fc.property(json, (v) => diff(v, structuredClone(v)).length === 0));
    fc.assert(fc.property(json, json, (a, b) => JSON.stringify(a) === JSON.stringify(b) || diff(a, b).length > 0));
  });
});

describe("node tags", () => {
  it("splits, trims, drops empties and duplicates", () => {
    expect(parseTags(" canary, zone-a,,canary ")).toEqual(["canary", "zone-a"]);
    expect(parseTags(undefined)).toEqual([]);
  });
});
