import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "../test/support/net";

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024);
}

/**
 * (c) `npm start` as a new user runs it: a fresh data dir with demo data. Time until /ready answers
 * 200 (bootstrap and demo data included), idle RSS three seconds later, and a restart on the now
 * populated store.
 */
export async function startup() {
  const dataDir = mkdtempSync(path.join(tmpdir(), "bazaar-start-"));
  const measure = async () => {
    const port = await freePort();
    const started = Date.now();
    const child = spawn(process.execPath, [path.resolve("bin/bazaar.js"), "start"], {
      env: { ...process.env, BAZAAR_DATA_DIR: dataDir, BAZAAR_PORT: String(port), BAZAAR_LOG_LEVEL: "warn", BAZAAR_NAMESPACE: "startbench" },
      stdio: "ignore",
    });
    let readyMs = -1;
    for (let i = 0; i < 600 && readyMs < 0; i++) {
      const ok = await fetch(`http://127.0.0.1:${port}/ready`).then((r) => r.status === 200, () => false);
      if (ok) readyMs = Date.now() - started;
      else await new Promise((r) => setTimeout(r, 25));
    }
    await new Promise((r) => setTimeout(r, 3000));
    const idleRssMb = rssMb(child.pid!);
    const stopping = Date.now();
    await new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    });
    return { readyMs, idleRssMb, stopMs: Date.now() - stopping };
  };
  const first = await measure();
  const restart = await measure();
  return { firstStartWithDemoData: first, restart };
}
