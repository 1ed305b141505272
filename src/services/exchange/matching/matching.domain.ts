/**
 * The matching engine of one symbol: an in-memory order book with price-time priority, pure and
 * deterministic — the same commands always give the same events and the same book.
 *
 * Shaped for a hot path that allocates nothing per order: orders and price levels live in typed
 * arrays (struct of arrays) reused through free lists; each level holds an intrusive FIFO of its
 * orders; each side keeps its levels sorted by price with the best at the end, so taking from the
 * top is a pop. Events go to a sink as plain numbers, never as objects.
 */

export const BUY = 0;
export const SELL = 1;
export type Side = typeof BUY | typeof SELL;

export const LIMIT = 0;
export const MARKET = 1;
export type OrderType = typeof LIMIT | typeof MARKET;

export const GTC = 0;
export const IOC = 1;
export const FOK = 2;
export const POST_ONLY = 3;
export type TimeInForce = typeof GTC | typeof IOC | typeof FOK | typeof POST_ONLY;

/** Why an order left without resting, or a resting order left the book. */
export const FILLED = 0;
/** A market or IOC remainder, or an unfilled FOK: nothing more could be matched. */
export const EXPIRED = 1;
export const CANCELLED = 2;
/** Self-trade prevention: the resting order of the same account was cancelled by the taker. */
export const SELF_TRADE = 3;
/** A post-only order that would have taken liquidity. */
export const WOULD_TAKE = 4;
export const DUPLICATE_ID = 5;
export const UNKNOWN_ORDER = 6;
export type EndReason = number;

/** Where the engine's events go, as numbers. Every order ends in exactly one `ended` unless it rests. */
export interface MatchSink {
  /** A fill: the taker met a resting maker at the maker's price. */
  trade(takerId: number, makerId: number, price: number, qty: number, takerSide: Side, makerRemaining: number): void;
  /** What is left of a limit order rests on the book. */
  rested(id: number, side: Side, price: number, remaining: number): void;
  /** An order is done: filled, expired, cancelled (resting or not), or rejected. */
  ended(id: number, reason: EndReason, remaining: number): void;
}

const NONE = -1;

export class OrderBook {
  // Orders, by slot.
  private oid: Float64Array;
  private oAccount: Float64Array;
  private oRemaining: Float64Array;
  private oNext: Int32Array;
  private oPrev: Int32Array;
  private oLevel: Int32Array;
  private freeOrder = NONE;
  private orderCount = 0;
  private readonly slotOf = new IntMap();

  // Price levels, by slot.
  private lPrice: Float64Array;
  private lSide: Uint8Array;
  private lHead: Int32Array;
  private lTail: Int32Array;
  private lVolume: Float64Array;
  private freeLevel = NONE;
  private levelCount = 0;
  private readonly levelAt: [IntMap, IntMap] = [new IntMap(64), new IntMap(64)];
  /** Level slots per side, sorted so the best price is last: bids ascending, asks descending. */
  private sorted: [Int32Array, Int32Array];
  private depth: [number, number] = [0, 0];

  constructor(
    private readonly sink: MatchSink,
    capacity = 1024,
  ) {
    this.oid = new Float64Array(capacity);
    this.oAccount = new Float64Array(capacity);
    this.oRemaining = new Float64Array(capacity);
    this.oNext = new Int32Array(capacity);
    this.oPrev = new Int32Array(capacity);
    this.oLevel = new Int32Array(capacity);
    this.lPrice = new Float64Array(64);
    this.lSide = new Uint8Array(64);
    this.lHead = new Int32Array(64);
    this.lTail = new Int32Array(64);
    this.lVolume = new Float64Array(64);
    this.sorted = [new Int32Array(64), new Int32Array(64)];
  }

  /** Orders resting on the book. */
  get size(): number {
    return this.slotOf.size;
  }

  has(id: number): boolean {
    return this.slotOf.get(id) !== NONE;
  }

  /**
   * A new order. `price` is ignored for MARKET. A taker never trades with a resting order of its own
   * account: that resting order is cancelled (SELF_TRADE) and matching goes on.
   */
  place(id: number, account: number, side: Side, type: OrderType, tif: TimeInForce, price: number, qty: number): void {
    if (this.slotOf.get(id) !== NONE) {
      this.sink.ended(id, DUPLICATE_ID, qty);
      return;
    }
    const opposite = (1 - side) as Side;
    const limit = type === MARKET ? (side === BUY ? Infinity : -Infinity) : price;
    if (tif === POST_ONLY && this.crosses(side, limit)) {
      this.sink.ended(id, WOULD_TAKE, qty);
      return;
    }
    if (tif === FOK && this.fillable(side, account, limit, qty) < qty) {
      this.sink.ended(id, EXPIRED, qty);
      return;
    }
    let remaining = qty;
    const sorted = this.sorted[opposite];
    while (remaining > 0 && this.depth[opposite] > 0) {
      const level = sorted[this.depth[opposite] - 1];
      const levelPrice = this.lPrice[level];
      if (side === BUY ? levelPrice > limit : levelPrice < limit) break;
      let maker = this.lHead[level];
      while (maker !== NONE && remaining > 0) {
        const next = this.oNext[maker];
        const makerId = this.oid[maker];
        if (this.oAccount[maker] === account) {
          const left = this.oRemaining[maker];
          this.unlink(maker);
          this.sink.ended(makerId, SELF_TRADE, left);
        } else {
          const makerLeft = this.oRemaining[maker];
          const fill = makerLeft < remaining ? makerLeft : remaining;
          remaining -= fill;
          this.oRemaining[maker] = makerLeft - fill;
          this.lVolume[level] -= fill;
          this.sink.trade(id, makerId, levelPrice, fill, side, makerLeft - fill);
          if (makerLeft === fill) {
            this.unlink(maker);
            this.sink.ended(makerId, FILLED, 0);
          }
        }
        maker = next;
      }
    }
    if (remaining === 0) this.sink.ended(id, FILLED, 0);
    else if (type === MARKET || tif === IOC || tif === FOK) this.sink.ended(id, EXPIRED, remaining);
    else this.rest(id, account, side, price, remaining);
  }

  /** Takes a resting order off the book; an id not resting ends as UNKNOWN_ORDER. */
  cancel(id: number): void {
    const slot = this.slotOf.get(id);
    if (slot === NONE) {
      this.sink.ended(id, UNKNOWN_ORDER, 0);
      return;
    }
    const left = this.oRemaining[slot];
    this.unlink(slot);
    this.sink.ended(id, CANCELLED, left);
  }

  /** The best price of a side, or NaN when it is empty. */
  best(side: Side): number {
    const n = this.depth[side];
    return n === 0 ? NaN : this.lPrice[this.sorted[side][n - 1]];
  }

  /** Levels of a side best first, at most `limit`: [price, volume] pairs. */
  levels(side: Side, limit = Infinity): [number, number][] {
    const out: [number, number][] = [];
    const sorted = this.sorted[side];
    for (let i = this.depth[side] - 1; i >= 0 && out.length < limit; i--) out.push([this.lPrice[sorted[i]], this.lVolume[sorted[i]]]);
    return out;
  }

  /** Resting orders of a level in time order: [id, account, remaining]. For snapshots and tests. */
  ordersAt(side: Side, price: number): [number, number, number][] {
    const out: [number, number, number][] = [];
    const level = this.levelAt[side].get(price);
    for (let o = level === NONE ? NONE : this.lHead[level]; o !== NONE; o = this.oNext[o]) out.push([this.oid[o], this.oAccount[o], this.oRemaining[o]]);
    return out;
  }

  /**
   * Every resting order, as [id, account, side, price, remaining]: bids best first then asks best
   * first, each level in time order. `restore` of this list rebuilds the same book.
   */
  snapshot(): number[][] {
    const out: number[][] = [];
    for (const side of [BUY, SELL] as const) {
      const sorted = this.sorted[side];
      for (let i = this.depth[side] - 1; i >= 0; i--)
        for (let o = this.lHead[sorted[i]]; o !== NONE; o = this.oNext[o]) out.push([this.oid[o], this.oAccount[o], side, this.lPrice[sorted[i]], this.oRemaining[o]]);
    }
    return out;
  }

  /** Rests the orders of a `snapshot` on this empty book, in their order, without matching or events. */
  restore(orders: readonly (readonly number[])[]): void {
    if (this.size > 0) throw new Error("restore needs an empty book");
    for (const [id, account, side, price, remaining] of orders) this.rest(id, account, side as Side, price, remaining, false);
  }

  /** Calls `visit` for every level, bids high to low then asks low to high (the order a depth hash uses). */
  forEachLevel(visit: (side: Side, price: number, volume: number) => void): void {
    for (const side of [BUY, SELL] as const) {
      const sorted = this.sorted[side];
      for (let i = this.depth[side] - 1; i >= 0; i--) visit(side, this.lPrice[sorted[i]], this.lVolume[sorted[i]]);
    }
  }

  private crosses(side: Side, limit: number): boolean {
    const best = this.best((1 - side) as Side);
    return !Number.isNaN(best) && (side === BUY ? best <= limit : best >= limit);
  }

  /** How much an order could fill now, leaving out the account's own resting orders. */
  private fillable(side: Side, account: number, limit: number, wanted: number): number {
    const opposite = (1 - side) as Side;
    const sorted = this.sorted[opposite];
    let found = 0;
    for (let i = this.depth[opposite] - 1; i >= 0 && found < wanted; i--) {
      const level = sorted[i];
      const price = this.lPrice[level];
      if (side === BUY ? price > limit : price < limit) break;
      for (let o = this.lHead[level]; o !== NONE && found < wanted; o = this.oNext[o]) if (this.oAccount[o] !== account) found += this.oRemaining[o];
    }
    return found;
  }

  private rest(id: number, account: number, side: Side, price: number, remaining: number, announce = true): void {
    let level = this.levelAt[side].get(price);
    if (level === NONE) level = this.openLevel(side, price);
    const slot = this.allocOrder();
    this.oid[slot] = id;
    this.oAccount[slot] = account;
    this.oRemaining[slot] = remaining;
    this.oLevel[slot] = level;
    this.oNext[slot] = NONE;
    const tail = this.lTail[level];
    this.oPrev[slot] = tail;
    if (tail === NONE) this.lHead[level] = slot;
    else this.oNext[tail] = slot;
    this.lTail[level] = slot;
    this.lVolume[level] += remaining;
    this.slotOf.set(id, slot);
    if (announce) this.sink.rested(id, side, price, remaining);
  }

  /** Takes an order out of its level (and the level out of its side when it empties); frees the slot. */
  private unlink(slot: number): void {
    const level = this.oLevel[slot];
    const prev = this.oPrev[slot];
    const next = this.oNext[slot];
    if (prev === NONE) this.lHead[level] = next;
    else this.oNext[prev] = next;
    if (next === NONE) this.lTail[level] = prev;
    else this.oPrev[next] = prev;
    this.lVolume[level] -= this.oRemaining[slot];
    this.slotOf.delete(this.oid[slot]);
    this.oNext[slot] = this.freeOrder;
    this.freeOrder = slot;
    if (this.lHead[level] === NONE) this.closeLevel(level);
  }

  private allocOrder(): number {
    if (this.freeOrder !== NONE) {
      const slot = this.freeOrder;
      this.freeOrder = this.oNext[slot];
      return slot;
    }
    if (this.orderCount === this.oid.length) this.growOrders();
    return this.orderCount++;
  }

  private openLevel(side: Side, price: number): number {
    let level: number;
    if (this.freeLevel !== NONE) {
      level = this.freeLevel;
      this.freeLevel = this.lHead[level];
    } else {
      if (this.levelCount === this.lPrice.length) this.growLevels();
      level = this.levelCount++;
    }
    this.lPrice[level] = price;
    this.lSide[level] = side;
    this.lHead[level] = NONE;
    this.lTail[level] = NONE;
    this.lVolume[level] = 0;
    this.levelAt[side].set(price, level);
    // Insert keeping the best last: bids ascending, asks descending.
    if (this.depth[side] === this.sorted[side].length) this.sorted[side] = grow(this.sorted[side]);
    const sorted = this.sorted[side];
    let lo = 0;
    let hi = this.depth[side];
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const p = this.lPrice[sorted[mid]];
      if (side === BUY ? p < price : p > price) lo = mid + 1;
      else hi = mid;
    }
    sorted.copyWithin(lo + 1, lo, this.depth[side]);
    sorted[lo] = level;
    this.depth[side]++;
    return level;
  }

  private closeLevel(level: number): void {
    const side = this.lSide[level] as Side;
    const price = this.lPrice[level];
    this.levelAt[side].delete(price);
    const sorted = this.sorted[side];
    const n = this.depth[side];
    // The best level empties most often, and it is last: no shifting then.
    let i = n - 1;
    if (sorted[i] !== level) {
      let lo = 0;
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        const p = this.lPrice[sorted[mid]];
        if (side === BUY ? p < price : p > price) lo = mid + 1;
        else hi = mid;
      }
      i = lo;
      sorted.copyWithin(i, i + 1, n);
    }
    this.depth[side] = n - 1;
    this.lHead[level] = this.freeLevel;
    this.freeLevel = level;
  }

  private growOrders(): void {
    const size = this.oid.length * 2;
    this.oid = grow(this.oid, size);
    this.oAccount = grow(this.oAccount, size);
    this.oRemaining = grow(this.oRemaining, size);
    this.oNext = grow(this.oNext, size);
    this.oPrev = grow(this.oPrev, size);
    this.oLevel = grow(this.oLevel, size);
  }

  private growLevels(): void {
    const size = this.lPrice.length * 2;
    this.lPrice = grow(this.lPrice, size);
    this.lSide = grow(this.lSide, size);
    this.lHead = grow(this.lHead, size);
    this.lTail = grow(this.lTail, size);
    this.lVolume = grow(this.lVolume, size);
  }
}

/**
 * The levels that differ between two views of one side of a book ([price, volume] lists): each
 * changed or new level with its volume, each gone one with volume 0 — what a client applies to the
 * first view to get the second.
 */
export function depthChanges(before: readonly (readonly [number, number])[], after: readonly (readonly [number, number])[]): [number, number][] {
  const old = new Map(before.map(([p, v]) => [p, v]));
  const changes: [number, number][] = [];
  for (const [p, v] of after) {
    if (old.get(p) !== v) changes.push([p, v]);
    old.delete(p);
  }
  for (const p of old.keys()) changes.push([p, 0]);
  return changes;
}

/**
 * Two consecutive depth updates as one (the second starts where the first ended): the later volume of
 * a level wins, so applying the result is applying both. What conflation to one push per interval uses.
 */
export function mergeDepth<U extends { previous: number; sequence: number; bids: [number, number][]; asks: [number, number][] }>(first: U, next: U): U {
  const merge = (a: [number, number][], b: [number, number][]) => [...new Map([...a, ...b]).entries()];
  return { ...next, previous: first.previous, bids: merge(first.bids, next.bids), asks: merge(first.asks, next.asks) };
}

/**
 * Integer keys (order ids, prices: safe integers ≥ 0) to slots, open addressing with linear probing
 * in typed arrays: no allocation per entry, unlike a Map. Deletion shifts the run back, so there are
 * no tombstones and lookups stay short.
 */
export class IntMap {
  private keys: Float64Array;
  private values: Int32Array;
  private mask: number;
  size = 0;

  constructor(capacity = 1024) {
    let n = 16;
    while (n < capacity * 2) n *= 2;
    this.keys = new Float64Array(n).fill(-1);
    this.values = new Int32Array(n);
    this.mask = n - 1;
  }

  private home(key: number): number {
    return Math.imul((key | 0) ^ ((key / 4294967296) | 0), 0x9e3779b1) & this.mask;
  }

  /** The value for `key`, or -1. */
  get(key: number): number {
    const keys = this.keys;
    for (let i = this.home(key); ; i = (i + 1) & this.mask) {
      const k = keys[i];
      if (k === key) return this.values[i];
      if (k === -1) return -1;
    }
  }

  set(key: number, value: number): void {
    if ((this.size + 1) * 2 > this.keys.length) this.rehash(this.keys.length * 2);
    const keys = this.keys;
    let i = this.home(key);
    while (keys[i] !== -1 && keys[i] !== key) i = (i + 1) & this.mask;
    if (keys[i] === -1) this.size++;
    keys[i] = key;
    this.values[i] = value;
  }

  delete(key: number): void {
    const keys = this.keys;
    let i = this.home(key);
    while (keys[i] !== key) {
      if (keys[i] === -1) return;
      i = (i + 1) & this.mask;
    }
    this.size--;
    // Backward shift: pull later entries of the run into the gap when their home allows it.
    for (let j = (i + 1) & this.mask; keys[j] !== -1; j = (j + 1) & this.mask) {
      const h = this.home(keys[j]);
      if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
        keys[i] = keys[j];
        this.values[i] = this.values[j];
        i = j;
      }
    }
    keys[i] = -1;
  }

  private rehash(size: number): void {
    const { keys, values } = this;
    this.keys = new Float64Array(size).fill(-1);
    this.values = new Int32Array(size);
    this.mask = size - 1;
    this.size = 0;
    for (let i = 0; i < keys.length; i++) if (keys[i] !== -1) this.set(keys[i], values[i]);
  }
}

function grow<A extends Float64Array | Int32Array | Uint8Array>(a: A, size = a.length * 2): A {
  const next = new (a.constructor as new (n: number) => A)(size);
  next.set(a);
  return next;
}
