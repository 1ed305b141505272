import pino from "pino";
import { describe, expect, it } from "vitest";
import { eventually } from "../../../test/support/harness";
import { ManualClock } from "../clock/clock";
import { MemoryKv } from "../kv/memory.kv";
import { ACTIVITY_BATCH, ActivityRecorder } from "./activity";

describe("activity recorder", () => {
  it("sends each user once per window, in batches, across gateways sharing a kv", async () => {
    const clock = new ManualClock();
    const kv = new MemoryKv(clock, "a:");
    const sent: number[][] = [];
    const ats: number[] = [];
    const send = async (ids: number[], at: number) => {
      sent.push(ids);
      ats.push(at);
    };
    const a = new ActivityRecorder(kv, clock, 60_000, send, pino({ level: "silent" }), 10_000);
    const b = new ActivityRecorder(kv, clock, 60_000, send, pino({ level: "silent" }), 10_000);
    for (let i = 1; i <= ACTIVITY_BATCH + 5; i++) {
      a.record(i);
      a.record(i);
      b.record(i);
    }
    await new Promise((r) => setImmediate(r));
    await a.flush();
    await b.flush();
    expect(sent.map((batch) => batch.length)).toEqual([ACTIVITY_BATCH, 5]);
    expect(new Set(sent.flat()).size).toBe(ACTIVITY_BATCH + 5);
    expect(ats[0] % 60_000).toBe(0);

    clock.advance(60_000);
    b.record(1);
    a.record(1);
    await new Promise((r) => setImmediate(r));
    await a.flush();
    await b.flush();
    expect(sent.slice(2)).toEqual([[1]]);
    expect(ats[2]).toBe(ats[0] + 60_000);
  });

  it("flushes on its own after a moment, and survives a failed send", async () => {
    const clock = new ManualClock();
    const sent: number[][] = [];
    let fail = true;
    let failed = 0;
    const recorder = new ActivityRecorder(
      new MemoryKv(clock, "b:"),
      clock,
      60_000,
      async (ids) => {
        if (fail) {
          failed++;
          throw new Error("identity down");
        }
        sent.push(ids);
      },
      pino({ level: "silent" }),
      5,
    );
    // Waited for by what happens, not for a fixed time: on a loaded machine a 5 ms timer can fire late.
    recorder.record(7);
    await eventually(async () => failed > 0);
    fail = false;
    recorder.record(8);
    await eventually(async () => sent.length > 0);
    expect(failed).toBe(1);
    expect(sent).toEqual([[8]]);
  });
});
