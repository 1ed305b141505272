import { describe, expect, it } from "vitest";
import { currentLane, withLane } from "../release/lane";
import { batching } from "./batch";

/** A batch runner that records what it got (and in which lane) and answers each item doubled. */
function recorder() {
  const batches: { items: number[]; lane: string | undefined }[] = [];
  const run = async (items: number[]) => {
    batches.push({ items, lane: currentLane() });
    return items.map((i) => i * 2);
  };
  return { batches, run };
}

describe("batching", () => {
  it("runs the calls of one turn as one batch and answers each its own result", async () => {
    const { batches, run } = recorder();
    const call = batching(run, 10);
    expect(await Promise.all([call(1), call(2), call(3)])).toEqual([2, 4, 6]);
    expect(batches).toEqual([{ items: [1, 2, 3], lane: undefined }]);
    // A later turn is a batch of its own.
    expect(await call(4)).toBe(8);
    expect(batches).toHaveLength(2);
  });

  it("splits a turn's calls into batches of at most max", async () => {
    const { batches, run } = recorder();
    const call = batching(run, 2);
    expect(await Promise.all([1, 2, 3, 4, 5].map(call))).toEqual([2, 4, 6, 8, 10]);
    expect(batches.map((b) => b.items)).toEqual([[1, 2], [3, 4], [5]]);
  });

  it("fails only the calls of a batch whose run throws, or answers a wrong number of results", async () => {
    const call = batching(async (items: number[]) => {
      if (items.includes(3)) throw new Error("three refused");
      return items.length === 1 ? [] : items;
    }, 2);
    const results = await Promise.allSettled([call(1), call(2), call(3), call(4), call(5)]);
    expect(results.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as Error).message))).toEqual([1, 2, "three refused", "three refused", "a batch of 1 answered 0 results"]);
  });

  it("keeps release lanes apart, each batch running in its lane", async () => {
    const { batches, run } = recorder();
    const call = batching(run, 10);
    await Promise.all([withLane("canary", () => call(1)), call(2), withLane("canary", () => call(3))]);
    expect(batches).toEqual([
      { items: [1, 3], lane: "canary" },
      { items: [2], lane: undefined },
    ]);
  });
});
