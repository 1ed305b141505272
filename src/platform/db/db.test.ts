import type { Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanEngines, testConfig } from "../../../test/support/harness";
import { openServiceDb, type ServiceDb } from "./db";

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
