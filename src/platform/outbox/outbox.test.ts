import type { Kysely } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { cleanEngines, engines, eventually, testConfig } from "../../../test/support/harness";
import { ManualClock } from "../clock/clock";
import { createPlatform, type Platform } from "../runtime/platform";
import type { ServiceHost } from "../runtime/service-host";
import type { StreamMessage } from "../stream/stream";
import { openServiceDb } from "../db/db";
import { handleBatchOnce, handleOnce, type OutboxTables, platformMigrations, writeOutbox } from "./outbox";

interface Tables extends OutboxTables {
  notes: { id: string; body: string };
}

const migrations = {
  "0001_notes": {
    async up(db: Kysely<any>) {
      await db.schema.createTable("notes").addColumn("id", "varchar(40)", (c) => c.primaryKey()).addColumn("body", "text").execute();
    },
  },
};

let platform: Platform | undefined;
const hosts: ServiceHost<Tables>[] = [];
afterEach(async () => {
  for (const h of hosts.splice(0)) await h.stop();
  if (platform) {
    await platform.close();
    await cleanEngines(platform.config);
    platform = undefined;
  }
});

async function setup() {
  platform = await createPlatform(testConfig(), { clock: new ManualClock(), processMetrics: false });
  const writer = platform.host<Tables>("writer", migrations);
  const reader = platform.host<Tables>("reader", migrations);
  hosts.push(writer, reader);
  return { writer, reader, platform };
}

/** `setup`, the reader noting the id of each `notes.created` it consumes; both started. */
async function startedWithIdsSeen() {
  const { writer, reader } = await setup();
  const seen: string[] = [];
  reader.consume("notes.created", async (_trx, m) => {
    seen.push((m.data as { id: string }).id);
  });
  await writer.start();
  await reader.start();
  return { writer, seen };
}

describe("outbox and inbox", () => {
  it("publishes exactly the events of committed transactions", async () => {
    const { writer, reader } = await setup();
    const seen: unknown[] = [];
    reader.consume("notes.created", async (trx, m) => {
      seen.push(m.data);
      await trx.insertInto("notes").values({ id: (m.data as { id: string }).id, body: "copy" }).execute();
    });
    await writer.start();
    await reader.start();
    await writer.tx(async (trx, emit) => {
      await trx.insertInto("notes").values({ id: "n1", body: "hello" }).execute();
      emit("notes.created", { id: "n1" }, "evt-n1");
    });
    await expect(
      writer.tx(async (trx, emit) => {
        await trx.insertInto("notes").values({ id: "n2", body: "rolled back" }).execute();
        emit("notes.created", { id: "n2" }, "evt-n2");
        throw new Error("abort");
      }),
    ).rejects.toThrow("abort");
    for (let i = 0; i < 200 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toEqual([{ id: "n1" }]);
    expect(await reader.db.selectFrom("notes").select("id").execute()).toEqual([{ id: "n1" }]);
    expect(await writer.db.selectFrom("outbox").selectAll().execute()).toEqual([]);
  });

  it("publishes in seq order an event committed without being handed to the relay: it reads the table over the gap", async () => {
    const { writer, seen } = await startedWithIdsSeen();
    await writer.tx(async (_trx, emit) => emit("notes.created", { id: "a" }, "evt-a"));
    await eventually(async () => seen.length === 1);
    // Committed behind the host's back: the relay is told nothing of it.
    await writer.db.transaction().execute((trx) => writeOutbox(trx, [{ subject: "notes.created", data: { id: "b" }, id: "evt-b" }], 0));
    await writer.tx(async (_trx, emit) => emit("notes.created", { id: "c" }, "evt-c"));
    await eventually(async () => seen.length === 3);
    expect(seen).toEqual(["a", "b", "c"]);
    expect(await writer.db.selectFrom("outbox").selectAll().execute()).toEqual([]);
  });

  // SQLite runs one writer at a time, so only the server engines can commit out of seq order.
  it.skipIf(!testConfig().dbUrl)("publishes an event whose transaction took a lower seq but committed after a relay pass", async () => {
    const { writer, seen } = await startedWithIdsSeen();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let wrote!: () => void;
    const written = new Promise<void>((r) => (wrote = r));
    const slow = writer.db.transaction().execute(async (trx) => {
      await writeOutbox(trx, [{ subject: "notes.created", data: { id: "slow" }, id: "evt-slow" }], 0);
      wrote();
      await held;
    });
    await written;
    await writer.tx(async (_trx, emit) => emit("notes.created", { id: "fast" }, "evt-fast"));
    for (let i = 0; i < 200 && !seen.includes("fast"); i++) await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual(["fast"]);
    release();
    await slow;
    for (let i = 0; i < 200 && !seen.includes("slow"); i++) await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual(["fast", "slow"]);
  });

  it("runs a consumer's after-commit work once its message's transaction has committed, never for one rolled back", async () => {
    const { writer, reader } = await setup();
    const log: string[] = [];
    let failures = 1;
    reader.consume("notes.after", async (trx, m, _emit, afterCommit) => {
      const { id } = m.data as { id: string };
      await trx.insertInto("notes").values({ id, body: "copy" }).execute();
      afterCommit(async () => {
        // The note is committed by now: another connection sees it.
        const row = await reader.db.selectFrom("notes").select("id").where("id", "=", id).executeTakeFirst();
        log.push(`${id}:${row ? "committed" : "missing"}`);
      });
      if (id === "a2" && failures-- > 0) throw new Error("rolled back once");
    });
    await writer.start();
    await reader.start();
    for (const id of ["a1", "a2", "a3"]) await writer.tx(async (_trx, emit) => emit("notes.after", { id }, `evt-${id}`));
    await eventually(async () => log.length === 3);
    await new Promise((r) => setTimeout(r, 100));
    // JetStream redelivers a failed message after those behind it.
    expect(log.sort()).toEqual(["a1:committed", "a2:committed", "a3:committed"]);
  });

  it("applies a redelivered message once", async () => {
    const { reader, platform } = await setup();
    await reader.start();
    const message: StreamMessage = { id: "dup-1", subject: "s", data: {}, headers: {}, seq: 1 };
    let applied = 0;
    const apply = async (trx: Kysely<Tables>) => {
      applied++;
      await trx.insertInto("notes").values({ id: `x${applied}`, body: "" }).execute();
    };
    expect(await handleOnce(reader.store, "c", message, platform.clock.now(), apply)).toBe(true);
    expect(await handleOnce(reader.store, "c", message, platform.clock.now(), apply)).toBe(false);
    expect(await handleOnce(reader.store, "other", message, platform.clock.now(), apply)).toBe(true);
    expect(applied).toBe(2);
  });

  it("applies a batch in one transaction: each new message once, in order, or none of them", async () => {
    const { reader, platform } = await setup();
    await reader.start();
    const m = (id: string, seq: number): StreamMessage => ({ id, subject: "s", data: { id }, headers: {}, seq });
    await handleOnce(reader.store, "c", m("b1", 1), platform.clock.now(), async () => undefined);
    const order: string[] = [];
    const apply = async (trx: Kysely<Tables>, message: StreamMessage) => {
      order.push(message.id);
      await trx.insertInto("notes").values({ id: message.id, body: "" }).execute();
    };
    const done = async () => undefined;
    const applied = await handleBatchOnce(reader.store, "c", [m("b1", 1), m("b2", 2), m("b3", 3), m("b2", 4)], platform.clock.now(), apply, done);
    expect(applied.map((x) => x.id)).toEqual(["b2", "b3"]);
    expect(order).toEqual(["b2", "b3"]);
    // A failure anywhere undoes the batch, inbox rows included.
    await expect(
      handleBatchOnce(reader.store, "c", [m("b4", 5), m("b3", 6), m("b5", 7)], platform.clock.now(), apply, async () => {
        throw new Error("outbox write failed");
      }),
    ).rejects.toThrow("outbox write failed");
    expect((await reader.db.selectFrom("notes").select("id").orderBy("id").execute()).map((r) => r.id)).toEqual(["b2", "b3"]);
    expect((await reader.db.selectFrom("inbox").select("event_id").orderBy("event_id").execute()).map((r) => r.event_id)).toEqual(["b1", "b2", "b3"]);
  });

  it("consumes a backlog in batches; a message that fails is tried again before those after it, each failure counted", async () => {
    const { writer, reader, platform } = await setup();
    await writer.start();
    for (let i = 0; i < 40; i++) await writer.tx(async (_trx, emit) => emit("notes.burst", { i }, `burst-${i}`));
    const handled: number[] = [];
    const transactions = new Map<unknown, number>();
    let failures = 0;
    reader.consume("notes.burst", async (trx, message) => {
      const { i } = message.data as { i: number };
      // The 17th fails twice, then goes through.
      if (i === 17 && failures < 2) {
        failures++;
        throw new Error("not yet");
      }
      transactions.set(trx, (transactions.get(trx) ?? 0) + 1);
      await trx.insertInto("notes").values({ id: `burst-${i}`, body: "" }).execute();
      handled.push(i);
    });
    await reader.start();
    const count = async () => (await reader.db.selectFrom("notes").select((eb) => eb.fn.countAll<number>().as("n")).executeTakeFirstOrThrow()).n;
    await eventually(async () => Number(await count()) === 40, 20_000);
    const committed = (await reader.db.selectFrom("notes").select("id").execute()).map((r) => Number(r.id.slice(6))).sort((a, b) => a - b);
    expect(committed).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(failures).toBe(2);
    // In log order, each once among what committed (a rolled-back batch's work is redone, not kept).
    const last = new Map<number, number>();
    handled.forEach((i, at) => last.set(i, at));
    expect([...last.keys()].sort((a, b) => a - b)).toEqual(committed);
    // The embedded log hands the backlog over in batches: some transaction applied several messages.
    if (!engines.nats) expect(Math.max(...transactions.values())).toBeGreaterThan(1);
    // Counted as the log saw them: once a try (in a batch, the first failure only sends the batch one by one).
    const counted = (await platform.metrics.registry.getSingleMetric("bazaar_stream_handler_failures_total")!.get()).values;
    const [tries] = counted.filter((v) => v.labels.consumer === "reader" && v.labels.subject === "notes.burst").map((v) => v.value);
    expect(tries).toBeGreaterThanOrEqual(1);
    expect(tries).toBeLessThanOrEqual(2);
  });

  it("forgets inbox rows only once their messages are past the log's retention", async () => {
    const { reader, platform } = await setup();
    await reader.start();
    const message: StreamMessage = { id: "aged", subject: "s", data: {}, headers: {}, seq: 1 };
    await handleOnce(reader.store, "c", message, platform.clock.now(), async () => undefined);
    expect(await reader.pruneInbox()).toBe(0);
    (platform.clock as ManualClock).advance(8 * 86_400_000 + 1);
    expect(await reader.pruneInbox()).toBe(1);
  });

  it("redelivers, rather than drops, a message whose own write conflicts", async () => {
    const { reader, platform } = await setup();
    await reader.start();
    await reader.db.insertInto("notes").values({ id: "taken", body: "" }).execute();
    const message: StreamMessage = { id: "m-conflict", subject: "s", data: {}, headers: {}, seq: 1 };
    await expect(
      handleOnce(reader.store, "c", message, platform.clock.now(), async (trx) => {
        await trx.insertInto("notes").values({ id: "taken", body: "" }).execute();
      }),
    ).rejects.toBeTruthy();
    const inbox = await reader.db.selectFrom("inbox").selectAll().execute();
    expect(inbox).toEqual([]);
  });

  it("refuses to use a database before the service started", async () => {
    const { writer } = await setup();
    expect(() => writer.db).toThrow(/before the service started/);
  });
});

describe("transactions", () => {
  it("run again when the engine picks them as a deadlock victim", async () => {
    const { writer } = await setup();
    await writer.start();
    await writer.db.insertInto("notes").values([{ id: "a", body: "" }, { id: "b", body: "" }]).execute();
    let arrived = 0;
    // Each waits (briefly: SQLite runs one writer at a time) until both hold their first row, then
    // reaches for the other's row: on MySQL and PostgreSQL one of them is rolled back and retried.
    const bothHoldOne = () =>
      new Promise<void>((resolve) => {
        arrived++;
        const started = Date.now();
        const poll = () => (arrived >= 2 || Date.now() - started > 300 ? resolve() : setTimeout(poll, 5));
        poll();
      });
    const crossing = (first: string, second: string, mark: string) =>
      writer.tx(async (trx) => {
        await trx.updateTable("notes").set({ body: mark }).where("id", "=", first).execute();
        await bothHoldOne();
        await trx.updateTable("notes").set({ body: mark }).where("id", "=", second).execute();
        return mark;
      });
    expect(await Promise.all([crossing("a", "b", "x"), crossing("b", "a", "y")])).toEqual(["x", "y"]);
    const rows = await writer.db.selectFrom("notes").select("body").execute();
    expect(new Set(rows.map((r) => r.body)).size).toBe(1);
  });
});

describe("outbox migrations", () => {
  it("take the unique key off event ids, keeping the waiting rows and the sequence", async () => {
    const config = testConfig();
    const { "0000_platform_outbox_without_unique_ids": unkeyed, ...before } = platformMigrations;
    const old = await openServiceDb<OutboxTables>(config, "outboxmigration", before);
    const write = (db: Kysely<OutboxTables>, id: string) => writeOutbox(db, [{ subject: "notes.created", data: { id }, id }], 0);
    await old.db.transaction().execute(async (trx) => {
      await write(trx, "evt-1");
      await write(trx, "evt-2");
      await write(trx, "evt-3");
    });
    await old.db.deleteFrom("outbox").where("event_id", "in", ["evt-2", "evt-3"]).execute();
    await old.close();
    const migrated = await openServiceDb<OutboxTables>(config, "outboxmigration", { ...before, "0000_platform_outbox_without_unique_ids": unkeyed });
    try {
      await migrated.db.transaction().execute((trx) => write(trx, "evt-1"));
      const rows = await migrated.db.selectFrom("outbox").select(["seq", "event_id"]).orderBy("seq").execute();
      expect(rows.map((r) => r.event_id)).toEqual(["evt-1", "evt-1"]);
      // Past every seq given out before, the deleted rows' too.
      expect(Number(rows[1].seq)).toBeGreaterThan(Number(rows[0].seq) + 2);
    } finally {
      await migrated.close();
      await cleanEngines(config);
    }
  });
});

describe("service logs", () => {
  it("carry the trace id of the request the work belongs to", async () => {
    const { writer } = await setup();
    const bound = writer.loggerFor({ requestID: "trace-7" }) as unknown as { bindings(): Record<string, unknown> };
    expect(bound.bindings()).toMatchObject({ svc: "writer", traceId: "trace-7" });
    expect(writer.loggerFor({})).toBe(writer.logger);
  });
});
