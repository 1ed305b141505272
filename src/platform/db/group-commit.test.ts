import { spawn } from "node:child_process";
import { AsyncLocalStorage } from "node:async_hooks";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import SqliteDatabase from "better-sqlite3";
import { Kysely, SqliteDialect, sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { groupCommitMigrations, type GroupCommitTables } from "../../../test/support/group-commit-tables";
import { openServiceDb } from "./db";
import { GroupCommit } from "./group-commit";

const opened: { destroy(): Promise<void> }[] = [];
afterEach(async () => {
  for (const db of opened.splice(0)) await db.destroy();
});

/** A SQLite database whose transaction statements (begin, savepoint, commit…) are recorded in order. */
async function recorded() {
  const file = new SqliteDatabase(path.join(mkdtempSync(path.join(tmpdir(), "bazaar-gc-")), "gc.sqlite"));
  file.pragma("journal_mode = WAL");
  const statements: string[] = [];
  const db = new Kysely<GroupCommitTables>({
    dialect: new SqliteDialect({ database: file }),
    log: (event) => {
      statements.push(event.query.sql.toLowerCase());
    },
  });
  opened.push(db);
  await groupCommitMigrations["0001_pairs"].up(db);
  statements.length = 0;
  const count = (sql: string) => statements.filter((s) => s === sql).length;
  const ids = async () => (await db.selectFrom("pairs").select("id").where("half", "=", 1).orderBy("id").execute()).map((r) => r.id);
  return { db, file, statements, count, ids };
}

const insertPair = (id: string) => async (trx: Kysely<GroupCommitTables>) => {
  await trx.insertInto("pairs").values({ id, half: 1 }).execute();
  await trx.insertInto("pairs").values({ id, half: 2 }).execute();
  return id;
};

describe("group commit", () => {
  it("commits transactions that arrive together once, each answered with its own value", async () => {
    const { db, file, statements, count, ids } = await recorded();
    const group = new GroupCommit(db, () => file.inTransaction);
    const answers = await Promise.all(["a", "b", "c", "d", "e"].map((id) => group.run(insertPair(id))));
    expect(answers).toEqual(["a", "b", "c", "d", "e"]);
    expect(await ids()).toEqual(["a", "b", "c", "d", "e"]);
    // The first waited a turn for company: all five, started in the same turn, commit as one.
    expect(count("commit")).toBe(1);
    expect(statements.filter((sql) => sql.startsWith("savepoint"))).toEqual([]);
  });

  it("fails a failing transaction alone: its caller gets its error, those undone with it run again and commit", async () => {
    const { db, file, count, ids } = await recorded();
    const group = new GroupCommit(db, () => file.inTransaction);
    const failing = async (trx: Kysely<GroupCommitTables>) => {
      await trx.insertInto("pairs").values({ id: "x", half: 1 }).execute();
      throw new Error("refused after writing");
    };
    const runs = new Map<string, number>();
    const counted = (id: string) => async (trx: Kysely<GroupCommitTables>) => {
      runs.set(id, (runs.get(id) ?? 0) + 1);
      return `${await insertPair(id)(trx)}#${runs.get(id)}`;
    };
    const outcomes = await Promise.allSettled([group.run(counted("a")), group.run(counted("b")), group.run(failing), group.run(counted("c"))]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "fulfilled", "rejected", "fulfilled"]);
    expect((outcomes[2] as PromiseRejectedResult).reason.message).toBe("refused after writing");
    // a and b ran before the failure and were undone with it: each ran again, and answers its second run.
    expect(outcomes.map((o) => (o.status === "fulfilled" ? o.value : null))).toEqual(["a#2", "b#2", null, "c#1"]);
    expect(await ids()).toEqual(["a", "b", "c"]);
    expect(count("rollback")).toBe(1);
    expect(count("commit")).toBe(1);
  });

  it("after a failure, gives each member of the next groups a savepoint: one that fails there is rolled back alone", async () => {
    const { db, file, statements, ids } = await recorded();
    const group = new GroupCommit(db, () => file.inTransaction);
    const failing = (id: string) => async (trx: Kysely<GroupCommitTables>) => {
      await trx.insertInto("pairs").values({ id, half: 1 }).execute();
      throw new Error(`refused ${id}`);
    };
    const runs = new Map<string, number>();
    const counted = (id: string) => async (trx: Kysely<GroupCommitTables>) => {
      runs.set(id, (runs.get(id) ?? 0) + 1);
      return insertPair(id)(trx);
    };
    await Promise.allSettled([group.run(counted("a")), group.run(failing("x"))]);
    statements.length = 0;
    const outcomes = await Promise.allSettled([group.run(counted("b")), group.run(failing("y")), group.run(counted("c"))]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    // b ran once: y was rolled back to its own savepoint, not the group's whole transaction.
    expect(Object.fromEntries(runs)).toEqual({ a: 2, b: 1, c: 1 });
    expect(statements.filter((sql) => sql === "savepoint member")).toHaveLength(3);
    expect(statements.filter((sql) => sql === "rollback")).toEqual([]);
    expect(await ids()).toEqual(["a", "b", "c"]);
  });

  it("answers a grouped transaction only after the commit that made it durable", async () => {
    const { db, file, statements } = await recorded();
    const group = new GroupCommit(db, () => file.inTransaction);
    const answeredAfter: number[] = [];
    await Promise.all(["a", "b", "c"].map((id) => group.run(insertPair(id)).then(() => answeredAfter.push(statements.lastIndexOf("commit")))));
    // Each answer came after a commit, and after the commit of its own group (the last statement logged).
    expect(answeredAfter.every((at) => at >= 0)).toBe(true);
    expect(answeredAfter.slice(1)).toEqual([statements.length - 1, statements.length - 1]);
  });

  it("starts a new group for work arriving while one commits, so a steady stream cannot hold a group open", async () => {
    const { db, file, count, ids } = await recorded();
    const group = new GroupCommit(db, () => file.inTransaction);
    const later: Promise<string>[] = [];
    // Each of the first four queues another transaction while it runs.
    const first = [0, 1, 2, 3].map((i) =>
      group.run(async (trx) => {
        later.push(group.run(insertPair(`later-${i}`)));
        return insertPair(`first-${i}`)(trx);
      }),
    );
    await Promise.all(first);
    await Promise.all(later);
    expect(await ids()).toHaveLength(8);
    // first-0..3 together; later-0..3, queued while that group ran, in a second. Had a running group
    // taken newcomers in, there would be one.
    expect(count("commit")).toBe(2);
  });

  it("fails the member under which the transaction ended, and runs the rest of its group again in the next", async () => {
    const { db, file, ids } = await recorded();
    const group = new GroupCommit(db, () => file.inTransaction);
    // A member that ends the transaction under the group (as a lost connection or a full disk would).
    const breaking = async (trx: Kysely<GroupCommitTables>) => {
      await trx.insertInto("pairs").values({ id: "broken", half: 1 }).execute();
      await sql`rollback`.execute(trx);
    };
    await group.run(insertPair("alone"));
    const outcomes = await Promise.allSettled([group.run(insertPair("before")), group.run(breaking), group.run(insertPair("after"))]);
    expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((outcomes[1] as PromiseRejectedResult).reason.message).toMatch(/transaction ended/);
    // Nothing of the broken member is kept; the one before it ran again, and the one after, in the next group.
    expect(await ids()).toEqual(["after", "alone", "before"]);
  });

  it("runs each transaction in its caller's async context", async () => {
    const { db, file } = await recorded();
    const group = new GroupCommit(db, () => file.inTransaction);
    const lane = new AsyncLocalStorage<string>();
    const seen = await Promise.all(["blue", "green", "blue"].map((name, i) => lane.run(name, () => group.run(async (trx) => (await insertPair(`${i}`)(trx), lane.getStore())))));
    expect(seen).toEqual(["blue", "green", "blue"]);
  });

  it("loses no answered transaction and keeps none half-applied when the process is killed mid-group", async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), "bazaar-gc-crash-"));
    const child = spawn(process.execPath, ["--require", "tsx/cjs", path.resolve("test/support/group-commit-node.ts"), dataDir], { stdio: ["ignore", "pipe", "pipe"] });
    const acked: string[] = [];
    let errors = "";
    child.stdout.on("data", (chunk: Buffer) => {
      for (const line of String(chunk).split("\n")) if (line.startsWith("acked ")) acked.push(line.slice(6));
    });
    child.stderr.on("data", (chunk: Buffer) => (errors += String(chunk)));
    const exited = new Promise((resolve) => child.once("exit", resolve));
    // Killed while writing: once it has answered a few hundred transactions, at no chosen boundary.
    while (acked.length < 300 && child.exitCode === null) await new Promise((r) => setTimeout(r, 5));
    child.kill("SIGKILL");
    await exited;
    expect(errors).toBe("");
    const sdb = await openServiceDb<GroupCommitTables>({ dataDir, namespace: "crash" }, "groupcommit", groupCommitMigrations);
    opened.push(sdb.db);
    const rows = await sdb.db.selectFrom("pairs").select(["id", "half"]).execute();
    const halves = new Map<string, number>();
    for (const r of rows) halves.set(r.id, (halves.get(r.id) ?? 0) + 1);
    expect([...halves.values()].every((n) => n === 2)).toBe(true);
    const missing = acked.filter((id) => !halves.has(id));
    expect(missing).toEqual([]);
  }, 60_000);
});
