import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { ServiceBroker, type ServiceSchema } from "moleculer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { ADMIN_PASSWORD, cleanEngines, eventually, testConfig } from "../../../test/support/harness";
import { catalogue, GATEWAY_HOOKS } from "../../services/catalog";
import { ManualClock } from "../clock/clock";
import { ApiClient } from "../gateway/client";
import { TokenSigner } from "../gateway/jwt";
import { action } from "../runtime/action";
import type { Platform } from "../runtime/platform";
import { type RunningNode, startNode } from "../runtime/system";

/**
 * Three nodes in one process on Moleculer's in-memory transporter: an edge (gateway, identity, config
 * centre, release) and two versions of an `echo` service, 1 (blue) and 2 (green).
 */
const config = testConfig();
const clock = new ManualClock(Date.now());
const nodes: Record<string, RunningNode> = {};
let api: ApiClient;
let admin: string;
let signer: TokenSigner;

function echoService(platform: Platform): ServiceSchema {
  return {
    name: "echo",
    settings: { routes: [{ method: "GET", path: "/api/test/echo", action: "echo.whoami", auth: "user" }] },
    actions: {
      whoami: action(z.object({}), async () => ({ node: platform.nodeId, version: platform.config.nodeVersion })),
      slow: action(z.object({ ms: z.number().int() }), async (ctx) => {
        await new Promise((r) => setTimeout(r, ctx.params.ms));
        return { node: platform.nodeId };
      }),
    },
  };
}

const start = (name: string, services: string[], extra: object = {}) =>
  startNode(
    { ...config, nodeId: `${config.namespace}-${name}`, ...extra },
    { catalogue: { ...catalogue, echo: echoService }, services, transporter: "Fake", clock, processMetrics: false, gateway: GATEWAY_HOOKS },
  );

beforeAll(async () => {
  nodes.edge = await start("edge", ["gateway", "identity", "config", "release"]);
  nodes.v1 = await start("v1", ["echo"], { nodeVersion: "1", nodeColour: "blue" });
  nodes.v2 = await start("v2", ["echo"], { nodeVersion: "2", nodeColour: "green" });
  await nodes.edge.broker.call("identity.ensureAdmin", { password: ADMIN_PASSWORD });
  nodes.edge.platform.readiness.ready = true;
  api = new ApiClient(nodes.edge.url!);
  admin = (await api.login("admin", ADMIN_PASSWORD)).token;
  signer = TokenSigner.fromConfig(config);
  await eventually(async () => (await route({})).status === 200, 15_000);
  // Both versions registered and the gateway knows their route.
  const token = await tokenFor(1);
  await eventually(async () => {
    const seen = await echo(20, token);
    return seen["1"] !== undefined && seen["2"] !== undefined;
  }, 15_000);
});

afterAll(async () => {
  for (const node of Object.values(nodes).reverse()) await node.stop();
  await cleanEngines(config);
});

/** Writes release/routing and waits until the edge runs it. */
async function route(value: object) {
  const res = await api.put(`/api/platform/config/${config.namespace}/release/routing`, { value }, admin);
  if (res.status === 200) await eventually(async () => nodes.edge.platform.routing.version === res.body.released.version);
  return res;
}

const tokenFor = (userId: number) => signer.sign({ id: userId, username: `u${userId}`, roles: ["user"] }, 3600, clock.now());

/** `n` GETs of the echo route, 20 at a time; answers how many each version served. */
async function echo(n: number, token: string | ((i: number) => Promise<string>), headers: Record<string, string> = {}) {
  const counts: Record<string, number> = {};
  let next = 0;
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      while (next < n) {
        const i = next++;
        const res = await api.request("GET", "/api/test/echo", { token: typeof token === "string" ? token : await token(i), headers });
        const version = res.status === 200 ? res.body.version : `status ${res.status} ${JSON.stringify(res.body)}`;
        counts[version] = (counts[version] ?? 0) + 1;
      }
    }),
  );
  return counts;
}

describe("gray routing", () => {
  it("splits traffic by weight within 5 points over 10,000 calls", async () => {
    await route({ rules: [{ weights: { "1": 70, "2": 30 } }] });
    const counts = await echo(10_000, await tokenFor(1));
    expect((counts["1"] ?? 0) + (counts["2"] ?? 0), JSON.stringify(counts)).toBe(10_000);
    expect(Math.abs(counts["2"] / 10_000 - 0.3)).toBeLessThan(0.05);
  }, 120_000);

  it("keeps each user in one lane for a user-share rule", async () => {
    await route({ stable: "1", rules: [{ userPercent: 50, lane: "2" }] });
    const lanes = new Map<number, Set<string>>();
    for (let user = 1000; user < 1100; user++) {
      const token = await tokenFor(user);
      const counts = await echo(4, token);
      lanes.set(user, new Set(Object.keys(counts)));
    }
    expect([...lanes.values()].every((s) => s.size === 1)).toBe(true);
    const inTwo = [...lanes.values()].filter((s) => s.has("2")).length;
    expect(inTwo).toBeGreaterThan(30);
    expect(inTwo).toBeLessThan(70);
  }, 60_000);

  it("sends a canary header or cookie to the canary lane, everyone else to stable", async () => {
    await route({ stable: "1", rules: [{ header: "x-bazaar-canary", equals: "1", lane: "2" }, { cookie: "canary", equals: "1", lane: "2" }] });
    const token = await tokenFor(7);
    expect(await echo(50, token, { "x-bazaar-canary": "1" })).toEqual({ "2": 50 });
    expect(await echo(50, token, { cookie: "theme=dark; canary=1" })).toEqual({ "2": 50 });
    expect(await echo(50, token)).toEqual({ "1": 50 });
  });

  it("switches all traffic between colours at once, and back", async () => {
    const token = await tokenFor(8);
    await route({ colour: "green" });
    expect(await echo(100, token)).toEqual({ "2": 100 });
    await route({ colour: "blue" });
    expect(await echo(100, token)).toEqual({ "1": 100 });
  });

  it("gives a drained node nothing new while its calls in flight finish, and takes it back", async () => {
    await route({ stable: "1" });
    const v1 = nodes.v1.platform.nodeId;
    const inFlight = nodes.edge.broker.call<{ node: string }, object>("echo.slow", { ms: 300 }, { meta: { lane: "1" } });
    const drained = await api.post(`/api/platform/nodes/${v1}/drain`, {}, admin);
    expect(drained.body).toEqual({ nodeId: v1, drained: true });
    expect((await inFlight).node).toBe(v1);
    await eventually(async () => (await api.get("/api/platform/nodes", admin)).body.find((n: { nodeId: string }) => n.nodeId === v1)?.drained === true);
    expect(await echo(200, await tokenFor(9))).toEqual({ "2": 200 });
    await api.post(`/api/platform/nodes/${v1}/undrain`, {}, admin);
    await eventually(async () => (await echo(20, await tokenFor(9)))["1"] === 20);
    expect((await api.post("/api/platform/nodes/nowhere/drain", {}, admin)).body.error.code).toBe("NODE_NOT_FOUND");
    const user = await tokenFor(10);
    expect((await api.post(`/api/platform/nodes/${v1}/drain`, {}, user)).status).toBe(403);
  });

  it("drains and undrains from the command line", async () => {
    const v2 = nodes.v2.platform.nodeId;
    const cli = async (...args: string[]) =>
      JSON.parse((await promisify(execFile)(process.execPath, [path.resolve("bin/bazaar.js"), "node", ...args, "--url", nodes.edge.url!, "--password", ADMIN_PASSWORD])).stdout);
    expect(await cli("drain", v2)).toEqual({ nodeId: v2, drained: true });
    await eventually(async () => (await cli("list")).find((n: { nodeId: string }) => n.nodeId === v2)?.drained === true);
    expect(await cli("undrain", v2)).toEqual({ nodeId: v2, drained: false });
  }, 30_000);

  it("never lets a node of another namespace see or call these", async () => {
    const stranger = new ServiceBroker({ namespace: `${config.namespace}x`, nodeID: "stranger", transporter: "Fake", logger: false });
    await stranger.start();
    try {
      await new Promise((r) => setTimeout(r, 200));
      await expect(stranger.call("echo.whoami")).rejects.toMatchObject({ type: "SERVICE_NOT_FOUND" });
      const seen = (await api.get("/api/platform/nodes", admin)).body.map((n: { nodeId: string }) => n.nodeId);
      expect(seen).not.toContain("stranger");
      expect(seen).toEqual(expect.arrayContaining([nodes.v1.platform.nodeId, nodes.v2.platform.nodeId]));
    } finally {
      await stranger.stop();
    }
  });
});
