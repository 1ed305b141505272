import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { ADMIN_PASSWORD, eventually, startTestSystem, type TestSystem } from "../../../test/support/harness";
import { etcdClient } from "../runtime/etcd";
import { startNode } from "../runtime/system";
import { catalogue } from "../../services/catalog";

/** The centre on its own SQL database always; on etcd too where the run has one (BAZAAR_ETCD_URL). */
const STORES = process.env.BAZAAR_ETCD_URL ? (["sql", "etcd"] as const) : (["sql"] as const);

describe.each(STORES)("the config centre on %s", (store) => {
  let sys: TestSystem;
  let base: string;
  const limits = (points: number) => ({ perAccount: { points, durationSeconds: 300, blockSeconds: 300 }, perIp: { points: 300, durationSeconds: 60 } });

  beforeAll(async () => {
    sys = await startTestSystem({ services: ["gateway", "identity", "config"], config: { nodeTags: "canary,zone-a", configStore: store } });
    base = `/api/platform/config/${sys.config.namespace}`;
    // Identity registers its schema for login-limits once it sees the centre.
    await eventually(async () => (await sys.api.get(`${base}/identity/login-limits`, sys.admin.token)).body?.error?.code === "CONFIG_NOT_FOUND");
    await eventually(async () => (await sys.api.put(`${base}/identity/login-limits`, { value: limits(10) }, sys.admin.token)).status === 200);
  });
  afterAll(() => sys?.stop());

  const put = (value: unknown, extra: object = {}, key = "login-limits") => sys.api.put(`${base}/identity/${key}`, { value, ...extra }, sys.admin.token);
  const handle = () => sys.node.platform.configs.watch("identity", "identity", "login-limits", z.unknown(), null);

  describe("values, versions and validation", () => {
    it("refuses keys no service registered, values its schema refuses, and non-operators", async () => {
      expect((await put({ any: 1 }, {}, "nobody-owns-this")).body.error.code).toBe("CONFIG_KEY_UNKNOWN");
      const bad = await put({ perAccount: { points: 0, durationSeconds: 300 }, perIp: { points: 1, durationSeconds: 1 } });
      expect(bad.status).toBe(400);
      expect(bad.body.error).toMatchObject({ code: "CONFIG_VALUE_INVALID", field: "value.perAccount.points" });
      expect((await sys.api.put(`/api/platform/config/Bad!/identity/login-limits`, { value: limits(1) }, sys.admin.token)).body.error.field).toBe("namespace");
      const user = await sys.user();
      expect((await sys.api.get(`${base}/identity/login-limits`, user.token)).status).toBe(403);
      const history = await sys.api.get(`${base}/identity/login-limits/history`, sys.admin.token);
      expect(history.body.items.every((v: { value: { perAccount: { points: number } } }) => v.value.perAccount.points > 0)).toBe(true);
    });

    it("applies a change on the running node without a restart, and keeps every version with its author and diff", async () => {
      const user = await sys.user();
      const v = (await put(limits(2))).body.released.version as number;
      await eventually(async () => handle().version === v);
      for (let i = 0; i < 2; i++) expect((await sys.api.post("/api/auth/login", { username: user.username, password: "wrong-password" })).status).toBe(401);
      expect((await sys.api.post("/api/auth/login", { username: user.username, password: "wrong-password" })).body.error.code).toBe("LOGIN_RATE_LIMITED");

      const history = (await sys.api.get(`${base}/identity/login-limits/history?limit=2`, sys.admin.token)).body;
      expect(history.items[0]).toMatchObject({ version: v, action: "RELEASE", author: { username: "admin" }, changes: [{ path: "$.perAccount.points", from: 10, to: 2 }] });
      expect(history.items).toHaveLength(2);
      if (store === "etcd") {
        // Where it was written: etcd itself, not a database beside it.
        const etcd = etcdClient(sys.config.etcdUrl!);
        const entry = await etcd.get(`bazaar/${sys.config.namespace}/config/entries/${sys.config.namespace}/identity/login-limits`).json();
        etcd.close();
        expect(entry).toMatchObject({ releasedVersion: v, lastVersion: v });
      }
    });

    it("rolls back to any version as a new version, pushed like any change", async () => {
      const history = (await sys.api.get(`${base}/identity/login-limits/history`, sys.admin.token)).body.items as { version: number; value: unknown }[];
      const first = history[history.length - 1];
      const rolled = await sys.api.post(`${base}/identity/login-limits/rollback`, { version: first.version }, sys.admin.token);
      expect(rolled.body.released).toMatchObject({ action: "ROLLBACK", rollbackOf: first.version, value: first.value });
      await eventually(async () => handle().version === rolled.body.released.version);
      expect(handle().value).toEqual(first.value);
      expect((await sys.api.post(`${base}/identity/login-limits/rollback`, { version: 999 }, sys.admin.token)).body.error.code).toBe("CONFIG_VERSION_NOT_FOUND");
    });
  });

  describe("gray release", () => {
    it("reaches nodes with a gray tag first, then everyone on promotion", async () => {
      const released = (await sys.api.get(`${base}/identity/login-limits`, sys.admin.token)).body.released.version as number;
      // Not this node's tags: it stays on the released version.
      const elsewhere = await put(limits(7), { grayTags: ["zone-b"] });
      expect(elsewhere.body.gray).toMatchObject({ tags: ["zone-b"], value: limits(7) });
      const mine = await put(limits(8), { grayTags: ["canary"] });
      await eventually(async () => handle().version === mine.body.gray.version);
      expect(mine.body.released.version).toBe(released);
      const promoted = await sys.api.post(`${base}/identity/login-limits/promote`, {}, sys.admin.token);
      expect(promoted.body).toMatchObject({ gray: null, released: { action: "PROMOTE", value: limits(8) } });
      await eventually(async () => handle().version === promoted.body.released.version);
      expect((await sys.api.post(`${base}/identity/login-limits/promote`, {}, sys.admin.token)).body.error.code).toBe("CONFIG_NO_GRAY");
    });
  });

  describe("the command line", () => {
    it("sets, gets and lists history through a running gateway", async () => {
      const cli = (...args: string[]) =>
        promisify(execFile)(process.execPath, [path.resolve("bin/bazaar.js"), "config", ...args, "--url", sys.node.url!, "--password", ADMIN_PASSWORD, "--namespace", sys.config.namespace]);
      const set = JSON.parse((await cli("set", "identity", "login-limits", JSON.stringify(limits(9)))).stdout);
      expect(set.released.value).toEqual(limits(9));
      expect(JSON.parse((await cli("get", "identity", "login-limits")).stdout).released.version).toBe(set.released.version);
      const history = JSON.parse((await cli("history", "identity", "login-limits", "--limit", "1")).stdout);
      expect(history.items[0].changes).toEqual([{ path: "$.perAccount.points", from: 8, to: 9 }]);
      await expect(cli("set", "identity", "login-limits", "{not json")).rejects.toMatchObject({ code: 1 });
    });
  });

  describe("a node starting while the centre is down", () => {
    it("runs on the last value it had, from its disk cache", async () => {
      const last = (await sys.api.get(`${base}/identity/login-limits`, sys.admin.token)).body.released;
      await eventually(async () => handle().version === last.version);
      await sys.node.stop();
      const alone = await startNode(sys.config, { catalogue, services: ["identity"], clock: sys.clock, processMetrics: false });
      try {
        const cached = alone.platform.configs.watch("identity", "identity", "login-limits", z.unknown(), null);
        expect({ version: cached.version, value: cached.value }).toEqual({ version: last.version, value: last.value });
      } finally {
        await alone.stop();
      }
    });
  });
});
