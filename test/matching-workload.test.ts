import { describe, expect, it } from "vitest";
import { Fnv1a, LiveOrders, type Profile, run } from "../bench/matching-workload";
import { GTC, LIMIT, MARKET, OrderBook } from "../src/services/exchange/matching/matching.domain";

/** Our engine on the reference workload: fill for fill what the specification's reference produced. */
function replay(profile: Profile) {
  const live = new LiveOrders();
  const tape = new Fnv1a();
  let fills = 0;
  let lots = 0;
  const book = new OrderBook({
    trade(taker, maker, price, qty) {
      fills++;
      lots += qty;
      tape.add(taker);
      tape.add(maker);
      tape.add(price);
      tape.add(qty);
    },
    rested: (id) => live.rested(id),
    ended: (id) => live.left(id),
  });
  // Every order its own account, so self-trade prevention never applies.
  run(
    {
      limit: (id, side, price, qty) => book.place(id, id, side, LIMIT, GTC, price, qty),
      market: (id, side, qty) => book.place(id, id, side, MARKET, GTC, 0, qty),
      cancel: (id) => book.cancel(id),
    },
    live,
    profile,
    1_000_000,
  );
  const depth = new Fnv1a();
  book.forEachLevel((side, price, volume) => {
    depth.add(side);
    depth.add(price);
    depth.add(volume);
  });
  return { fills, lots, tapeHash: tape.hex(), depthHash: depth.hex() };
}

describe("the reference matching workload (1,000,000 commands, seed 42)", () => {
  it("brief: reproduces the reference fills, tape and book", () => {
    expect(replay("brief")).toEqual({ fills: 577_150, lots: 15_299_364, tapeHash: "4c0c7fa9", depthHash: "1df1a0ee" });
  });
  it("banded 20: reproduces the reference fills, tape and book", () => {
    expect(replay("banded")).toEqual({ fills: 593_232, lots: 15_163_885, tapeHash: "8621452b", depthHash: "a5c2bebd" });
  });
});
