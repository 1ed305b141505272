import type { Generated, Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanEngines, testConfig } from "../../../test/support/harness";
import { openServiceDb, type ServiceDb, withAutoId } from "./db";
import { prepare } from "./prepared";

interface Tables {
  items: { tenant_id: string; sku: string; quantity: number; note: string | null };
  plain: { id: number; label: string; kind: string };
  numbered: { id: Generated<number>; label: string };
}
type Db = Kysely<Tables>;

const config = testConfig();
let sdb: ServiceDb<Tables>;

beforeAll(async () => {
  sdb = await openServiceDb<Tables>(
    config,
    "preparedtest",
    {
      "0001": {
        async up(db: Kysely<any>) {
          await db.schema
            .createTable("items")
            .addColumn("tenant_id", "varchar(32)", (c) => c.notNull())
            .addColumn("sku", "varchar(32)", (c) => c.notNull())
            .addColumn("quantity", "bigint", (c) => c.notNull())
            .addColumn("note", "varchar(64)")
            .addPrimaryKeyConstraint("items_pk", ["tenant_id", "sku"])
            .execute();
          await db.schema
            .createTable("plain")
            .addColumn("id", "integer", (c) => c.primaryKey())
            .addColumn("label", "varchar(64)", (c) => c.notNull())
            .addColumn("kind", "varchar(16)", (c) => c.notNull())
            .execute();
          await withAutoId(db, db.schema.createTable("numbered"), "id").addColumn("label", "varchar(64)", (c) => c.notNull()).execute();
        },
      },
    },
    ["items"],
  );
});

afterAll(async () => {
  await sdb.close();
  await cleanEngines(config);
});

const insertPlain = prepare((db: Db, $: { id: number; label: string }) => db.insertInto("plain").values({ id: $.id, label: $.label, kind: "fixed" }));
const byId = prepare((db: Db, $: { id: number }) => db.selectFrom("plain").selectAll().where("id", "=", $.id));
const relabel = prepare((db: Db, $: { id: number; label: string }) => db.updateTable("plain").set({ label: $.label }).where("id", "=", $.id).where("kind", "=", "fixed"));
const ofLabel = prepare((db: Db, $: { label: string; max: number }) =>
  db.selectFrom("plain").select("id").where("label", "=", $.label).where("kind", "=", "fixed").orderBy("id").limit($.max),
);

describe("prepared queries", () => {
  it("run with new values each time, constants kept, on the database and in its transactions", async () => {
    for (const id of [1, 2, 3]) expect(await insertPlain.run(sdb.db, { id, label: `l${id % 2}` })).toBe(1);
    expect(await byId.first(sdb.db, { id: 2 })).toEqual({ id: 2, label: "l0", kind: "fixed" });
    expect(await byId.first(sdb.db, { id: 9 })).toBeUndefined();
    expect((await ofLabel.all(sdb.db, { label: "l1", max: 10 })).map((r) => Number(r.id))).toEqual([1, 3]);
    expect((await ofLabel.all(sdb.db, { label: "l1", max: 1 })).map((r) => Number(r.id))).toEqual([1]);
    await sdb.db.transaction().execute(async (trx) => {
      expect(await relabel.run(trx, { id: 3, label: "changed" })).toBe(1);
      expect(await relabel.run(trx, { id: 99, label: "nobody" })).toBe(0);
      expect((await byId.first(trx, { id: 3 }))?.label).toBe("changed");
    });
    // A rolled-back transaction's prepared writes are gone like any other.
    await expect(
      sdb.db.transaction().execute(async (trx) => {
        await relabel.run(trx, { id: 1, label: "lost" });
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    expect((await byId.first(sdb.db, { id: 1 }))?.label).toBe("l1");
  });

  it("answers the id an insert generated, on every engine", async () => {
    const add = prepare((db: Db, $: { label: string }) => sdb.returningId(db.insertInto("numbered").values({ label: $.label })));
    const first = await add.insertId(sdb.db, { label: "one" });
    const second = await sdb.db.transaction().execute((trx) => add.insertId(trx, { label: "two" }));
    expect(second).toBe(first + 1);
    expect((await sdb.db.selectFrom("numbered").select("label").where("id", "=", second).executeTakeFirst())?.label).toBe("two");
  });

  it("binds lists and lists of rows, compiling each length once", async () => {
    const addMany = prepare((db: Db, $: { rows: { id: number; label: string }[] }) => db.insertInto("plain").values($.rows.map((r) => ({ id: r.id, label: r.label, kind: "many" }))));
    const ofIds = prepare((db: Db, $: { ids: number[]; kind: string }) => db.selectFrom("plain").select(["id", "label"]).where("id", "in", $.ids).where("kind", "=", $.kind).orderBy("id"));
    expect(await addMany.run(sdb.db, { rows: [{ id: 10, label: "ten" }, { id: 11, label: "eleven" }] })).toBe(2);
    expect(await addMany.run(sdb.db, { rows: [{ id: 12, label: "twelve" }] })).toBe(1);
    expect(await addMany.run(sdb.db, { rows: [{ id: 13, label: "thirteen" }, { id: 14, label: "fourteen" }] })).toBe(2);
    expect((await ofIds.all(sdb.db, { ids: [14, 10], kind: "many" })).map((r) => r.label)).toEqual(["ten", "fourteen"]);
    expect((await ofIds.all(sdb.db, { ids: [12, 11, 99], kind: "many" })).map((r) => r.label)).toEqual(["eleven", "twelve"]);
    expect((await ofIds.all(sdb.db, { ids: [13, 12], kind: "many" })).map((r) => r.label)).toEqual(["twelve", "thirteen"]);
    expect(await ofIds.all(sdb.db, { ids: [10], kind: "fixed" })).toEqual([]);
  });

  it("binds a list of rows whole, the first row's columns for all, and refuses a row missing one", async () => {
    const addRows = prepare((db: Db, $: { rows: { id: number; label: string; kind: string }[] }) => db.insertInto("plain").values($.rows));
    expect(await addRows.run(sdb.db, { rows: [{ id: 30, label: "a", kind: "rows" }, { id: 31, label: "b", kind: "rows" }] })).toBe(2);
    expect(await addRows.run(sdb.db, { rows: [{ id: 32, label: "c", kind: "rows" }] })).toBe(1);
    const rows = await sdb.db.selectFrom("plain").select(["id", "label"]).where("kind", "=", "rows").orderBy("id").execute();
    expect(rows).toEqual([
      { id: 30, label: "a" },
      { id: 31, label: "b" },
      { id: 32, label: "c" },
    ]);
    // The same length with the columns in another order, then the first order again: each binds by its own columns.
    await addRows.run(sdb.db, { rows: [{ kind: "reordered", label: "e", id: 35 }] });
    await addRows.run(sdb.db, { rows: [{ id: 36, label: "f", kind: "reordered" }] });
    expect(await sdb.db.selectFrom("plain").select(["id", "label"]).where("kind", "=", "reordered").orderBy("id").execute()).toEqual([
      { id: 35, label: "e" },
      { id: 36, label: "f" },
    ]);
    const ragged = [{ id: 33, label: "d", kind: "rows" }, { id: 34, kind: "rows" }] as { id: number; label: string; kind: string }[];
    await expect(addRows.run(sdb.db, { rows: ragged })).rejects.toThrow("no value for $.rows[1].label (the rows of one list share the first one's columns)");
    expect(await sdb.db.selectFrom("plain").select("id").where("id", "in", [33, 34]).execute()).toEqual([]);
  });

  it("binds a row's fields as the columns of an insert or an update, each set of columns compiled once", async () => {
    const add = prepare((db: Db, $: { row: { id: number; label: string; kind: string } }) => db.insertInto("plain").values($.row));
    const change = prepare((db: Db, $: { id: number; row: { label?: string; kind?: string } }) => db.updateTable("plain").set($.row).where("id", "=", $.id));
    expect(await add.run(sdb.db, { row: { id: 20, label: "twenty", kind: "row" } })).toBe(1);
    expect(await add.run(sdb.db, { row: { kind: "row", label: "twenty-one", id: 21 } })).toBe(1);
    expect(await change.run(sdb.db, { id: 20, row: { label: "XX" } })).toBe(1);
    // A field left undefined is left out, as Kysely leaves it out.
    expect(await change.run(sdb.db, { id: 21, row: { label: undefined, kind: "changed" } })).toBe(1);
    expect(await change.run(sdb.db, { id: 20, row: { label: "XX-2", kind: "changed" } })).toBe(1);
    const rows = await sdb.db.selectFrom("plain").select(["id", "label", "kind"]).where("id", "in", [20, 21]).orderBy("id").execute();
    expect(rows).toEqual([
      { id: 20, label: "XX-2", kind: "changed" },
      { id: 21, label: "twenty-one", kind: "changed" },
    ]);
  });

  it("refuses a parameter that does not become a bound value", async () => {
    const misused = prepare((db: Db, $: { ids: number }) => db.selectFrom("plain").selectAll().where("id", "in", [1, 2]).where("label", "=", String($.ids)));
    await expect(misused.all(sdb.db, { ids: 1 })).rejects.toThrow("$.ids did not become a bound parameter");
  });

  it("keeps the tenant guard, and compiles a tenant-scoped query per tenant handle", async () => {
    const stock = prepare((db: Db, $: { sku: string }) => db.selectFrom("items").select(["tenant_id", "quantity"]).where("sku", "=", $.sku));
    for (const [tenant, quantity] of [["t1", 5], ["t2", 7]] as const)
      await sdb.forTenant(tenant).insertInto("items").values({ tenant_id: tenant, sku: "A", quantity, note: null }).execute();
    expect((await stock.all(sdb.forTenant("t1"), { sku: "A" })).map((r) => [r.tenant_id, Number(r.quantity)])).toEqual([["t1", 5]]);
    expect((await stock.all(sdb.forTenant("t2"), { sku: "A" })).map((r) => [r.tenant_id, Number(r.quantity)])).toEqual([["t2", 7]]);
    await expect(stock.all(sdb.db, { sku: "A" })).rejects.toThrow(/tenant/i);
  });
});
