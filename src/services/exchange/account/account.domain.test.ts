import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  adjustment,
  apply,
  applyEach,
  applyIndependently,
  balanceKey,
  type Balances,
  CHAIN,
  deposit,
  EQUITY,
  FEES,
  feeOf,
  freeze,
  fromUnits,
  isBalanced,
  isRefusal,
  type Journal,
  ledgerSums,
  settlement,
  toUnits,
  unfreeze,
  userAccount,
  withdrawal,
} from "./account.domain";

const avail = (userId: number, asset: string) => balanceKey(userAccount(userId), asset, "available");
const frozen = (userId: number, asset: string) => balanceKey(userAccount(userId), asset, "frozen");

/** Applies journals one at a time, skipping those refused: where they end, and the refs refused in order. */
function oneByOne(start: Balances, journals: readonly Journal[]): { balances: Balances; refused: string[] } {
  let balances = start;
  const refused: string[] = [];
  for (const j of journals) {
    const next = apply(balances, j);
    if (isRefusal(next)) refused.push(j.ref);
    else balances = next;
  }
  return { balances, refused };
}

/** Adjustments, freezes and unfreezes of three users' USDT, named by their place in the list. */
const journal = fc.oneof(
  fc.record({ user: fc.integer({ min: 1, max: 3 }), amount: fc.bigInt({ min: -300n, max: 1_000n }) }).map((o) => (i: number) => adjustment(`a${i}`, o.user, "USDT", o.amount)),
  fc.record({ user: fc.integer({ min: 1, max: 3 }), amount: fc.bigInt({ min: 1n, max: 800n }) }).map((o) => (i: number) => freeze(`f${i}`, o.user, "USDT", o.amount)),
  fc.record({ user: fc.integer({ min: 1, max: 3 }), amount: fc.bigInt({ min: 1n, max: 800n }) }).map((o) => (i: number) => unfreeze(`u${i}`, o.user, "USDT", o.amount)),
);

describe("journals", () => {
  it("move money without making or losing any, and refuse to overdraw a user", () => {
    let b: Balances = new Map();
    const step = (j: Journal) => {
      const next = apply(b, j);
      if (isRefusal(next)) throw new Error(next.message);
      b = next;
    };
    step(adjustment("a1", 1, "USDT", 1_000_000n));
    step(adjustment("a2", 2, "BTC", 300n));
    step(freeze("f1", 1, "USDT", 500_000n));
    step(freeze("f2", 2, "BTC", 100n));
    step(settlement({ tradeId: "t1", base: "BTC", quote: "USDT", buyerId: 1, sellerId: 2, quantity: 100n, notional: 400_000n, buyerFeeBps: 10, sellerFeeBps: 20 }));
    step(unfreeze("u1", 1, "USDT", 100_000n));
    expect(b.get(avail(1, "USDT"))).toBe(600_000n);
    expect(b.get(frozen(1, "USDT"))).toBe(0n);
    expect(b.get(avail(1, "BTC"))).toBe(100n);
    expect(b.get(avail(2, "USDT"))).toBe(399_200n);
    expect(b.get(balanceKey(FEES, "USDT", "available"))).toBe(800n);
    expect(b.get(balanceKey(EQUITY, "USDT", "available"))).toBe(-1_000_000n);
    expect([...ledgerSums(b).values()]).toEqual([0n, 0n]);
    expect(apply(b, freeze("f3", 1, "USDT", 600_001n))).toMatchObject({ code: "INSUFFICIENT_BALANCE" });
    expect(apply(b, adjustment("a3", 2, "BTC", -201n))).toMatchObject({ code: "INSUFFICIENT_BALANCE" });
    const lopsided: Journal = { ref: "x", kind: "ADJUST", entries: [{ account: userAccount(1), asset: "BTC", bucket: "available", amount: 5n }] };
    expect(isBalanced(lopsided)).toBe(false);
    expect(apply(b, lopsided)).toMatchObject({ code: "INVALID_AMOUNT" });
  });

  it("keep every asset summing to zero under any interleaving of adjustments, freezes, trades and unfreezes", () => {
    const op = fc.oneof(
      fc.record({ k: fc.constant("adjust" as const), user: fc.integer({ min: 1, max: 4 }), asset: fc.constantFrom("BTC", "USDT"), amount: fc.bigInt({ min: -500n, max: 5_000n }) }),
      fc.record({ k: fc.constant("freeze" as const), user: fc.integer({ min: 1, max: 4 }), asset: fc.constantFrom("BTC", "USDT"), amount: fc.bigInt({ min: 1n, max: 2_000n }) }),
      fc.record({ k: fc.constant("unfreeze" as const), user: fc.integer({ min: 1, max: 4 }), asset: fc.constantFrom("BTC", "USDT"), amount: fc.bigInt({ min: 1n, max: 2_000n }) }),
      fc.record({
        k: fc.constant("trade" as const),
        buyer: fc.integer({ min: 1, max: 4 }),
        seller: fc.integer({ min: 1, max: 4 }),
        quantity: fc.bigInt({ min: 1n, max: 300n }),
        price: fc.bigInt({ min: 1n, max: 20n }),
        fee: fc.integer({ min: 0, max: 100 }),
      }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
        let b: Balances = new Map();
        ops.forEach((o, i) => {
          const j =
            o.k === "adjust"
              ? adjustment(`r${i}`, o.user, o.asset, o.amount)
              : o.k === "freeze"
                ? freeze(`r${i}`, o.user, o.asset, o.amount)
                : o.k === "unfreeze"
                  ? unfreeze(`r${i}`, o.user, o.asset, o.amount)
                  : settlement({ tradeId: `t${i}`, base: "BTC", quote: "USDT", buyerId: o.buyer, sellerId: o.seller, quantity: o.quantity, notional: o.quantity * o.price, buyerFeeBps: o.fee, sellerFeeBps: o.fee });
          const next = apply(b, j);
          if (!isRefusal(next)) b = next;
        });
        for (const sum of ledgerSums(b).values()) expect(sum).toBe(0n);
        for (const [key, amount] of b) if (!key.startsWith(EQUITY)) expect(amount >= 0n).toBe(true);
      }),
    );
  });
});

describe("a list of journals applied together", () => {
  it("ends where applying them one by one ends, or names the first that cannot apply and leaves the start untouched", () => {
    fc.assert(
      fc.property(fc.array(journal, { maxLength: 40 }), (makers) => {
        const journals = makers.map((make, i) => make(i));
        const start: Balances = new Map([[avail(1, "USDT"), 500n]]);
        const expected = oneByOne(start, journals);
        const together = applyEach(start, journals);
        if (expected.refused.length > 0) expect(isRefusal(together) && together.journal.ref).toBe(expected.refused[0]);
        else expect(together).toEqual(expected.balances);
        expect(start).toEqual(new Map([[avail(1, "USDT"), 500n]]));
      }),
    );
  });
});

describe("journals applied each on its own", () => {
  it("skips exactly those that cannot apply where they stand, as one by one with refusals skipped would", () => {
    fc.assert(
      fc.property(fc.array(journal, { maxLength: 40 }), (makers) => {
        const journals = makers.map((make, i) => make(i));
        const start: Balances = new Map([[avail(1, "USDT"), 500n]]);
        const expected = oneByOne(start, journals);
        const { balances, refused } = applyIndependently(start, journals);
        expect(balances).toEqual(expected.balances);
        expect([...refused.keys()]).toEqual(expected.refused);
        expect(start).toEqual(new Map([[avail(1, "USDT"), 500n]]));
      }),
    );
  });

  it("refuses the freeze the balance cannot cover and keeps the ones before and after it", () => {
    const start: Balances = new Map([[avail(1, "USDT"), 100n]]);
    const { balances, refused } = applyIndependently(start, [freeze("f1", 1, "USDT", 60n), freeze("f2", 1, "USDT", 50n), freeze("f3", 1, "USDT", 40n)]);
    expect(refused).toEqual(new Map([["f2", { code: "INSUFFICIENT_BALANCE", message: "USDT available of user:1 would be -10" }]]));
    expect(balances.get(avail(1, "USDT"))).toBe(0n);
    expect(balances.get(frozen(1, "USDT"))).toBe(100n);
  });

  it("refuses a journal whose entries do not balance", () => {
    const broken: Journal = { ref: "x", kind: "ADJUST", entries: [{ account: userAccount(1), asset: "USDT", bucket: "available", amount: 5n }] };
    expect(applyIndependently(new Map(), [broken]).refused.get("x")?.code).toBe("INVALID_AMOUNT");
  });

  it("checks a journal touching one balance twice against its running sum", () => {
    const twice: Journal = {
      ref: "t",
      kind: "ADJUST",
      entries: [
        { account: userAccount(1), asset: "USDT", bucket: "available", amount: -80n },
        { account: userAccount(1), asset: "USDT", bucket: "available", amount: -30n },
        { account: EQUITY, asset: "USDT", bucket: "available", amount: 110n },
      ],
    };
    expect(applyIndependently(new Map([[avail(1, "USDT"), 100n]]), [twice]).refused.get("t")?.code).toBe("INSUFFICIENT_BALANCE");
  });
});

describe("the chain custody account", () => {
  it("takes the other side of deposits and withdrawals; a withdrawal is paid only from frozen funds", () => {
    let b: Balances = new Map();
    const step = (j: Journal) => {
      const next = apply(b, j);
      if (isRefusal(next)) throw new Error(next.message);
      b = next;
    };
    step(deposit("deposit:0xabc:0", 1, "ETH", 1_000n));
    expect(apply(b, withdrawal("withdraw:1", 1, "ETH", 400n))).toMatchObject({ code: "INSUFFICIENT_BALANCE" });
    step(freeze("freeze:withdraw:1", 1, "ETH", 400n));
    step(withdrawal("withdraw:1", 1, "ETH", 400n));
    expect(b.get(avail(1, "ETH"))).toBe(600n);
    expect(b.get(frozen(1, "ETH"))).toBe(0n);
    // What users hold with us on chain, as the custody account sees it: 1,000 in, 400 out.
    expect(b.get(balanceKey(CHAIN, "ETH", "available"))).toBe(-600n);
    expect([...ledgerSums(b).values()]).toEqual([0n]);
  });
});

describe("amounts", () => {
  it("convert decimal strings to base units exactly, refusing more places than the asset has", () => {
    expect(toUnits("1.5", 8)).toBe(150_000_000n);
    expect(toUnits("0.000000000000000001", 18)).toBe(1n);
    expect(toUnits("123456789.123456789123456789", 18)).toBe(123_456_789_123_456_789_123_456_789n);
    expect(toUnits("-2", 2)).toBe(-200n);
    expect(toUnits("1.234", 2)).toBeNull();
    expect(toUnits("1e3", 2)).toBeNull();
    expect(toUnits("", 2)).toBeNull();
    expect(fromUnits(150_000_000n, 8)).toBe("1.50000000");
    expect(fromUnits(-5n, 3)).toBe("-0.005");
    expect(fromUnits(42n, 0)).toBe("42");
    fc.assert(fc.property(fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }), fc.integer({ min: 0, max: 18 }), (u, d) => {
        expect(toUnits(fromUnits(u, d), d)).toBe(u);
      }),
    );
  });

  it("takes fees rounded down", () => {
    expect(feeOf(10_000n, 10)).toBe(10n);
    expect(feeOf(999n, 10)).toBe(0n);
    expect(feeOf(1_000_000n, 0)).toBe(0n);
  });
});
