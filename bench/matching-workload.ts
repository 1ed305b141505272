/**
 * The deterministic matching workload of `../shared/bench/matching-workload.md`: a command stream any
 * correct price-time-priority engine processes identically. The stream depends on the book (cancels
 * pick from the orders resting), so it is generated while an engine runs it: `run` drives any engine
 * through the `Venue` interface and keeps the `live` list from the venue's own events.
 */

export type Profile = "brief" | "banded";

export const MID = 10_000;
export const HALF = 50;
export const BAND = 20;

/** What the generator needs from an engine: commands in, and word of orders resting and leaving. */
export interface Venue {
  limit(id: number, side: 0 | 1, price: number, qty: number): void;
  market(id: number, side: 0 | 1, qty: number): void;
  cancel(id: number): void;
}

export function mulberry32(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/**
 * The `live` list of the specification: ids of resting orders, appended when one rests, swap-removed
 * when one leaves. An engine's sink calls `rested` and `left`.
 */
export class LiveOrders {
  private ids: Int32Array = new Int32Array(1 << 16);
  /** Position in `ids` plus one, by order id (ids are the dense command numbers), 0 when not live. */
  private position: Int32Array = new Int32Array(1 << 20);
  count = 0;

  rested(id: number): void {
    if (this.count === this.ids.length) this.ids = grown(this.ids, this.ids.length * 2);
    if (id >= this.position.length) this.position = grown(this.position, Math.max(id + 1, this.position.length * 2));
    this.position[id] = this.count + 1;
    this.ids[this.count++] = id;
  }

  left(id: number): void {
    const p = id < this.position.length ? this.position[id] : 0;
    if (p === 0) return;
    this.position[id] = 0;
    const last = this.ids[--this.count];
    if (p - 1 !== this.count) {
      this.ids[p - 1] = last;
      this.position[last] = p;
    }
  }

  at(i: number): number {
    return this.ids[i];
  }
}

function grown(a: Int32Array, size: number): Int32Array {
  const next = new Int32Array(size);
  next.set(a);
  return next;
}

/** Runs `commands` commands of the profile against `venue`, whose events keep `live` current. */
export function run(venue: Venue, live: LiveOrders, profile: Profile, commands: number, seed = 42): void {
  const next = mulberry32(seed);
  for (let i = 0; i < commands; i++) {
    let r = next() % 100;
    if (r >= 80 && live.count === 0) r = 0;
    if (r < 70) {
      const side = (next() % 2) as 0 | 1;
      let price: number;
      if (profile === "brief") price = MID - HALF + (next() % 101);
      else {
        const d = next() % 51;
        price = side === 0 ? MID + BAND - d : MID - BAND + d;
      }
      const qty = 1 + (next() % 100);
      venue.limit(i + 1, side, price, qty);
    } else if (r < 80) {
      const side = (next() % 2) as 0 | 1;
      const qty = 1 + (next() % 100);
      venue.market(i + 1, side, qty);
    } else {
      venue.cancel(live.at(next() % live.count));
    }
  }
}

/** FNV-1a, 32-bit, fed 32-bit integers one at a time (each as four little-endian bytes). */
export class Fnv1a {
  value = 0x811c9dc5;

  add(n: number): void {
    let h = this.value;
    for (let shift = 0; shift < 32; shift += 8) {
      h ^= (n >>> shift) & 0xff;
      h = Math.imul(h, 0x01000193);
    }
    this.value = h >>> 0;
  }

  hex(): string {
    return this.value.toString(16).padStart(8, "0");
  }
}
