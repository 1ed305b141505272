import { describe, expect, it } from "vitest";
import { BUSY_ABOVE, hostBusyBetween, hostCpuTicks, paceFor, pacer, processBusy, SHARE_WHEN_BUSY } from "./pace";

describe("paced consumers yield to live work", () => {
  it("keep the configured rate while the process has room", () => {
    expect(paceFor(300, 0)).toBe(300);
    expect(paceFor(300, BUSY_ABOVE)).toBe(300);
  });

  it("keep a tenth of it while the process is saturated, never below one a second", () => {
    expect(paceFor(300, 0.95)).toBe(300 * SHARE_WHEN_BUSY);
    expect(paceFor(5, 1)).toBe(1);
    expect(paceFor(0, 0)).toBe(1);
  });

  it("measure the process's busyness as a share of time", async () => {
    processBusy();
    const until = Date.now() + 300;
    while (Date.now() < until);
    const busy = processBusy();
    expect(busy).toBeGreaterThan(BUSY_ABOVE);
    expect(busy).toBeLessThanOrEqual(1);
  });

  it("space messages by the pace for the busyness it is told", async () => {
    let busy = 0;
    const pace = pacer(() => 20, () => busy);
    const started = performance.now();
    for (let i = 0; i < 3; i++) await pace();
    // Three at 20/s: the third waits ~100 ms.
    expect(performance.now() - started).toBeGreaterThanOrEqual(90);
    busy = 1;
    const slowed = performance.now();
    await pace();
    await pace();
    // At 2/s the gap after the first slow one is ~500 ms.
    expect(performance.now() - slowed).toBeGreaterThanOrEqual(450);
  });
});

describe("the host's busyness", () => {
  it("is read from the CPU counters where the host has them, as a share of the time that passed", () => {
    const now = hostCpuTicks();
    if (now) {
      expect(now.total).toBeGreaterThan(0);
      expect(now.busy).toBeLessThanOrEqual(now.total);
    }
    expect(hostBusyBetween({ busy: 100, total: 1_000 }, { busy: 190, total: 1_100 })).toBeCloseTo(0.9);
    expect(hostBusyBetween({ busy: 100, total: 1_000 }, { busy: 100, total: 1_000 })).toBe(0);
    expect(hostBusyBetween(undefined, { busy: 1, total: 2 })).toBe(0);
  });
});
