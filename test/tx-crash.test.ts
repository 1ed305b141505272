import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it, onTestFailed } from "vitest";
import { ApiClient } from "../src/platform/gateway/client";
import { type ChildNode, spawnNode } from "./support/child-node";
import { freePort } from "./support/net";
import { cleanEngines, engines, testConfig } from "./support/harness";

/**
 * The coordinator and its participants in a child process that SIGKILLs itself at an exact step
 * boundary (BAZAAR_CRASH_AT) in the middle of a stream of sagas and TCC transactions, then restarts:
 * every transaction must end committed or fully compensated, and every balance must be exact.
 */
/** Each scenario runs on a store of its own. */
let config = testConfig();
const used = [config];
const ADMIN = "tx-crash-admin-password";
const ACCOUNTS = ["a", "b", "c", "d"];
const OPENING = 10_000;
/** Coordinator: a branch registered, a participant answered, its answer recorded, a state moved; participant: a branch committed. */
const POINTS = ["tx.registered", "tx.called", "tx.recorded", "tx.moved", "tx.branch.committed"];

/** The node running under each name now; every node started, for the logs of a failure. */
const children = new Map<string, ChildNode>();
const everyNode: ChildNode[] = [];

afterAll(async () => {
  for (const c of children.values()) await c.stop();
  for (const c of used) await cleanEngines(c);
});

/**
 * Where the services run and which process a crash point kills: everything in one process, or (over
 * NATS) the coordinator and the participants in two, so each dies while the other carries on.
 */
interface Topology {
  processes: Record<string, string>;
  edge: string;
  victim(point: string): string;
}
const ONE: Topology = { processes: { all: "gateway,identity,tx,bank,shop" }, edge: "all", victim: () => "all" };
const TWO: Topology = {
  processes: { coord: "gateway,identity,tx", parts: "bank,shop" },
  edge: "coord",
  victim: (point) => (point === "tx.branch.committed" ? "parts" : "coord"),
};

async function startChild(topology: Topology, name: string, port: number, crashAt?: string): Promise<ChildNode> {
  const node = spawnNode({
    config,
    name,
    services: topology.processes[name],
    port: name === topology.edge ? port : 0,
    adminPassword: ADMIN,
    script: "test/support/tx-node.ts",
    env: { BAZAAR_CRASH_AT: crashAt },
  });
  children.set(name, node);
  everyNode.push(node);
  const edge = new ApiClient(`http://127.0.0.1:${port}`);
  await node.ready(30_000, () => isUp(topology, name, edge)).catch((err) => {
    // A crash point can be reached while recovering what the last kill left, before the node is ready.
    if (!(crashAt && node.gone)) throw err;
  });
  return node;
}

/** The edge is up when it is ready; the participants' process when the edge can reach the shop. */
async function isUp(topology: Topology, name: string, api: ApiClient): Promise<boolean> {
  if (name === topology.edge) return (await api.get("/ready").catch(() => undefined))?.status === 200;
  return (await api.get("/api/test/shop/orders/ping").catch(() => undefined))?.status === 200;
}

async function restart(topology: Topology, name: string, port: number, crashAt?: string): Promise<ChildNode> {
  await children.get(name)?.stop();
  return startChild(topology, name, port, crashAt);
}

type Kind = "pay" | "order" | "transfer";
interface Op {
  gid: string;
  kind: Kind;
  from: string;
  to: string;
  amount: number;
}

async function crashAtEveryPoint(topology: Topology) {
  const port = await freePort();
  for (const name of Object.keys(topology.processes)) await restart(topology, name, port);
  const api = new ApiClient(`http://127.0.0.1:${port}`);
  for (const account of ACCOUNTS) expect((await api.post("/api/test/bank/accounts", { account, balance: OPENING })).status).toBe(200);
  const ops: Op[] = [];
  const kinds: Kind[] = ["pay", "order", "transfer"];

  for (const point of POINTS) {
    const victim = topology.victim(point);
    // The running process dies at an arbitrary moment too: whatever it was settling is left half-way.
    const doomed = await restart(topology, victim, port, `${point}@8`);
    const lane = async (offset: number) => {
      for (let i = 0; !doomed.gone && i < 100; i++) {
        const kind = kinds[(i + offset) % kinds.length];
        const from = ACCOUNTS[(i + offset) % ACCOUNTS.length];
        const to = ACCOUNTS[(i + offset + 1) % ACCOUNTS.length];
        const op: Op = { gid: `${point}-${randomUUID()}`, kind, from, to, amount: 1 + ((i * 7 + offset) % 13) };
        ops.push(op);
        // A request the kill cut off ends the lane: the node is gone.
        if (!(await api.post(`/api/test/shop/${kind}`, { gid: op.gid, from, to, amount: op.amount }).catch(() => undefined))) break;
      }
    };
    await Promise.all([lane(0), lane(1), lane(2)]);
    // A lane stops at the first refused connection; the exit itself may be reported a moment later.
    await Promise.race([doomed.exited, new Promise((r) => setTimeout(r, 5000))]);
    // Every point lies on these paths: the kill must have happened.
    expect(doomed.gone, `${victim} never reached ${point}`).toBe(true);
    await restart(topology, victim, port);
  }

  const admin = await api.login("admin", ADMIN);
  const settled = new Map<string, string>();
  for (const started = Date.now(); settled.size < ops.length && Date.now() - started < 90_000; ) {
    for (const op of ops) {
      if (settled.has(op.gid)) continue;
      const res = await api.get(`/api/platform/tx/${op.gid}`, admin.token);
      if (res.status === 200 && (res.body.state === "COMMITTED" || res.body.state === "COMPENSATED")) settled.set(op.gid, res.body.state);
      else if (res.status === 404) {
        // Unknown to the coordinator: it never started, which is final only if nothing can still start it.
        if (op.kind !== "order") settled.set(op.gid, "NONE");
        else if ((await api.get(`/api/test/shop/orders/${op.gid}`)).body === null) settled.set(op.gid, "NONE");
      }
    }
    if (settled.size < ops.length) await new Promise((r) => setTimeout(r, 250));
  }
  const unsettled = ops.filter((op) => !settled.has(op.gid));
  expect(unsettled.map((op) => op.gid), "transactions not settled").toEqual([]);
  expect([...settled.values()].filter((s) => s === "COMMITTED").length).toBeGreaterThan(10);

  const expected = new Map(ACCOUNTS.map((a) => [a, OPENING]));
  for (const op of ops) {
    if (settled.get(op.gid) !== "COMMITTED") continue;
    expected.set(op.from, expected.get(op.from)! - op.amount);
    if (op.kind !== "pay") expected.set(op.to, expected.get(op.to)! + op.amount);
  }
  for (const account of ACCOUNTS) {
    const funds = (await api.get(`/api/test/bank/accounts/${account}`)).body;
    expect({ account, ...funds }).toEqual({ account, balance: expected.get(account), frozen: 0 });
  }
  for (const [name, c] of children) {
    await c.stop("SIGTERM");
    children.delete(name);
  }
}

describe("coordinator crash safety", () => {
  const dumpLogs = () =>
    onTestFailed(() => {
      process.stderr.write(`${everyNode.map((n) => n.tail(100)).join("\n")}\n`);
    });

  it("ends every transaction committed or compensated, balances exact, across a kill at each step boundary", async () => {
    dumpLogs();
    await crashAtEveryPoint(ONE);
  }, 240_000);

  it.runIf(engines.nats)("does the same with the coordinator and the participants in two processes, killing one at a time", async () => {
    config = testConfig();
    used.push(config);
    dumpLogs();
    await crashAtEveryPoint(TWO);
  }, 240_000);
});
