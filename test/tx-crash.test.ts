import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createWriteStream, readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it, onTestFailed } from "vitest";
import { ApiClient } from "../src/platform/gateway/client";
import { freePort } from "./support/net";
import { cleanEngines, testConfig } from "./support/harness";

/**
 * The coordinator and its participants in a child process that SIGKILLs itself at an exact step
 * boundary (BAZAAR_CRASH_AT) in the middle of a stream of sagas and TCC transactions, then restarts:
 * every transaction must end committed or fully compensated, and every balance must be exact.
 */
const config = testConfig();
const ADMIN = "tx-crash-admin-password";
const ACCOUNTS = ["a", "b", "c", "d"];
const OPENING = 10_000;
/** Coordinator: a branch registered, a participant answered, its answer recorded, a state moved; participant: a branch committed. */
const POINTS = ["tx.registered", "tx.called", "tx.recorded", "tx.moved", "tx.branch.committed"];
let child: ChildProcess | undefined;

afterAll(async () => {
  child?.kill("SIGKILL");
  await cleanEngines(config);
});

async function startChild(port: number, crashAt?: string): Promise<{ api: ApiClient; exited: Promise<void> }> {
  const log = createWriteStream(path.join(config.dataDir, "child.log"), { flags: "a" });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    BAZAAR_PORT: String(port),
    BAZAAR_DATA_DIR: config.dataDir,
    BAZAAR_NAMESPACE: config.namespace,
    BAZAAR_ADMIN_PASSWORD: ADMIN,
    BAZAAR_LOG_LEVEL: "warn",
  };
  if (crashAt) env.BAZAAR_CRASH_AT = crashAt;
  else delete env.BAZAAR_CRASH_AT;
  const proc = spawn(process.execPath, ["--require", "tsx/cjs", path.resolve("test/support/tx-node.ts")], { env, stdio: ["ignore", "pipe", "pipe"] });
  child = proc;
  proc.stdout!.pipe(log);
  proc.stderr!.pipe(log);
  let gone = false;
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  void exited.then(() => {
    gone = true;
  });
  const api = new ApiClient(`http://127.0.0.1:${port}`);
  for (let i = 0; i < 300; i++) {
    // A crash point can be reached while recovering what the last kill left, before the node is ready.
    if (gone && crashAt) return { api, exited };
    const ready = await api.get("/ready").catch(() => undefined);
    if (ready?.status === 200) return { api, exited };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`child did not become ready: ${readFileSync(path.join(config.dataDir, "child.log"), "utf8").slice(-5000)}`);
}

type Kind = "pay" | "order" | "transfer";
interface Op {
  gid: string;
  kind: Kind;
  from: string;
  to: string;
  amount: number;
}

describe("coordinator crash safety", () => {
  it("ends every transaction committed or compensated, balances exact, across a kill at each step boundary", async () => {
    onTestFailed(() => {
      process.stderr.write(readFileSync(path.join(config.dataDir, "child.log"), "utf8").slice(-30_000));
    });
    const port = await freePort();
    let { api, exited } = await startChild(port);
    for (const account of ACCOUNTS) expect((await api.post("/api/test/bank/accounts", { account, balance: OPENING })).status).toBe(200);
    const ops: Op[] = [];
    const kinds: Kind[] = ["pay", "order", "transfer"];

    for (const point of POINTS) {
      // The running node dies at an arbitrary moment too: whatever it was settling is left half-way.
      child!.kill("SIGKILL");
      await exited;
      const started = await startChild(port, `${point}@8`);
      api = started.api;
      let dead = false;
      void started.exited.then(() => {
        dead = true;
      });
      const lane = async (offset: number) => {
        for (let i = 0; !dead && i < 100; i++) {
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
      await Promise.race([started.exited, new Promise((r) => setTimeout(r, 5000))]);
      // Every point lies on these paths: the kill must have happened.
      expect(dead, `the child never reached ${point}`).toBe(true);
      ({ api, exited } = await startChild(port));
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
    const states = [...settled.values()];
    expect(states.filter((s) => s === "COMMITTED").length).toBeGreaterThan(10);

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
    child!.kill("SIGTERM");
  }, 240_000);
});
