import { readdirSync, readlinkSync, statSync } from "node:fs";
import path from "node:path";
import SqliteDatabase from "better-sqlite3";
import { type Kysely, type KyselyPlugin, sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanEngines, eventually, testConfig } from "../../../test/support/harness";
import { createPartialIndex, dropIndex, executeCompiled, isUniqueViolation, openServiceDb, type PartialCondition, partialTerm, type ServiceDb } from "./db";

interface Tables {
  totals: { owner: string; asset: string; amount: string; touched: number; created: number };
}

const config = testConfig();
let sdb: ServiceDb<Tables>;

beforeAll(async () => {
  sdb = await openServiceDb<Tables>(config, "dbtest", {
    "0001": {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable("totals")
          .addColumn("owner", "varchar(32)", (c) => c.notNull())
          .addColumn("asset", "varchar(16)", (c) => c.notNull())
          .addColumn("amount", "varchar(48)", (c) => c.notNull())
          .addColumn("touched", "bigint", (c) => c.notNull())
          .addColumn("created", "bigint", (c) => c.notNull())
          .addPrimaryKeyConstraint("totals_pk", ["owner", "asset"])
          .execute();
      },
    },
  });
});

afterAll(async () => {
  await sdb.close();
  await cleanEngines(config);
});

describe("upsert", () => {
  it("inserts new rows and updates only the named columns of existing ones, many rows in one statement", async () => {
    const put = (rows: Tables["totals"][]) => sdb.upsert(sdb.db.insertInto("totals").values(rows), ["owner", "asset"], ["amount", "touched"]).execute();
    await put([
      { owner: "a", asset: "BTC", amount: "1", touched: 1, created: 1 },
      { owner: "a", asset: "ETH", amount: "2", touched: 1, created: 1 },
    ]);
    await put([
      { owner: "a", asset: "BTC", amount: "10", touched: 2, created: 2 },
      { owner: "b", asset: "BTC", amount: "3", touched: 2, created: 2 },
    ]);
    const rows = await sdb.db.selectFrom("totals").selectAll().orderBy("owner").orderBy("asset").execute();
    expect(rows.map((r) => [r.owner, r.asset, r.amount, Number(r.touched), Number(r.created)])).toEqual([
      ["a", "BTC", "10", 2, 1],
      ["a", "ETH", "2", 1, 1],
      ["b", "BTC", "3", 2, 2],
    ]);
  });
});

describe("partial indexes", () => {
  it("keep the rows their condition names, and serve the queries that name it with partialTerm", async () => {
    const db = sdb.db as Kysely<any>;
    await db.schema
      .createTable("flagged")
      .addColumn("id", "integer", (c) => c.primaryKey())
      .addColumn("tag", "varchar(16)")
      .addColumn("score", "bigint", (c) => c.notNull())
      .addColumn("at", "bigint", (c) => c.notNull())
      .execute();
    const conditions: PartialCondition[] = [
      { column: "tag", values: ["a"] },
      { column: "tag", values: ["b", "c"] },
      { column: "score", above: 5 },
      { column: "tag", notNull: true },
    ];
    await db.insertInto("flagged").values([
      { id: 1, tag: "a", score: 1, at: 20 },
      { id: 2, tag: "c", score: 9, at: 20 },
      { id: 3, tag: null, score: 3, at: 20 },
    ]).execute();
    const found = async (where: PartialCondition) => (await db.selectFrom("flagged").select("id").where(partialTerm(where)).orderBy("id").execute()).map((r) => Number(r.id));
    // Each index alone, so the plan can only pick it or none.
    for (const [i, where] of conditions.entries()) {
      await createPartialIndex(db, `flagged_${i}`, "flagged", ["at"], where);
      expect(await found(where)).toEqual([[1], [2], [2], [1, 2]][i]);
      if (!config.dbUrl) {
        const query = db.selectFrom("flagged").select("id").where(partialTerm(where)).where("at", "=", sql.lit(20)).compile();
        const plan = (await sql.raw<{ detail: string }>(`explain query plan ${query.sql}`).execute(db)).rows;
        expect(plan.map((p) => p.detail).join()).toMatch(new RegExp(`USING (COVERING )?INDEX flagged_${i}\\b`));
      }
      await dropIndex(db, `flagged_${i}`, "flagged");
    }
  });
});

describe("compiled queries in a transaction", () => {
  it("answer as Kysely answers them (rows, rows changed, the inserted row), and roll back with the transaction", async () => {
    const run = async (owner: string, via: (trx: Kysely<Tables>, q: Parameters<typeof executeCompiled>[1]) => ReturnType<typeof executeCompiled>) =>
      sdb.db.transaction().execute(async (trx) => {
        const inserted = await via(trx, trx.insertInto("totals").values({ owner, asset: "BTC", amount: "5", touched: 1, created: 1 }).compile());
        const updated = await via(trx, trx.updateTable("totals").set({ amount: "6" }).where("owner", "=", owner).compile());
        const none = await via(trx, trx.updateTable("totals").set({ amount: "7" }).where("owner", "=", `${owner}-nobody`).compile());
        const read = await via(trx, trx.selectFrom("totals").select(["owner", "amount"]).where("owner", "=", owner).compile());
        return { inserted: inserted.numAffectedRows, updated: updated.numAffectedRows, none: none.numAffectedRows, rows: read.rows };
      });
    const direct = await run("direct", (trx, q) => executeCompiled(trx, q));
    const kysely = await run("kysely", (trx, q) => trx.executeQuery(q));
    expect(direct).toEqual({ inserted: 1n, updated: 1n, none: 0n, rows: [{ owner: "direct", amount: "6" }] });
    expect(kysely).toEqual({ inserted: 1n, updated: 1n, none: 0n, rows: [{ owner: "kysely", amount: "6" }] });
    // A statement the engine refuses is a rejection, as through Kysely, never a throw at the call.
    const refused = executeCompiled(sdb.db, sdb.db.insertInto("totals").values({ owner: "direct", asset: "BTC", amount: "1", touched: 1, created: 1 }).compile());
    expect(refused).toBeInstanceOf(Promise);
    await expect(refused).rejects.toSatisfy(isUniqueViolation);
    await expect(
      sdb.db.transaction().execute(async (trx) => {
        await executeCompiled(trx, trx.insertInto("totals").values({ owner: "undone", asset: "BTC", amount: "1", touched: 1, created: 1 }).compile());
        throw new Error("changed my mind");
      }),
    ).rejects.toThrow("changed my mind");
    expect(await sdb.db.selectFrom("totals").select("owner").where("owner", "=", "undone").execute()).toEqual([]);
  });

  it("outside a transaction, never see what an open one has written and not committed", async () => {
    const read = () => executeCompiled(sdb.db, sdb.db.selectFrom("totals").select("owner").where("owner", "=", "pending").compile());
    let duringTransaction: Promise<{ rows: unknown[] }> | undefined;
    await expect(
      sdb.db.transaction().execute(async (trx) => {
        await executeCompiled(trx, trx.insertInto("totals").values({ owner: "pending", asset: "BTC", amount: "1", touched: 1, created: 1 }).compile());
        duringTransaction = read();
        // The read gets its turn while this transaction is still open.
        await new Promise((resolve) => setImmediate(resolve));
        throw new Error("rolled back");
      }),
    ).rejects.toThrow("rolled back");
    expect((await duringTransaction!).rows).toEqual([]);
    // With no transaction open, the same read runs at once and sees what is committed.
    await sdb.db.insertInto("totals").values({ owner: "pending", asset: "BTC", amount: "1", touched: 1, created: 1 }).execute();
    expect((await read()).rows).toEqual([{ owner: "pending" }]);
  });

  it("keep what a plugin does to results", async () => {
    const marking: KyselyPlugin = {
      transformQuery: (args) => args.node,
      transformResult: async (args) => ({ ...args.result, rows: args.result.rows.map((r) => ({ ...r, marked: true })) }),
    };
    const rows = await sdb.db
      .withPlugin(marking)
      .transaction()
      .execute(async (trx) => (await executeCompiled(trx, trx.selectFrom("totals").select("owner").where("owner", "=", "direct").compile())).rows);
    expect(rows).toEqual([{ owner: "direct", marked: true }]);
  });
});

describe.runIf(!config.dbUrl)("the embedded store's files", () => {
  const migrations = {
    "0001": {
      async up(db: Kysely<any>) {
        await db.schema.createTable("notes").addColumn("id", "integer", (c) => c.primaryKey()).addColumn("body", "text", (c) => c.notNull()).execute();
      },
    },
  };

  it("answer rows the shape better-sqlite3 gives them, though built from its raw arrays: a later column of the same name wins, any name works, streams too", async () => {
    const notes = await openServiceDb<{ notes: { id: number; body: string } }>(config, "rowtest", migrations);
    await notes.db.insertInto("notes").values([{ id: 1, body: "one" }, { id: 2, body: "two" }]).execute();
    const text = `select id, body, id * 10 as "id", 'x' as "we""ird name", null as "nothing" from notes order by id`;
    const own = new SqliteDatabase(path.join(config.dataDir, `${notes.name}.sqlite`), { readonly: true });
    const expected = own.prepare(text).all();
    own.close();
    expect(expected).toEqual([
      { id: 10, body: "one", 'we"ird name': "x", nothing: null },
      { id: 20, body: "two", 'we"ird name': "x", nothing: null },
    ]);
    expect((await sql.raw(text).execute(notes.db)).rows).toEqual(expected);
    expect(await notes.db.transaction().execute(async (trx) => (await executeCompiled(trx, sql.raw(text).compile(trx))).rows)).toEqual(expected);
    const streamed: unknown[] = [];
    for await (const row of notes.db.selectFrom("notes").select(["id", "body"]).orderBy("id").stream()) streamed.push(row);
    expect(streamed).toEqual([{ id: 1, body: "one" }, { id: 2, body: "two" }]);
    await notes.close();
  });

  it("belong to one owner at a time: a second opening of a service's file fails with a clear error until the first closes", async () => {
    const first = await openServiceDb(config, "claimtest", migrations);
    await expect(openServiceDb(config, "claimtest", migrations)).rejects.toThrow("its SQLite file is held by another process");
    await first.close();
    const second = await openServiceDb(config, "claimtest", migrations);
    await second.close();
  });

  it("keep a savepoint's undo pages in memory: a savepoint-wrapped write of hundreds of pages opens no temporary file", async () => {
    const notes = await openServiceDb<{ notes: { id: number; body: string } }>(config, "savepointtest", migrations);
    await notes.db.insertInto("notes").values(Array.from({ length: 200 }, (_, id) => ({ id, body: "x".repeat(3000) }))).execute();
    // SQLite names its temporary files etilqs_* and unlinks them at once; an open one still shows among the fds.
    const temporaryFiles = () =>
      readdirSync("/proc/self/fd").filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`).includes("etilqs_");
        } catch {
          return false;
        }
      });
    const during = await notes.db.transaction().execute(async (trx) => {
      // A savepoint as group commit wraps a member in after a failure; its 200 changed pages are ~800 KB of undo,
      // far past the 64 KB SQLite keeps in memory by default.
      await sql`savepoint member`.execute(trx);
      await trx.updateTable("notes").set({ body: "y".repeat(3000) }).execute();
      const open = temporaryFiles();
      await sql`release savepoint member`.execute(trx);
      return open;
    });
    expect(during).toEqual([]);
    expect((await notes.db.selectFrom("notes").select("body").where("id", "=", 199).executeTakeFirstOrThrow()).body).toBe("y".repeat(3000));
    await notes.close();
  });

  it("are checkpointed off the event loop: the WAL's pages reach the database file without the service's connection copying them", async () => {
    const notes = await openServiceDb<{ notes: { id: number; body: string } }>(config, "checkpointtest", migrations);
    const file = path.join(config.dataDir, `${notes.name}.sqlite`);
    const before = statSync(file).size;
    // ~1,500 pages: past the size at which a WAL is handed to the checkpointer, far below the
    // connection's own backstop of 10,000.
    await notes.db.transaction().execute(async (trx) => {
      for (let i = 0; i < 1500; i++) await trx.insertInto("notes").values({ id: i, body: "x".repeat(3000) }).execute();
    });
    await eventually(async () => statSync(file).size > before + 4_000_000, 20_000);
    await notes.close();
  });
});

describe.runIf(config.dbUrl)("the connection pool on a server engine", () => {
  it("opens at most BAZAAR_DB_POOL connections, however many queries wait", async () => {
    const small = testConfig({ dbPool: 2 });
    const pooled = await openServiceDb<Tables>(small, "dbpooltest", {});
    try {
      const postgres = small.dbUrl!.startsWith("postgres");
      const session = postgres ? sql<{ id: number }>`select pg_backend_pid() as id, pg_sleep(0.05)` : sql<{ id: number }>`select connection_id() as id, sleep(0.05)`;
      const ids = await Promise.all(Array.from({ length: 8 }, async () => Number((await session.execute(pooled.db)).rows[0].id)));
      expect(new Set(ids).size).toBe(2);
    } finally {
      await pooled.close();
      await cleanEngines(small);
    }
  });
});
