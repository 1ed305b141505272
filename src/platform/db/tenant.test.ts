import type { Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanEngines, testConfig } from "../../../test/support/harness";
import { openServiceDb, type ServiceDb } from "./db";

interface Tables {
  products: { tenant_id: string; sku: string; name: string; price: number };
  stock: { tenant_id: string; sku: string; quantity: number };
  notes: { id: number; body: string };
}

const config = testConfig();
let sdb: ServiceDb<Tables>;

beforeAll(async () => {
  sdb = await openServiceDb<Tables>(
    config,
    "tenanttest",
    {
      "0001": {
        async up(db: Kysely<any>) {
          await db.schema
            .createTable("products")
            .addColumn("tenant_id", "varchar(32)", (c) => c.notNull())
            .addColumn("sku", "varchar(32)", (c) => c.notNull())
            .addColumn("name", "varchar(64)", (c) => c.notNull())
            .addColumn("price", "bigint", (c) => c.notNull())
            .addPrimaryKeyConstraint("products_pk", ["tenant_id", "sku"])
            .execute();
          await db.schema
            .createTable("stock")
            .addColumn("tenant_id", "varchar(32)", (c) => c.notNull())
            .addColumn("sku", "varchar(32)", (c) => c.notNull())
            .addColumn("quantity", "bigint", (c) => c.notNull())
            .execute();
          await db.schema.createTable("notes").addColumn("id", "integer", (c) => c.primaryKey()).addColumn("body", "varchar(64)", (c) => c.notNull()).execute();
        },
      },
    },
    ["products", "stock"],
  );
  for (const tenant of ["a", "b"]) {
    const t = sdb.forTenant(tenant);
    await t.insertInto("products").values([
      { tenant_id: tenant, sku: "pen", name: `${tenant} pen`, price: 100 },
      { tenant_id: tenant, sku: "ink", name: `${tenant} ink`, price: 50 },
    ]).execute();
    await t.insertInto("stock").values({ tenant_id: tenant, sku: "pen", quantity: tenant === "a" ? 5 : 9 }).execute();
  }
});

afterAll(async () => {
  await sdb?.close();
  await cleanEngines(config);
});

describe("tenant tables", () => {
  it("cannot be reached without a tenant scope, in any statement or subquery", async () => {
    const refused = /tenant table (products|stock) without a tenant scope/;
    await expect(sdb.db.selectFrom("products").selectAll().execute()).rejects.toThrow(refused);
    await expect(sdb.db.updateTable("products").set({ price: 1 }).execute()).rejects.toThrow(refused);
    await expect(sdb.db.deleteFrom("stock").execute()).rejects.toThrow(refused);
    await expect(sdb.db.insertInto("products").values({ tenant_id: "a", sku: "x", name: "x", price: 1 }).execute()).rejects.toThrow(refused);
    await expect(
      sdb.db
        .selectFrom("notes")
        .selectAll()
        .where("body", "in", (eb) => eb.selectFrom("products").select("name"))
        .execute(),
    ).rejects.toThrow(refused);
    await expect(sdb.db.transaction().execute((trx) => trx.selectFrom("stock").selectAll().execute())).rejects.toThrow(refused);
    // Other tables are untouched by the guard.
    await sdb.db.insertInto("notes").values({ id: 1, body: "pen" }).execute();
    expect(await sdb.db.selectFrom("notes").selectAll().execute()).toEqual([{ id: 1, body: "pen" }]);
  });

  it("show a tenant its own rows only: selects, aliases, joins and subqueries", async () => {
    const a = sdb.forTenant("a");
    expect((await a.selectFrom("products").select("name").orderBy("sku").execute()).map((r) => r.name)).toEqual(["a ink", "a pen"]);
    expect(await a.selectFrom("products as p").select("p.name").where("p.sku", "=", "pen").execute()).toEqual([{ name: "a pen" }]);
    const joined = await a.selectFrom("products").innerJoin("stock", "stock.sku", "products.sku").select(["products.name", "stock.quantity"]).execute();
    expect(joined.map((r) => ({ name: r.name, quantity: Number(r.quantity) }))).toEqual([{ name: "a pen", quantity: 5 }]);
    const viaSubquery = await a
      .selectFrom("products")
      .select("name")
      .where("sku", "in", (eb) => eb.selectFrom("stock").select("sku"))
      .execute();
    expect(viaSubquery).toEqual([{ name: "a pen" }]);
    expect(await sdb.forTenant("c").selectFrom("products").selectAll().execute()).toEqual([]);
  });

  it("change a tenant's own rows only", async () => {
    await sdb.forTenant("a").updateTable("products").set({ price: 120 }).where("sku", "=", "pen").execute();
    await sdb.forTenant("b").deleteFrom("products").where("sku", "=", "ink").execute();
    const prices = async (t: string) =>
      (await sdb.forTenant(t).selectFrom("products").select(["sku", "price"]).orderBy("sku").execute()).map((r) => `${r.sku}:${Number(r.price)}`);
    expect(await prices("a")).toEqual(["ink:50", "pen:120"]);
    expect(await prices("b")).toEqual(["pen:100"]);
  });

  it("refuse an insert that names another tenant or none", async () => {
    const a = sdb.forTenant("a");
    await expect(a.insertInto("products").values({ tenant_id: "b", sku: "cap", name: "cap", price: 1 }).execute()).rejects.toThrow(/must give tenant_id = a/);
    await expect(
      a.insertInto("products").values([
        { tenant_id: "a", sku: "cap", name: "cap", price: 1 },
        { tenant_id: "b", sku: "cap", name: "cap", price: 1 },
      ]).execute(),
    ).rejects.toThrow(/must give tenant_id = a/);
    await expect(a.insertInto("stock").values({ sku: "cap", quantity: 1 } as never).execute()).rejects.toThrow(/must give tenant_id/);
    expect(await sdb.forTenant("b").selectFrom("products").select("sku").where("sku", "=", "cap").execute()).toEqual([]);
  });

  it("scope transactions too", async () => {
    await sdb
      .forTenant("b")
      .transaction()
      .execute(async (trx) => {
        await trx.updateTable("stock").set({ quantity: 0 }).execute();
      });
    const quantity = async (t: string) => Number((await sdb.forTenant(t).selectFrom("stock").select("quantity").executeTakeFirstOrThrow()).quantity);
    expect([await quantity("a"), await quantity("b")]).toEqual([5, 0]);
  });
});
