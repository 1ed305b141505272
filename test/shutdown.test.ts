import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ApiClient } from "../src/platform/gateway/client";
import { cleanEngines, testConfig } from "./support/harness";
import { freePort } from "./support/net";

/** The whole system as a child process, stopped with SIGTERM while requests are in flight. */
const config = testConfig();
let child: ChildProcess | undefined;

afterAll(async () => {
  child?.kill("SIGKILL");
  await cleanEngines(config);
});

async function start(port: number): Promise<ApiClient> {
  const log = createWriteStream(path.join(config.dataDir, "child.log"), { flags: "a" });
  child = spawn(process.execPath, [path.resolve("bin/bazaar.js"), "start"], {
    env: { ...process.env, BAZAAR_PORT: String(port), BAZAAR_DATA_DIR: config.dataDir, BAZAAR_NAMESPACE: config.namespace, BAZAAR_ADMIN_PASSWORD: "x-admin-password", BAZAAR_DEMO: "0", BAZAAR_LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  const api = new ApiClient(`http://127.0.0.1:${port}`);
  for (let i = 0; i < 300; i++) {
    if ((await api.get("/ready").catch(() => undefined))?.status === 200) return api;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("child did not become ready");
}

describe("graceful shutdown", () => {
  it("finishes the requests in flight on SIGTERM, takes no new ones, and exits 0 well within the grace period", async () => {
    const port = await freePort();
    let api = await start(port);
    const names = Array.from({ length: 40 }, (_, i) => `drain-${i}`);
    const answers = names.map((username) => api.post("/api/auth/register", { username, password: "password-123" }).catch((err: Error) => ({ status: 0, body: err.message })));
    await new Promise((r) => setTimeout(r, 40));
    const exited = new Promise<{ code: number | null; ms: number }>((resolve) => {
      const t = Date.now();
      child!.once("exit", (code) => resolve({ code, ms: Date.now() - t }));
    });
    child!.kill("SIGTERM");
    const results = await Promise.all(answers);
    const { code, ms } = await exited;
    expect(code).toBe(0);
    expect(ms).toBeLessThan(25_000);
    // Every request was answered in full (201), or refused whole while closing (503, or no connection).
    expect(results.filter((r) => r.status === 201).length).toBeGreaterThan(0);
    for (const r of results) expect([0, 201, 503], JSON.stringify(r.body)).toContain(r.status);

    // What was answered 201 is there after a restart; what was refused left nothing behind.
    api = await start(port);
    for (const [i, r] of results.entries()) {
      if (r.status === 201) await expect(api.login(names[i], "password-123")).resolves.toMatchObject({ token: expect.any(String) });
      else expect((await api.post("/api/auth/register", { username: names[i], password: "password-123" })).status).toBe(201);
    }
    child!.kill("SIGTERM");
  }, 90_000);
});
