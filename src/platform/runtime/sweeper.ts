import type { Logger } from "pino";

/**
 * A periodic job that never overlaps itself (a service's sweep over what time moves): it runs every
 * `intervalMs`; `soon()` asks for a run without waiting; `now()` waits for a run in progress, then
 * runs and answers its result (operators' and tests' "run it once now").
 */
export class Sweeper<R> {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;

  constructor(
    private readonly job: () => Promise<R>,
    private readonly intervalMs: number,
    private readonly logger: Logger,
    private readonly what: string,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.background(), this.intervalMs);
    this.timer.unref();
    this.background();
  }

  soon(): void {
    if (!this.running) setImmediate(() => this.background());
  }

  async now(): Promise<R> {
    while (this.running) await this.running;
    const run = this.job();
    this.running = run.finally(() => {
      this.running = undefined;
    });
    return run;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    while (this.running) await this.running;
  }

  private background(): void {
    if (this.running) return;
    this.running = this.job()
      .catch((err) => this.logger.error({ err }, `${this.what} failed`))
      .finally(() => {
        this.running = undefined;
      });
  }
}
