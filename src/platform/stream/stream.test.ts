import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { connect } from "nats";
import pino from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { engines, eventually } from "../../../test/support/harness";
import { JetStreamStream } from "./jetstream.stream";
import { SqliteStream } from "./sqlite.stream";
import { ManualClock, systemClock } from "../clock/clock";
import { RETENTION_MS, retryDelay, type Stream, type StreamMessage } from "./stream";

const logger = pino({ level: "silent" });
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function collect(stream: Stream, durable: string, subject: string, until: number, fail?: (m: StreamMessage) => boolean) {
  const got: StreamMessage[] = [];
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  const sub = await stream.consume({
    durable,
    subject,
    handler: async (m) => {
      if (fail?.(m)) throw new Error("handler failed");
      got.push(m);
      if (got.length >= until) resolve();
    },
  });
  await Promise.race([done, new Promise((_, reject) => setTimeout(() => reject(new Error(`only ${got.length} of ${until}`)), 15_000))]);
  await sub.stop();
  return got;
}

function contract(name: string, open: (ns: string) => Promise<Stream>) {
  describe(`stream contract: ${name}`, () => {
    it("delivers in order, once per id, with data and headers", async () => {
      const ns = `s${Math.random().toString(36).slice(2, 8)}`;
      const stream = await open(ns);
      for (let i = 0; i < 20; i++) await stream.publish("orders.placed", { i }, { id: `m${i}`, headers: { trace: `t${i}` } });
      await stream.publish("orders.placed", { i: 0 }, { id: "m0" });
      await stream.publish("other.subject", { x: 1 }, { id: "o1" });
      const got = await collect(stream, "c1", "orders.placed", 20);
      expect(got.map((m) => (m.data as { i: number }).i)).toEqual(Array.from({ length: 20 }, (_, i) => i));
      expect(got[3]).toMatchObject({ id: "m3", subject: "orders.placed", headers: { trace: "t3" } });
      expect(got[19].seq).toBeGreaterThan(got[0].seq);
      await stream.close();
    });

    it("stores a long publishAll in order, each id once: one repeated within it, one published before", async () => {
      const ns = `s${Math.random().toString(36).slice(2, 8)}`;
      const stream = await open(ns);
      await stream.publish("bulk.n", { i: 0 }, { id: "b0" });
      const ids = Array.from({ length: 150 }, (_, i) => `b${i}`);
      // b0 was published before; b70 comes twice in this batch.
      const batch = [...ids.slice(0, 71), "b70", ...ids.slice(71)].map((id) => ({ subject: "bulk.n", json: JSON.stringify({ i: Number(id.slice(1)) }), id }));
      await stream.publishAll(batch);
      const got = await collect(stream, "bulk", "bulk.n", 150);
      expect(got.map((m) => (m.data as { i: number }).i)).toEqual(Array.from({ length: 150 }, (_, i) => i));
      await stream.close();
    });

    it("keeps each durable consumer's position across restarts", async () => {
      const ns = `s${Math.random().toString(36).slice(2, 8)}`;
      let stream = await open(ns);
      for (let i = 0; i < 5; i++) await stream.publish("a.b", { i }, { id: `k${i}` });
      expect((await collect(stream, "pos", "a.b", 5)).length).toBe(5);
      await stream.close();
      stream = await open(ns);
      for (let i = 5; i < 8; i++) await stream.publish("a.b", { i }, { id: `k${i}` });
      const rest = await collect(stream, "pos", "a.b", 3);
      expect(rest.map((m) => (m.data as { i: number }).i)).toEqual([5, 6, 7]);
      const fresh = await collect(stream, "other-consumer", "a.b", 8);
      expect(fresh).toHaveLength(8);
      await stream.close();
    });

    it("redelivers a message whose handler failed", async () => {
      const ns = `s${Math.random().toString(36).slice(2, 8)}`;
      const stream = await open(ns);
      await stream.publish("x.y", { n: 1 }, { id: "only" });
      let failures = 0;
      const got = await collect(stream, "retry", "x.y", 1, () => failures++ < 2);
      expect(got).toHaveLength(1);
      expect(failures).toBe(3);
      await stream.close();
    });

    it("holds back the messages after a failed one until it succeeds: the order survives a failure", async () => {
      const ns = `s${Math.random().toString(36).slice(2, 8)}`;
      const stream = await open(ns);
      for (let i = 0; i < 6; i++) await stream.publish("h.o", { i }, { id: `h${i}` });
      let tries = 0;
      const got = await collect(stream, "ordered", "h.o", 6, (m) => (m.data as { i: number }).i === 2 && ++tries <= 2);
      expect(tries).toBe(3);
      expect(got.map((m) => (m.data as { i: number }).i)).toEqual([0, 1, 2, 3, 4, 5]);
      await stream.close();
    });
  });
}

const root = mkdtempSync(path.join(tmpdir(), "bazaar-stream-"));
dirs.push(root);
contract("sqlite", async (ns) => new SqliteStream(path.join(root, ns), ns, logger, systemClock));

describe("sqlite log retention", () => {
  it("drops messages older than the retention period", async () => {
    const clock = new ManualClock();
    const stream = new SqliteStream(path.join(root, "retention"), "retention", logger, clock);
    await stream.publish("a.b", { n: 1 }, { id: "old" });
    clock.advance(RETENTION_MS + 1);
    await stream.publish("a.b", { n: 2 }, { id: "new" });
    expect(stream.prune()).toBe(1);
    const got = await collect(stream, "late-reader", "a.b", 1);
    expect(got.map((m) => m.id)).toEqual(["new"]);
    await stream.close();
  });
});

describe("sqlite log group commit", () => {
  it("writes what is published in one round of the event loop together, each publish resolving once it is in the file", async () => {
    const dir = path.join(root, "group");
    const stream = new SqliteStream(dir, "group", logger, systemClock);
    await Promise.all(Array.from({ length: 500 }, (_, i) => stream.publish("g.n", { i }, { id: `m${i}` })));
    // Published, then closed at once: the last ones are written before the file closes.
    const last = stream.publish("g.n", { i: 500 }, { id: "m500" });
    await stream.close();
    await last;
    const reopened = new SqliteStream(dir, "group", logger, systemClock);
    const got = await collect(reopened, "reader", "g.n", 501);
    expect(got.map((m) => (m.data as { i: number }).i)).toEqual(Array.from({ length: 501 }, (_, i) => i));
    await reopened.close();
  });

  it("stores a consumer's position with the round's writes, and a consumer started again before then goes on from it", async () => {
    const dir = path.join(root, "positions");
    const stream = new SqliteStream(dir, "positions", logger, systemClock);
    for (let i = 0; i < 5; i++) await stream.publish("p.q", { i }, { id: `p${i}` });
    expect(await collect(stream, "reader", "p.q", 5)).toHaveLength(5);
    // Started again at once: its position may not be in the file yet.
    const next = collect(stream, "reader", "p.q", 2);
    await stream.publish("p.q", { i: 5 }, { id: "p5" });
    await stream.publish("p.q", { i: 6 }, { id: "p6" });
    expect((await next).map((m) => (m.data as { i: number }).i)).toEqual([5, 6]);
    await stream.close();
    const reopened = new SqliteStream(dir, "positions", logger, systemClock);
    await reopened.publish("p.q", { i: 7 }, { id: "p7" });
    expect((await collect(reopened, "reader", "p.q", 1)).map((m) => (m.data as { i: number }).i)).toEqual([7]);
    await reopened.close();
  });

  it("refuses every publish of a round whose write fails, and writes none of them", async () => {
    const stream = new SqliteStream(path.join(root, "group-fail"), "group-fail", logger, systemClock);
    const bad = {
      toJSON: () => {
        throw new Error("not serialisable");
      },
    };
    // Headers are serialised as the round is written: one that cannot be fails the write itself.
    const results = await Promise.allSettled([
      stream.publish("g.f", { ok: 1 }, { id: "a" }),
      stream.publish("g.f", { ok: 0 }, { id: "b", headers: { broken: bad as unknown as string } }),
    ]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    await stream.publish("g.f", { ok: 2 }, { id: "c" });
    expect((await collect(stream, "reader", "g.f", 1)).map((m) => m.id)).toEqual(["c"]);
    await stream.close();
  });
});

if (engines.nats) {
  const namespaces: string[] = [];
  contract("jetstream", (ns) => {
    namespaces.push(ns);
    return JetStreamStream.connect(engines.nats!, ns, logger);
  });

  describe("jetstream: replicas of one consumer", () => {
    it("hand over one message at a time, in log order, never two at once; a replica stopping on a failing message hands it to the other first", async () => {
      const ns = `s${Math.random().toString(36).slice(2, 8)}`;
      namespaces.push(ns);
      const [a, b] = [await JetStreamStream.connect(engines.nats!, ns, logger), await JetStreamStream.connect(engines.nats!, ns, logger)];
      for (let i = 0; i < 30; i++) await a.publish("r.s", { i }, { id: `r${i}` });
      const handled: { i: number; by: string }[] = [];
      let active = 0;
      let mostAtOnce = 0;
      let aTriedFive = false;
      let allDone!: () => void;
      const done = new Promise<void>((r) => (allDone = r));
      const handler = (by: string) => async (m: StreamMessage) => {
        const { i } = m.data as { i: number };
        active++;
        mostAtOnce = Math.max(mostAtOnce, active);
        await new Promise((r) => setTimeout(r, i % 3));
        active--;
        if (by === "a" && i === 5) {
          aTriedFive = true;
          throw new Error("a cannot handle 5");
        }
        handled.push({ i, by });
        if (handled.length === 30) allDone();
      };
      const subA = await a.consume({ durable: "shared", subject: "r.s", handler: handler("a") });
      await eventually(async () => aTriedFive, 15_000);
      // While the first replica keeps failing on 5, the second one, pulling too, is handed nothing.
      const subB = await b.consume({ durable: "shared", subject: "r.s", handler: handler("b") });
      await new Promise((r) => setTimeout(r, 500));
      expect(handled).toEqual([0, 1, 2, 3, 4].map((i) => ({ i, by: "a" })));
      await subA.stop();
      await Promise.race([done, new Promise((_, reject) => setTimeout(() => reject(new Error(`only ${handled.length} of 30`)), 20_000))]);
      await subB.stop();
      expect(handled.map((h) => h.i)).toEqual(Array.from({ length: 30 }, (_, i) => i));
      expect(mostAtOnce).toBe(1);
      expect(handled.find((h) => h.i === 5)?.by).toBe("b");
      await a.close();
      await b.close();
    });
  });

  afterAll(async () => {
    const nc = await connect({ servers: engines.nats! });
    const jsm = await nc.jetstreamManager();
    for (const ns of new Set(namespaces)) await jsm.streams.delete(`BAZAAR_${ns.toUpperCase()}`).catch(() => undefined);
    await nc.close();
  });
}

describe("retry delay", () => {
  it("backs off from 100 ms to a 5 s ceiling", () => {
    expect(retryDelay(0)).toBe(100);
    expect(retryDelay(3)).toBe(800);
    expect(retryDelay(50)).toBe(5000);
  });
});
