/** Time is a port so deadlines, expiry and rate windows are testable without sleeping. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock tests move by hand. */
export class ManualClock implements Clock {
  constructor(private current = Date.UTC(2026, 0, 1)) {}
  now(): number {
    return this.current;
  }
  advance(ms: number): void {
    this.current += ms;
  }
}

/** Instants travel as epoch milliseconds inside, and as ISO-8601 in API answers. */
export function iso(ms: number): string {
  return new Date(Number(ms)).toISOString();
}
