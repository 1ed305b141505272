import { afterEach, describe, expect, it, vi } from "vitest";
import { Pause } from "./pause";

afterEach(() => vi.useRealTimers());

describe("pause", () => {
  it("ends after its time, or at once when woken; a wake with nothing waiting is lost", async () => {
    vi.useFakeTimers();
    const pause = new Pause();
    pause.wake();
    let ended = false;
    void pause.for(1000).then(() => (ended = true));
    await vi.advanceTimersByTimeAsync(999);
    expect(ended).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(ended).toBe(true);

    ended = false;
    void pause.for(60_000).then(() => (ended = true));
    pause.wake();
    await vi.advanceTimersByTimeAsync(0);
    expect(ended).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });
});
