import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  BUY,
  CANCELLED,
  depthChanges,
  DUPLICATE_ID,
  EXPIRED,
  FILLED,
  FOK,
  GTC,
  IntMap,
  IOC,
  LIMIT,
  MARKET,
  type MatchSink,
  mergeDepth,
  OrderBook,
  type OrderType,
  POST_ONLY,
  SELF_TRADE,
  SELL,
  type Side,
  type TimeInForce,
  UNKNOWN_ORDER,
  WOULD_TAKE,
} from "./matching.domain";

type Event = (string | number)[];

function recorder(): MatchSink & { events: Event[] } {
  const events: Event[] = [];
  return {
    events,
    trade: (taker, maker, price, qty, side, makerLeft) => void events.push(["trade", taker, maker, price, qty, side, makerLeft]),
    rested: (id, side, price, remaining) => void events.push(["rested", id, side, price, remaining]),
    ended: (id, reason, remaining) => void events.push(["ended", id, reason, remaining]),
  };
}

/** The obvious matcher: every resting order in one array, the best found by scanning. Slow and plainly right. */
class ReferenceBook {
  private resting: { id: number; account: number; side: Side; price: number; left: number; seq: number }[] = [];
  private seq = 0;
  readonly events: Event[] = [];

  place(id: number, account: number, side: Side, type: OrderType, tif: TimeInForce, price: number, qty: number): void {
    if (this.resting.some((o) => o.id === id)) return void this.events.push(["ended", id, DUPLICATE_ID, qty]);
    const limit = type === MARKET ? (side === BUY ? Infinity : -Infinity) : price;
    const matches = (o: { side: Side; price: number }) => o.side !== side && (side === BUY ? o.price <= limit : o.price >= limit);
    if (tif === POST_ONLY && this.resting.some(matches)) return void this.events.push(["ended", id, WOULD_TAKE, qty]);
    if (tif === FOK) {
      const available = this.resting.filter((o) => matches(o) && o.account !== account).reduce((s, o) => s + o.left, 0);
      if (available < qty) return void this.events.push(["ended", id, EXPIRED, qty]);
    }
    let left = qty;
    while (left > 0) {
      const candidates = this.resting.filter(matches);
      if (candidates.length === 0) break;
      const best = candidates.reduce((a, b) => ((side === BUY ? b.price < a.price : b.price > a.price) || (b.price === a.price && b.seq < a.seq) ? b : a));
      if (best.account === account) {
        this.resting.splice(this.resting.indexOf(best), 1);
        this.events.push(["ended", best.id, SELF_TRADE, best.left]);
        continue;
      }
      const fill = Math.min(left, best.left);
      left -= fill;
      best.left -= fill;
      this.events.push(["trade", id, best.id, best.price, fill, side, best.left]);
      if (best.left === 0) {
        this.resting.splice(this.resting.indexOf(best), 1);
        this.events.push(["ended", best.id, FILLED, 0]);
      }
    }
    if (left === 0) this.events.push(["ended", id, FILLED, 0]);
    else if (type === MARKET || tif === IOC || tif === FOK) this.events.push(["ended", id, EXPIRED, left]);
    else {
      this.resting.push({ id, account, side, price, left, seq: this.seq++ });
      this.events.push(["rested", id, side, price, left]);
    }
  }

  cancel(id: number): void {
    const o = this.resting.find((r) => r.id === id);
    if (!o) return void this.events.push(["ended", id, UNKNOWN_ORDER, 0]);
    this.resting.splice(this.resting.indexOf(o), 1);
    this.events.push(["ended", id, CANCELLED, o.left]);
  }

  levels(side: Side): [number, number][] {
    const volume = new Map<number, number>();
    for (const o of this.resting) if (o.side === side) volume.set(o.price, (volume.get(o.price) ?? 0) + o.left);
    return [...volume].sort((a, b) => (side === BUY ? b[0] - a[0] : a[0] - b[0]));
  }
}

type Command =
  | { kind: "place"; id: number; account: number; side: Side; type: OrderType; tif: TimeInForce; price: number; qty: number }
  | { kind: "cancel"; id: number };

const command = (maxId: number): fc.Arbitrary<Command> =>
  fc.oneof(
    {
      weight: 4,
      arbitrary: fc.record({
        kind: fc.constant("place" as const),
        id: fc.integer({ min: 1, max: maxId }),
        account: fc.integer({ min: 1, max: 4 }),
        side: fc.constantFrom(BUY, SELL) as fc.Arbitrary<Side>,
        type: fc.constantFrom(LIMIT, LIMIT, LIMIT, MARKET) as fc.Arbitrary<OrderType>,
        tif: fc.constantFrom(GTC, GTC, GTC, IOC, FOK, POST_ONLY) as fc.Arbitrary<TimeInForce>,
        price: fc.integer({ min: 95, max: 105 }),
        qty: fc.integer({ min: 1, max: 30 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant("cancel" as const), id: fc.integer({ min: 1, max: maxId }) }) },
  );

function apply(book: { place: OrderBook["place"]; cancel: OrderBook["cancel"] }, commands: Command[]) {
  for (const c of commands) {
    if (c.kind === "cancel") book.cancel(c.id);
    else book.place(c.id, c.account, c.side, c.type, c.tif, c.price, c.qty);
  }
}

describe("depth conflation", () => {
  it("merges consecutive updates into one that leaves a client's book as applying each would", () => {
    type U = { previous: number; sequence: number; bids: [number, number][]; asks: [number, number][] };
    const level = fc.tuple(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 5 }));
    const updates = fc.array(fc.record({ bids: fc.array(level, { maxLength: 6 }), asks: fc.array(level, { maxLength: 6 }) }), { minLength: 1, maxLength: 8 });
    const apply = (book: Map<number, number>, changes: [number, number][]) => {
      for (const [p, v] of changes) v === 0 ? book.delete(p) : book.set(p, v);
    };
    fc.assert(
      fc.property(updates, (raw) => {
        const chain: U[] = raw.map((u, i) => ({ previous: i, sequence: i + 1, bids: u.bids as [number, number][], asks: u.asks as [number, number][] }));
        const one = { bids: new Map<number, number>(), asks: new Map<number, number>() };
        for (const u of chain) {
          apply(one.bids, u.bids);
          apply(one.asks, u.asks);
        }
        const merged = chain.reduce((a, b) => mergeDepth(a, b));
        const two = { bids: new Map<number, number>(), asks: new Map<number, number>() };
        apply(two.bids, merged.bids);
        apply(two.asks, merged.asks);
        return merged.previous === 0 && merged.sequence === chain.length && [...one.bids].sort().join() === [...two.bids].sort().join() && [...one.asks].sort().join() === [...two.asks].sort().join();
      }),
    );
  });
});

describe("matching engine against the reference matcher", () => {
  it("gives the same events and the same book on random command sequences", () => {
    fc.assert(
      fc.property(fc.array(command(60), { maxLength: 200 }), (commands) => {
        const sink = recorder();
        const engine = new OrderBook(sink, 2);
        const reference = new ReferenceBook();
        apply(engine, commands);
        apply(reference, commands);
        expect(sink.events).toEqual(reference.events);
        expect(engine.levels(BUY)).toEqual(reference.levels(BUY));
        expect(engine.levels(SELL)).toEqual(reference.levels(SELL));
      }),
      { numRuns: 300 },
    );
  });

  it("creates and loses no quantity: every order's fills and what is left add up to what it asked", () => {
    fc.assert(
      fc.property(fc.array(command(1_000_000), { maxLength: 300 }), (commands) => {
        const sink = recorder();
        const engine = new OrderBook(sink);
        const asked = new Map<number, number>();
        for (const c of commands) if (c.kind === "place" && !asked.has(c.id)) asked.set(c.id, c.qty);
        // Fresh ids only: a duplicate is rejected whole and says nothing about conservation.
        const fresh = commands.filter((c, i) => c.kind === "cancel" || commands.findIndex((d) => d.kind === "place" && d.id === c.id) === i);
        apply(engine, fresh);
        const filled = new Map<number, number>();
        for (const e of sink.events)
          if (e[0] === "trade") {
            filled.set(e[1] as number, (filled.get(e[1] as number) ?? 0) + (e[4] as number));
            filled.set(e[2] as number, (filled.get(e[2] as number) ?? 0) + (e[4] as number));
          }
        const leftOf = new Map<number, number>();
        for (const e of sink.events) if (e[0] === "ended" && e[2] !== UNKNOWN_ORDER) leftOf.set(e[1] as number, e[3] as number);
        for (const side of [BUY, SELL] as const)
          for (const [price] of engine.levels(side)) for (const [id, , left] of engine.ordersAt(side, price)) leftOf.set(id, left);
        for (const [id, qty] of asked) expect((filled.get(id) ?? 0) + (leftOf.get(id) ?? 0)).toBe(qty);
        for (const side of [BUY, SELL] as const)
          for (const [price, volume] of engine.levels(side)) expect(engine.ordersAt(side, price).reduce((s, o) => s + o[2], 0)).toBe(volume);
      }),
      { numRuns: 200 },
    );
  });

  it("is deterministic: the same commands, the same events", () => {
    fc.assert(
      fc.property(fc.array(command(50), { maxLength: 150 }), (commands) => {
        const a = recorder();
        const b = recorder();
        apply(new OrderBook(a), commands);
        apply(new OrderBook(b, 1), commands);
        expect(a.events).toEqual(b.events);
      }),
    );
  });
});

describe("matching engine cases", () => {
  it("fills best price first, time order within a price, at the maker's price", () => {
    const sink = recorder();
    const book = new OrderBook(sink);
    book.place(1, 1, SELL, LIMIT, GTC, 101, 5);
    book.place(2, 2, SELL, LIMIT, GTC, 100, 5);
    book.place(3, 3, SELL, LIMIT, GTC, 100, 5);
    sink.events.length = 0;
    book.place(4, 4, BUY, LIMIT, GTC, 101, 12);
    expect(sink.events).toEqual([
      ["trade", 4, 2, 100, 5, BUY, 0],
      ["ended", 2, FILLED, 0],
      ["trade", 4, 3, 100, 5, BUY, 0],
      ["ended", 3, FILLED, 0],
      ["trade", 4, 1, 101, 2, BUY, 3],
      ["ended", 4, FILLED, 0],
    ]);
    expect(book.levels(SELL)).toEqual([[101, 3]]);
    expect(book.best(SELL)).toBe(101);
    expect(book.best(BUY)).toBeNaN();
    expect(book.size).toBe(1);
    expect(book.has(1)).toBe(true);
  });

  it("cancels the resting order of the taker's own account and trades on", () => {
    const sink = recorder();
    const book = new OrderBook(sink);
    book.place(1, 7, SELL, LIMIT, GTC, 100, 5);
    book.place(2, 8, SELL, LIMIT, GTC, 100, 5);
    sink.events.length = 0;
    book.place(3, 7, BUY, MARKET, GTC, 0, 20);
    expect(sink.events).toEqual([["ended", 1, SELF_TRADE, 5], ["trade", 3, 2, 100, 5, BUY, 0], ["ended", 2, FILLED, 0], ["ended", 3, EXPIRED, 15]]);
  });

  it("refuses a post-only order that would take, an FOK it cannot fill whole, a second order with one id", () => {
    const sink = recorder();
    const book = new OrderBook(sink);
    book.place(1, 1, SELL, LIMIT, GTC, 100, 5);
    book.place(2, 2, BUY, LIMIT, POST_ONLY, 100, 1);
    book.place(3, 2, BUY, LIMIT, FOK, 100, 6);
    book.place(1, 3, BUY, LIMIT, GTC, 99, 1);
    book.place(4, 2, BUY, LIMIT, POST_ONLY, 99, 1);
    book.cancel(42);
    expect(sink.events.slice(1)).toEqual([["ended", 2, WOULD_TAKE, 1], ["ended", 3, EXPIRED, 6], ["ended", 1, DUPLICATE_ID, 1], ["rested", 4, BUY, 99, 1], ["ended", 42, UNKNOWN_ORDER, 0]]);
    expect(book.ordersAt(BUY, 99)).toEqual([[4, 2, 1]]);
    expect(book.ordersAt(BUY, 50)).toEqual([]);
  });

  it("grows past its first capacity and reuses freed slots", () => {
    const sink = recorder();
    const book = new OrderBook(sink, 1);
    for (let i = 1; i <= 200; i++) book.place(i, i, i % 2 === 0 ? BUY : SELL, LIMIT, GTC, i % 2 === 0 ? 1000 - i : 2000 + i, 1);
    expect(book.size).toBe(200);
    for (let i = 1; i <= 200; i += 3) book.cancel(i);
    for (let i = 201; i <= 260; i++) book.place(i, i, BUY, LIMIT, GTC, 500 + (i % 7), 2);
    expect(book.levels(BUY, 3).map(([p]) => p)).toEqual([998, 994, 992]);
    expect(book.levels(SELL).length).toBe(100 - Math.ceil(100 / 3));
  });
});

describe("snapshots", () => {
  it("rebuild a book that then behaves exactly like the original", () => {
    fc.assert(
      fc.property(fc.array(command(80), { maxLength: 150 }), fc.array(command(80), { maxLength: 60 }), (before, after) => {
        const a = recorder();
        const original = new OrderBook(a);
        apply(original, before);
        const b = recorder();
        const restored = new OrderBook(b, 1);
        restored.restore(original.snapshot());
        expect(restored.snapshot()).toEqual(original.snapshot());
        expect(b.events).toEqual([]);
        a.events.length = 0;
        apply(original, after);
        apply(restored, after);
        expect(b.events).toEqual(a.events);
        expect(restored.levels(BUY)).toEqual(original.levels(BUY));
        expect(restored.levels(SELL)).toEqual(original.levels(SELL));
      }),
      { numRuns: 200 },
    );
  });

  it("restore only onto an empty book", () => {
    const book = new OrderBook(recorder());
    book.place(1, 1, BUY, LIMIT, GTC, 10, 1);
    expect(() => book.restore([])).toThrow(/empty book/);
  });
});

describe("depth changes", () => {
  it("turn one view of a side into the other when applied", () => {
    expect(depthChanges([[101, 5], [100, 3]], [[101, 2], [99, 7]])).toEqual([[101, 2], [99, 7], [100, 0]]);
    expect(depthChanges([[1, 1]], [[1, 1]])).toEqual([]);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 9 }))), fc.array(fc.tuple(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 1, max: 9 }))), (a, b) => {
        const before = [...new Map(a)];
        const after = [...new Map(b)];
        const book = new Map(before);
        for (const [p, v] of depthChanges(before, after)) v === 0 ? book.delete(p) : book.set(p, v);
        expect(new Map([...book].sort())).toEqual(new Map([...after].sort()));
      }),
    );
  });
});

describe("IntMap", () => {
  it("behaves as a Map of integers under any mix of sets and deletes, through growth", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })), fc.integer({ min: 0, max: 1000 })), {
          maxLength: 400,
        }),
        (ops) => {
          const ours = new IntMap(2);
          const map = new Map<number, number>();
          for (const [put, key, value] of ops) {
            if (put) {
              ours.set(key, value);
              map.set(key, value);
            } else {
              ours.delete(key);
              map.delete(key);
            }
            expect(ours.size).toBe(map.size);
          }
          for (const [, key] of ops) expect(ours.get(key)).toBe(map.get(key) ?? -1);
        },
      ),
    );
  });
});
