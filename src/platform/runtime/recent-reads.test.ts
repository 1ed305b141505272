import { describe, expect, it } from "vitest";
import { ManualClock } from "../clock/clock";
import { RecentReads } from "./recent-reads";

describe("recent reads", () => {
  it("answer from memory while recent, read again once stale or dropped, and keep nothing not found", async () => {
    const clock = new ManualClock();
    const reads = new RecentReads<string, number>(clock, 1000);
    const stored = new Map([["a", 1]]);
    let calls = 0;
    const get = (key: string) => reads.get(key, async () => (calls++, stored.get(key)));
    expect(await get("a")).toBe(1);
    stored.set("a", 2);
    clock.advance(999);
    expect([await get("a"), calls]).toEqual([1, 1]);
    clock.advance(1);
    expect([await get("a"), calls]).toEqual([2, 2]);
    stored.set("a", 3);
    reads.drop("a");
    expect([await get("a"), calls]).toEqual([3, 3]);
    expect([await get("missing"), await get("missing"), calls]).toEqual([undefined, undefined, 5]);
  });
});
