import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { connect } from "nats";
import pino from "pino";
import { afterAll, describe, expect, it, onTestFailed } from "vitest";
import { JetStreamStream } from "../src/platform/stream/jetstream.stream";
import type { Subscription } from "../src/platform/stream/stream";
import { type MatchingCommand, type MatchingEvent, type MatchingOutcome, MatchingSubjects } from "../src/services/exchange/matching/matching.contract";
import { BUY, FOK, GTC, IOC, LIMIT, type MatchSink, OrderBook, SELL } from "../src/services/exchange/matching/matching.domain";
import { type ChildNode, spawnNode } from "./support/child-node";
import { cleanEngines, engines, testConfig } from "./support/harness";
import { freePort } from "./support/net";

/**
 * Leader and standby: two matching engine processes follow one command log on NATS JetStream and
 * elect a leader on etcd. The leader is killed with SIGKILL under load; the standby must take over
 * within 3 s, and consumers must see every event sequence exactly once, equal to what a reference
 * engine in this process decides, with the survivor's book equal to the reference book.
 */
const config = testConfig();
const SYMBOLS = ["BTC-USDT", "ETH-USDT", "SOL-USDT"];
const TOTAL = 3000;
const KILL_AFTER = 900;
const BATCH = 30;

interface Engine {
  name: string;
  node: ChildNode;
  dataDir: string;
}
const running: Engine[] = [];

afterAll(async () => {
  for (const e of running) await e.node.stop();
  await cleanEngines(config);
  for (const e of running) rmSync(e.dataDir, { recursive: true, force: true });
});

/** An engine replica with its own data dir (its own book snapshots), as on its own machine. */
async function startEngine(replica: string): Promise<Engine> {
  const dataDir = mkdtempSync(path.join(tmpdir(), `bazaar-engine-${replica}-`));
  const node = spawnNode({ config: { ...config, dataDir }, name: `engine-${replica}`, services: "gateway,matching", port: await freePort(), env: { BAZAAR_REPLICA: replica, BAZAAR_LOG_LEVEL: "info" } });
  const engine = { name: replica, node, dataDir };
  running.push(engine);
  await node.ready(30_000);
  return engine;
}

const isLeading = (e: Engine) => e.node.lines.some((line) => line.includes('"msg":"leading"'));

async function until(check: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A deterministic mix over three symbols: limits at and through the touch, IOC, FOK and cancels. */
function workload(): MatchingCommand[] {
  let seed = 42;
  const next = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31);
  const ids = new Map<string, number>();
  const commands: MatchingCommand[] = [];
  for (let i = 0; i < TOTAL; i++) {
    const symbol = SYMBOLS[next() % SYMBOLS.length];
    const last = ids.get(symbol) ?? 0;
    const at = 1_780_000_000_000 + i;
    if (last > 10 && next() % 8 === 0) {
      commands.push({ kind: "CANCEL", symbol, orderId: 1 + (next() % last), at });
      continue;
    }
    ids.set(symbol, last + 1);
    const r = next() % 20;
    commands.push({
      kind: "PLACE",
      symbol,
      orderId: last + 1,
      account: 1 + (next() % 15),
      side: next() % 2 === 0 ? "BUY" : "SELL",
      type: "LIMIT",
      tif: r === 0 ? "FOK" : r < 3 ? "IOC" : "GTC",
      price: 990 + (next() % 21),
      quantity: 1 + (next() % 9),
      at,
    });
  }
  return commands;
}

/** What the engine must decide for each symbol, event by event, and the books it must end with. */
function reference(commands: MatchingCommand[]) {
  const events = new Map<string, string[]>();
  const books = new Map<string, OrderBook>();
  for (const symbol of SYMBOLS) {
    const out: string[] = [];
    events.set(symbol, out);
    const sink: MatchSink = {
      trade: (taker, maker, price, quantity) => void out.push(`T ${taker}>${maker} ${quantity}@${price}`),
      rested: (id, _side, price, remaining) => void out.push(`R ${id} ${remaining}@${price}`),
      ended: (id, _reason, remaining) => void out.push(`E ${id} ${remaining}`),
    };
    books.set(symbol, new OrderBook(sink));
  }
  const TIF = { GTC, IOC, FOK, POST_ONLY: GTC } as const;
  for (const c of commands) {
    const book = books.get(c.symbol)!;
    if (c.kind === "CANCEL") book.cancel(c.orderId);
    else book.place(c.orderId, c.account, c.side === "BUY" ? BUY : SELL, LIMIT, TIF[c.tif], c.price, c.quantity);
  }
  return { events, books };
}

const describeEvent = (e: MatchingEvent) =>
  e.kind === "TRADE" ? `T ${e.takerId}>${e.makerId} ${e.quantity}@${e.price}` : e.kind === "RESTED" ? `R ${e.orderId} ${e.remaining}@${e.price}` : `E ${e.orderId} ${e.remaining}`;

describe.skipIf(!engines.nats || !engines.etcd)("matching engine failover (NATS + etcd)", () => {
  it("the standby takes over within 3 s of a SIGKILL under load; every sequence reaches consumers exactly once", async () => {
    onTestFailed(() => {
      for (const e of running) process.stderr.write(`--- engine ${e.name}\n${e.node.lines.filter((l) => !l.includes('"level":30')).slice(-60).join("\n")}\n`);
    });
    const a = await startEngine("a");
    await until(() => isLeading(a), 10_000, "engine a leading");
    const b = await startEngine("b");

    const stream = await JetStreamStream.connect(engines.nats!, config.namespace, pino({ level: "warn" }));
    // Deliveries by stream position: a redelivery of one message is not a second outcome.
    const delivered = new Map<number, { outcome: MatchingOutcome; arrivedAt: number }>();
    const watcher: Subscription = await stream.consume({
      durable: "failover-watch",
      subject: MatchingSubjects.events,
      handler: async (m) => void delivered.set(m.seq, { outcome: m.data as MatchingOutcome, arrivedAt: performance.now() }),
    });
    const deliveredEvents = () => [...delivered.values()].flatMap((d) => d.outcome.events);

    const commands = workload();
    const expected = reference(commands);
    let killedAt = 0;
    let lastBeforeTakeover: Promise<number> | undefined;
    const nc = await connect({ servers: engines.nats! });
    const jsm = await nc.jetstreamManager();
    try {
      for (let i = 0; i < commands.length; i += BATCH) {
        await stream.publishAll(commands.slice(i, i + BATCH).map((c, j) => ({ subject: MatchingSubjects.commands, json: JSON.stringify(c), id: `cmd-${i + j}` })));
        if (i + BATCH >= KILL_AFTER && killedAt === 0) {
          void a.node.stop();
          killedAt = performance.now();
          // Once what the dead leader had sent has landed, the log's end marks where its messages stop.
          lastBeforeTakeover = new Promise((r) => setTimeout(r, 100)).then(async () => (await jsm.streams.info(`BAZAAR_${config.namespace.toUpperCase()}`)).state.last_seq);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      const total = [...expected.events.values()].reduce((n, list) => n + list.length, 0);
      await until(() => deliveredEvents().length >= total, 60_000, `all ${total} events delivered`);
      await new Promise((r) => setTimeout(r, 500));

      expect(isLeading(b)).toBe(true);
      // Each symbol's events: sequences 1..n, once each, exactly what the reference decided.
      const all = deliveredEvents();
      for (const symbol of SYMBOLS) {
        const mine = all.filter((e) => e.symbol === symbol);
        const seqs = mine.map((e) => e.seq).sort((x, y) => x - y);
        expect(seqs).toEqual(Array.from({ length: expected.events.get(symbol)!.length }, (_, k) => k + 1));
        expect(mine.sort((x, y) => x.seq - y.seq).map(describeEvent)).toEqual(expected.events.get(symbol));
        // The survivor's book is the reference book, level by level.
        const depth = (await b.node.api.get(`/api/exchange/depth?symbol=${symbol}&limit=500`)).body;
        const book = expected.books.get(symbol)!;
        expect({ bids: depth.bids, asks: depth.asks }).toEqual({ bids: book.levels(BUY, 500), asks: book.levels(SELL, 500) });
        expect(depth.sequence).toBe(seqs.length);
      }
      // The outage: from the kill to the arrival of the first event that only the standby can have published.
      const boundary = await lastBeforeTakeover!;
      const afterKill = [...delivered].filter(([position]) => position > boundary).map(([, d]) => d.arrivedAt);
      expect(afterKill.length).toBeGreaterThan(0);
      const takeoverMs = Math.min(...afterKill) - killedAt;
      process.stdout.write(`failover: standby published ${Math.round(takeoverMs)} ms after the leader was killed\n`);
      expect(takeoverMs).toBeLessThan(3000);
    } finally {
      await watcher.stop();
      await stream.close();
      await nc.close();
    }
  }, 120_000);
});
