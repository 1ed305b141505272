import { afterAll, describe, expect, it } from "vitest";
import type { ApiClient } from "../src/platform/gateway/client";
import { type ChildNode, spawnNode } from "./support/child-node";
import { cleanEngines, eventually, testConfig } from "./support/harness";
import { freePort } from "./support/net";

/** The whole system as a child process, stopped with SIGTERM while requests are in flight. */
const config = testConfig();
let child: ChildNode | undefined;

afterAll(async () => {
  await child?.stop();
  await cleanEngines(config);
});

async function start(port: number): Promise<ApiClient> {
  // At info level: the access log shows which requests the node finished after it began shutting down.
  child = spawnNode({ config, name: "all", port, env: { BAZAAR_LOG_LEVEL: "info" } });
  return (await child.ready(30_000)).api;
}

describe("graceful shutdown", () => {
  it("finishes the requests in flight on SIGTERM, takes no new ones, and exits 0 well within the grace period", async () => {
    const port = await freePort();
    let api = await start(port);
    const names = Array.from({ length: 40 }, (_, i) => `drain-${i}`);
    const answers = names.map((username) => api.post("/api/auth/register", { username, password: "password-123" }).catch((err: Error) => ({ status: 0, body: err.message })));
    // Stop once the server is demonstrably working on them: a fixed pause raced a loaded machine,
    // where the first requests had not reached the server when the signal came.
    await Promise.race(answers);
    const t = Date.now();
    const exited = child!.stop("SIGTERM").then((code) => ({ code, ms: Date.now() - t }));
    const results = await Promise.all(answers);
    const { code, ms } = await exited;
    expect(code).toBe(0);
    expect(ms).toBeLessThan(25_000);
    // Requests the node held when the signal came were still finished: registrations it logged after
    // "shutting down" (waited for: the pipe's last lines can arrive just after the exit).
    const finishedWhileStopping = () => {
      const log = child!.lines.flatMap((line): { msg?: string; route?: string; status?: number }[] => {
        try {
          return [JSON.parse(line)];
        } catch {
          return []; // not a log record (a runtime warning on stderr)
        }
      });
      const stopping = log.findIndex((l) => l.msg === "shutting down");
      return stopping < 0 ? 0 : log.slice(stopping).filter((l) => l.msg === "http" && l.route === "/api/auth/register" && l.status === 201).length;
    };
    expect(await eventually(async () => finishedWhileStopping(), 5_000)).toBeGreaterThan(0);
    // Every request was answered in full (201), or refused whole while closing (503, or no connection).
    for (const r of results) expect([0, 201, 503], JSON.stringify(r.body)).toContain(r.status);

    // What was answered 201 is there after a restart; what was refused left nothing behind.
    api = await start(port);
    for (const [i, r] of results.entries()) {
      if (r.status === 201) await expect(api.login(names[i], "password-123")).resolves.toMatchObject({ token: expect.any(String) });
      else expect((await api.post("/api/auth/register", { username: names[i], password: "password-123" })).status).toBe(201);
    }
    await child!.stop("SIGTERM");
  }, 90_000);
});
