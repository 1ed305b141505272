import { describe, expect, it } from "vitest";
import { engines } from "../../../../test/support/harness";
import { ManualClock } from "../../../platform/clock/clock";
import type { Kv } from "../../../platform/kv/kv";
import { MemoryKv } from "../../../platform/kv/memory.kv";
import { RedisKv } from "../../../platform/kv/redis.kv";
import { type AttemptRecord, admitAnswer, admitScript, flashKeys, giveBackScript, settleScript, warmScript } from "./flash.kv";

const DAY = 86_400_000;
const window = { startsAt: 1_000, endsAt: 2_000, perUserLimit: 2 };

/** The admission scripts' semantics, one suite over the embedded kv and Redis: they must agree. */
function suite(name: string, make: () => Kv) {
  describe(`flash kv scripts: ${name}`, () => {
    let n = 0;
    const campaign = () => `c${Date.now().toString(36)}${n++}`;
    const record = (userId: number, quantity: number, status: AttemptRecord["status"] = "QUEUED", extra: Partial<AttemptRecord> = {}) =>
      JSON.stringify({ status, userId, quantity, at: 1_500, ...extra });
    const attempt = (kv: Kv, cid: string, userId: number, key: string, quantity = 1, now = 1_500) => {
      const k = flashKeys(cid);
      const id = `${cid}.${key}`;
      return kv
        .run(admitScript, [k.stock, k.used(userId), k.key(userId, key), k.attempts, k.queued], [now, window.startsAt, window.endsAt, window.perUserLimit, quantity, id, record(userId, quantity), DAY])
        .then(admitAnswer);
    };
    const warm = (kv: Kv, cid: string, remaining: number) => kv.run(warmScript, [flashKeys(cid).stock], [remaining, DAY]);

    it("refuses outside the window, before warming, past the stock and past the buyer's limit, in that order", async () => {
      const kv = make();
      const cid = campaign();
      expect(await attempt(kv, cid, 1, "a", 1, 999)).toEqual({ outcome: "REFUSED", code: "NOT_STARTED" });
      expect(await attempt(kv, cid, 1, "a", 1, 2_000)).toEqual({ outcome: "REFUSED", code: "ENDED" });
      expect(await attempt(kv, cid, 1, "a")).toEqual({ outcome: "REFUSED", code: "NOT_WARM" });
      expect(await warm(kv, cid, 3)).toEqual(["WARMED"]);
      expect(await warm(kv, cid, 99)).toEqual(["WARM"]);
      expect(await attempt(kv, cid, 1, "a", 3)).toEqual({ outcome: "REFUSED", code: "LIMIT_REACHED" });
      expect(await attempt(kv, cid, 1, "a", 2)).toEqual({ outcome: "ADMITTED", attemptId: `${cid}.a` });
      expect(await attempt(kv, cid, 1, "b", 1)).toEqual({ outcome: "REFUSED", code: "LIMIT_REACHED" });
      expect(await attempt(kv, cid, 2, "c", 2)).toEqual({ outcome: "REFUSED", code: "SOLD_OUT" });
      expect(await attempt(kv, cid, 2, "c", 1)).toEqual({ outcome: "ADMITTED", attemptId: `${cid}.c` });
      expect(await kv.get(flashKeys(cid).stock)).toBe("0");
      expect(Object.keys(await kv.hgetall(flashKeys(cid).queued)).sort()).toEqual([`${cid}.a`, `${cid}.c`]);
      await kv.close();
    });

    it("answers a repeated idempotency key with the first attempt, taking nothing more", async () => {
      const kv = make();
      const cid = campaign();
      await warm(kv, cid, 5);
      const first = await attempt(kv, cid, 1, "same");
      expect(await attempt(kv, cid, 1, "same")).toEqual({ outcome: "DUPLICATE", attemptId: (first as { attemptId: string }).attemptId });
      expect(await kv.get(flashKeys(cid).stock)).toBe("4");
      expect(await kv.get(flashKeys(cid).used(1))).toBe("1");
      await kv.close();
    });

    it("admits exactly the stock under a concurrent storm, nobody past the limit", async () => {
      const kv = make();
      const cid = campaign();
      await warm(kv, cid, 50);
      const answers = await Promise.all(Array.from({ length: 600 }, (_, i) => attempt(kv, cid, i % 100, `k${i}`, 1 + (i % 2)).then((a) => ({ a, user: i % 100, q: 1 + (i % 2) }))));
      const admitted = answers.filter((x) => x.a.outcome === "ADMITTED");
      expect(admitted.reduce((s, x) => s + x.q, 0)).toBe(50);
      const perUser = new Map<number, number>();
      for (const x of admitted) perUser.set(x.user, (perUser.get(x.user) ?? 0) + x.q);
      expect(Math.max(...perUser.values())).toBeLessThanOrEqual(2);
      expect(await kv.get(flashKeys(cid).stock)).toBe("0");
      expect(Object.keys(await kv.hgetall(flashKeys(cid).attempts))).toHaveLength(admitted.length);
      await kv.close();
    });

    it("settles an attempt once; a rejection may give its units and the buyer's allowance back", async () => {
      const kv = make();
      const cid = campaign();
      const k = flashKeys(cid);
      await warm(kv, cid, 2);
      await attempt(kv, cid, 7, "x", 2);
      const settle = (status: AttemptRecord["status"], giveBack: 0 | 1) =>
        kv.run(settleScript, [k.stock, k.used(7), k.attempts, k.queued], [`${cid}.x`, record(7, 2, status, { reason: "test" }), giveBack, 2]);
      expect(await settle("REJECTED", 1)).toEqual(["SETTLED"]);
      expect(await settle("REJECTED", 1)).toEqual(["ALREADY"]);
      expect(await kv.get(k.stock)).toBe("2");
      expect(await kv.get(k.used(7))).toBe("0");
      expect(await kv.hgetall(k.queued)).toEqual({});
      expect(JSON.parse((await kv.hgetall(k.attempts))[`${cid}.x`])).toMatchObject({ status: "REJECTED", reason: "test" });
      expect(await kv.run(settleScript, [k.stock, k.used(7), k.attempts, k.queued], [`${cid}.nobody`, record(7, 1), 1, 1])).toEqual(["UNKNOWN"]);
      await kv.close();
    });

    it("gives an ordered attempt's units back once when its order is cancelled", async () => {
      const kv = make();
      const cid = campaign();
      const k = flashKeys(cid);
      await warm(kv, cid, 3);
      await attempt(kv, cid, 9, "y", 2);
      const back = () => kv.run(giveBackScript, [k.stock, k.used(9), k.attempts], [`${cid}.y`, record(9, 2, "ORDERED", { returned: true })]);
      expect(await back()).toEqual(["ALREADY"]);
      await kv.run(settleScript, [k.stock, k.used(9), k.attempts, k.queued], [`${cid}.y`, record(9, 2, "ORDERED", { orderId: "o1" }), 0, 2]);
      expect(await kv.get(k.stock)).toBe("1");
      expect(await back()).toEqual(["RETURNED"]);
      expect(await back()).toEqual(["ALREADY"]);
      expect(await kv.get(k.stock)).toBe("3");
      expect(await kv.get(k.used(9))).toBe("0");
      expect(await kv.run(giveBackScript, [k.stock, k.used(9), k.attempts], [`${cid}.none`, "{}"])).toEqual(["UNKNOWN"]);
      await kv.close();
    });
  });
}

suite("embedded", () => new MemoryKv(new ManualClock(), "fk:"));
if (engines.redis) suite("redis", () => new RedisKv(engines.redis!, `fk:${Math.random().toString(36).slice(2)}:`));
