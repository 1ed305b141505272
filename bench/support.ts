import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import type { ServiceFactory } from "../src/platform/runtime/broker";
import { loadConfig } from "../src/platform/runtime/config";
import { startNode } from "../src/platform/runtime/system";
import { ALL_SERVICES, catalogue, GATEWAY_HOOKS } from "../src/services/catalog";
import { cleanEngines } from "../test/support/harness";

/** A fresh system in this process (embedded unless engine URLs are set), quiet, on a free port, with any `extra` services. */
export async function benchNode(extra: Record<string, ServiceFactory> = {}, env: Record<string, string> = {}, services: string[] = ALL_SERVICES) {
  const dataDir = mkdtempSync(path.join(tmpdir(), "bazaar-bench-"));
  const config = {
    ...loadConfig({}, { ...process.env, ...env, BAZAAR_DATA_DIR: dataDir, BAZAAR_PORT: "0", BAZAAR_LOG_LEVEL: "warn", BAZAAR_NAMESPACE: "bench" }),
    demo: false,
  };
  const node = await startNode(config, { catalogue: { ...catalogue, ...extra }, services: [...services, ...Object.keys(extra)], gateway: GATEWAY_HOOKS });
  node.platform.readiness.ready = true;
  return { node, dataDir };
}

/** Stops a bench's node and drops what it stored: its data directory, and on real engines its databases, streams and keys. */
export async function stopBenchNode(node: Awaited<ReturnType<typeof startNode>>): Promise<void> {
  await node.stop();
  await cleanEngines(node.platform.config);
}

export function machine(): string {
  return `${cpus().length} × ${cpus()[0]?.model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}

export const operator = { meta: { user: { id: 0, username: "bench", roles: ["admin", "operator"] } } };

export function userMeta(id: number, extra: object = {}) {
  return { meta: { user: { id, username: `u${id}`, roles: ["user"] }, ...extra } };
}

/** Imports and enrols `n` reviewers; answers their ids. */
export async function seedReviewers(broker: import("moleculer").ServiceBroker, n: number): Promise<number[]> {
  const usernames = Array.from({ length: n }, (_, i) => `bench-${i}`);
  const users = await broker.call<{ id: number }[], object>("identity.importUsers", { usernames, password: "bench-password" });
  for (const u of users) await broker.call("reviewer.enrol", {}, userMeta(u.id));
  await broker.call("reviewer.putRules", { activeWithinDays: 0, minAccountAgeDays: 0, minAccuracy: 0, maxOpenCases: 0, maxCasesPerDay: 0, cooldownSeconds: 0 }, operator);
  return users.map((u) => u.id);
}

/**
 * Runs wrk (the HTTP load generator of the benchmarks that need one cheaper than the server) with
 * `args` and answers the JSON line its script's `done()` printed last.
 */
export async function wrk<T>(args: string[]): Promise<T> {
  const { stdout } = await promisify(execFile)("wrk", args, { maxBuffer: 1 << 20 }).catch((err: NodeJS.ErrnoException) => {
    throw err.code === "ENOENT" ? new Error("this benchmark needs wrk (Debian: apt-get install wrk)") : err;
  });
  return JSON.parse(stdout.trim().split("\n").pop()!) as T;
}
