import { CompiledQuery, type KyselyPlugin, type RootOperationNode } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cleanEngines, testConfig } from "../../../../test/support/harness";
import { openServiceDb, type ServiceDb } from "../../../platform/db/db";
import { assign } from "./reviewer.domain";
import { DRAW_KEY_SPACE, freshReviewer, lockReviewers, poolWindow, type ReviewerTables, reviewerMigrations, saveReviewer } from "./reviewer.store";

const config = testConfig();
let sdb: ServiceDb<ReviewerTables>;
const NOW = 1_700_000_000_000;
const POOL = 300;

const row = (userId: number, drawKey: number, changes: Partial<ReviewerTables["reviewers"]> = {}) => ({ ...freshReviewer(userId, drawKey, NOW), ...changes });

beforeAll(async () => {
  sdb = await openServiceDb<ReviewerTables>(config, "reviewerstoretest", reviewerMigrations);
  const step = Math.floor(DRAW_KEY_SPACE / POOL);
  const rows = Array.from({ length: POOL }, (_, i) => {
    const id = i + 1;
    // Every tenth is suspended (every other one of those lapsed), every seventh at the open-case limit.
    if (id % 10 === 0) return row(id, i * step, { status: "SUSPENDED", suspended_until: id % 20 === 0 ? NOW - 1 : NOW + 1 });
    if (id % 7 === 0) return row(id, i * step, { open_cases: 5 });
    return row(id, i * step);
  });
  await sdb.db.insertInto("reviewers").values(rows).execute();
  await sdb.db.insertInto("profiles").values({ user_id: 101, account_created_at: NOW - 5, last_active_at: NOW - 1, last_violation_at: null, version: 1 }).execute();
});

afterAll(async () => {
  await sdb?.close();
  await cleanEngines(config);
});

describe("the draw's pool window", () => {
  it("walks the pool in draw-key order from a point, skipping the suspended and those at the open-case limit", async () => {
    const step = Math.floor(DRAW_KEY_SPACE / POOL);
    const rows = await poolWindow(sdb.db, 100 * step, DRAW_KEY_SPACE, 40, NOW, 5, false);
    expect(rows).toHaveLength(40);
    const ids = rows.map((r) => r.reviewer.userId);
    const expected: number[] = [];
    for (let id = 101; expected.length < 40; id++) if (!(id % 10 === 0 && id % 20 !== 0) && !(id % 7 === 0 && id % 10 !== 0)) expected.push(id);
    expect(ids).toEqual(expected);
    const keys = rows.map((r) => r.drawKey);
    expect(keys).toEqual([...keys].sort((a, b) => a - b));
    expect(keys[0]).toBe(100 * step);
  });

  it("brings the profile facts along only when asked to", async () => {
    const step = Math.floor(DRAW_KEY_SPACE / POOL);
    const [withFacts] = await poolWindow(sdb.db, 100 * step, DRAW_KEY_SPACE, 1, NOW, 5, true);
    expect(withFacts.reviewer).toMatchObject({ userId: 101, accountCreatedAt: NOW - 5, lastActiveAt: NOW - 1, lastViolationAt: null, openCases: 0, noShows: 0 });
    const [without] = await poolWindow(sdb.db, 100 * step, DRAW_KEY_SPACE, 1, NOW, 5, false);
    expect(without.reviewer).toEqual({ ...withFacts.reviewer, accountCreatedAt: null, lastActiveAt: null });
  });

  it("stops at the window's end, and with no open-case limit keeps the busy", async () => {
    const step = Math.floor(DRAW_KEY_SPACE / POOL);
    const rows = await poolWindow(sdb.db, 0, 10 * step, 40, NOW, 0, true);
    expect(rows.map((r) => r.reviewer.userId)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it.runIf(!config.dbUrl)("reads a window by the draw key on the embedded store, not every active reviewer sorted", async () => {
    let captured: RootOperationNode | undefined;
    const capture: KyselyPlugin = {
      transformQuery: (args) => (captured = args.node),
      transformResult: async (args) => args.result,
    };
    await poolWindow(sdb.db.withPlugin(capture), 0, DRAW_KEY_SPACE, 40, NOW, 5, true);
    const query = sdb.db.getExecutor().compileQuery(captured!, { queryId: "plan" });
    // The plan does not depend on the values; the captured query holds the prepared statement's stand-ins.
    const plan = await sdb.db.executeQuery<{ detail: string }>(CompiledQuery.raw(`EXPLAIN QUERY PLAN ${query.sql}`, query.parameters.map(() => null)));
    const details = plan.rows.map((r) => r.detail).join("\n");
    expect(details).toMatch(/SEARCH reviewers USING INDEX \S+ \(draw_key>\? AND draw_key<\?\)/);
    expect(details).not.toMatch(/TEMP B-TREE/);
  });
});

describe("saving a reviewer", () => {
  it("writes only over the standing it read: an opt-out or a suspension landing in between is kept, nulls compared as values", async () => {
    const read = async (id: number) => (await lockReviewers(sdb.db, [id])).get(id)!;
    const fresh = await read(1);
    expect(await saveReviewer(sdb.db, fresh, assign(fresh, NOW), NOW)).toBe(true);
    expect(await read(1)).toMatchObject({ openCases: 1, lastAssignedAt: NOW });

    const beforeOptOut = await read(2);
    await sdb.db.updateTable("reviewers").set({ status: "OPTED_OUT" }).where("user_id", "=", 2).execute();
    expect(await saveReviewer(sdb.db, beforeOptOut, assign(beforeOptOut, NOW), NOW)).toBe(false);
    expect(await read(2)).toMatchObject({ status: "OPTED_OUT", openCases: 0 });

    const beforeSuspension = await read(3);
    await sdb.db.updateTable("reviewers").set({ suspended_until: NOW + 1 }).where("user_id", "=", 3).execute();
    expect(await saveReviewer(sdb.db, beforeSuspension, assign(beforeSuspension, NOW), NOW)).toBe(false);
    expect(await read(3)).toMatchObject({ suspendedUntil: NOW + 1, openCases: 0 });
  });
});
