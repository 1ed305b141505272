/**
 * A loop's wait that can be cut short: `for(ms)` resolves after `ms`, or at once when `wake()` is
 * called meanwhile (work arrived, or the loop is stopping). One wait at a time; a wake with no wait
 * pending does nothing.
 */
export class Pause {
  private cut?: () => void;

  for(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.cut = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.cut = done;
    });
  }

  wake(): void {
    this.cut?.();
  }
}
