import { request } from "node:http";
import { afterAll, describe, expect, it, onTestFailed } from "vitest";
import { workerNodeId, workersProblem } from "../src/platform/runtime/workers";
import { type ChildNode, childrenOf, spawnNode } from "./support/child-node";
import { cleanEngines, engines, eventually, testConfig } from "./support/harness";
import { freePort } from "./support/net";

const config = testConfig();
const nodes: ChildNode[] = [];

afterAll(async () => {
  for (const n of nodes) await n.stop();
  await cleanEngines(config);
});

/** The node id behind one new connection to the gateway (the cluster hands out connections, not requests). */
function healthOnNewConnection(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path: "/health", agent: false }, (res) => {
      let body = "";
      res.on("data", (c) => (body += c));
      res.on("end", () => resolve((JSON.parse(body) as { node: string }).node));
    });
    req.on("error", reject);
    // A connection handed to a worker that is dying gets no answer: ask again elsewhere.
    req.setTimeout(2_000, () => req.destroy(new Error("no answer")));
    req.end();
  });
}

async function nodesAnswering(port: number, tries = 40): Promise<Set<string>> {
  const seen = new Set<string>();
  for (let i = 0; i < tries; i++) seen.add(await healthOnNewConnection(port).catch(() => "none"));
  return seen;
}

describe("bazaar node --workers", () => {
  it("asks for shared engines and a sensible count before it forks anything", () => {
    expect(workersProblem(1, {})).toBeUndefined();
    expect(workersProblem(2, { natsUrl: "nats://x", redisUrl: "redis://x", dbUrl: "mysql://x" })).toBeUndefined();
    expect(workersProblem(2, { natsUrl: "nats://x" })).toMatch(/set BAZAAR_REDIS_URL, BAZAAR_DB_URL$/);
    expect(workersProblem(0, {})).toMatch(/from 1 to 64/);
    expect(workersProblem(1.5, {})).toMatch(/from 1 to 64/);
    expect(workerNodeId("edge", 2)).toBe("edge-w2");
    expect(workerNodeId("edge", undefined)).toBe("edge");
    expect(workerNodeId(undefined, 2)).toBeUndefined();
  });

  it("refuses several workers on the embedded stores, saying which URLs are missing", async () => {
    const alone = spawnNode({
      config,
      name: "embedded-workers",
      services: "gateway",
      port: 0,
      env: { BAZAAR_WORKERS: "2", BAZAAR_NATS_URL: undefined, BAZAAR_REDIS_URL: undefined, BAZAAR_DB_URL: undefined },
    });
    nodes.push(alone);
    expect(await alone.exited).toBe(1);
    expect(alone.tail()).toContain("set BAZAAR_NATS_URL, BAZAAR_REDIS_URL, BAZAAR_DB_URL");
    expect(childrenOf(alone.process.pid!)).toEqual([]);
  });

  it.runIf(engines.nats && engines.redis && engines.db)(
    "serves one port from two processes, starts again a worker that dies, and stops them all on SIGTERM",
    async () => {
      const port = await freePort();
      // Without a configured node id each node is named `<host>-<pid>`: the answers say which process served them.
      const primary = spawnNode({ config, name: "edge", services: "gateway,identity", port, env: { BAZAAR_WORKERS: "2", BAZAAR_NODE_ID: undefined } });
      nodes.push(primary);
      onTestFailed(() => void process.stderr.write(`${primary.tail()}\n`));
      await primary.ready(90_000);
      const pidsAnswering = async () => [...(await nodesAnswering(port))].filter((n) => n !== "none").map((node) => Number(node.split("-").pop())).sort();
      const first = await eventually(async () => {
        const pids = await pidsAnswering();
        return pids.length === 2 && pids;
      }, 60_000);
      expect(childrenOf(primary.process.pid!)).toEqual(expect.arrayContaining(first));

      process.kill(first[0], "SIGKILL");
      // The primary starts another worker; the port is served by two processes again.
      const second = await eventually(async () => {
        const pids = await pidsAnswering();
        return pids.length === 2 && !pids.includes(first[0]) && pids;
      }, 60_000);
      expect(second).toContain(first[1]);
      expect(childrenOf(primary.process.pid!)).toEqual(expect.arrayContaining(second));

      expect(await primary.stop("SIGTERM")).toBe(0);
      for (const pid of second) expect(() => process.kill(pid, 0)).toThrow();
    },
    180_000,
  );
});
