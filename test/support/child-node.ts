import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import { ApiClient } from "../../src/platform/gateway/client";
import type { BazaarConfig } from "../../src/platform/runtime/config";

/** What a test needs to run a bazaar node in a process of its own, to kill it or shut it down. */
export interface ChildNodeOptions {
  config: BazaarConfig;
  /** Names the node (BAZAAR_NODE_ID `<namespace>-<name>`) and its lines in a failure's log. */
  name: string;
  /** Comma-separated services; every service (`bazaar start`) when absent. */
  services?: string;
  /** Gateway port; 0 runs no gateway the test can reach. */
  port: number;
  adminPassword?: string;
  /** Set on top of the node's environment; `undefined` removes a variable. */
  env?: Record<string, string | undefined>;
  /** A script to run instead of `bin/bazaar.js` (a test's own node), loaded through tsx. */
  script?: string;
}

/** A bazaar node in a child process, with its output kept for a failing test to show. */
export class ChildNode {
  readonly api: ApiClient;
  readonly process: ChildProcess;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  readonly lines: string[] = [];
  private done = false;

  constructor(readonly options: ChildNodeOptions) {
    const { config, name, services, port, script } = options;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      BAZAAR_PORT: String(port),
      BAZAAR_DATA_DIR: config.dataDir,
      BAZAAR_NAMESPACE: config.namespace,
      BAZAAR_NODE_ID: `${config.namespace}-${name}`,
      BAZAAR_ADMIN_PASSWORD: options.adminPassword ?? "child-node-admin-password",
      BAZAAR_DEMO: "0",
      BAZAAR_LOG_LEVEL: "warn",
      BAZAAR_CRASH_AT: undefined,
      BAZAAR_SERVICES: services,
    };
    for (const [key, value] of Object.entries(options.env ?? {})) env[key] = value;
    for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
    const args = script ? ["--require", "tsx/cjs", path.resolve(script)] : [path.resolve("bin/bazaar.js"), services ? "node" : "start"];
    this.process = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    // Whole lines, however the pipe cuts its chunks (readline keeps a partial line, and a character split across chunks, for the rest).
    for (const input of [this.process.stdout!, this.process.stderr!])
      createInterface({ input, crlfDelay: Infinity }).on("line", (line) => line && this.lines.push(line));
    this.exited = new Promise((resolve) =>
      this.process.once("exit", (code) => {
        this.done = true;
        resolve(code);
      }),
    );
    this.api = new ApiClient(`http://127.0.0.1:${port}`);
  }

  get gone(): boolean {
    return this.done;
  }

  /** Its last output lines, labelled, for a failure message. */
  tail(lines = 60): string {
    return this.lines
      .slice(-lines)
      .map((l) => `[${this.options.name}] ${l}`)
      .join("\n");
  }

  /**
   * Waits for `/ready` (the gateway answers it once the node has bootstrapped: admin account,
   * demo data), or for `up` when given. Throws with the node's output when it exits or times out.
   */
  async ready(timeoutMs = 60_000, up: () => Promise<boolean> = async () => (await this.api.get("/ready").catch(() => undefined))?.status === 200): Promise<this> {
    const started = Date.now();
    for (;;) {
      if (this.done) throw new Error(`${this.options.name} exited before it was ready:\n${this.tail()}`);
      if (await up()) return this;
      if (Date.now() - started > timeoutMs) throw new Error(`${this.options.name} not ready within ${timeoutMs} ms:\n${this.tail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Sends `signal` (SIGKILL by default) and resolves with the exit code once the process is gone. */
  async stop(signal: NodeJS.Signals = "SIGKILL"): Promise<number | null> {
    if (!this.done) this.process.kill(signal);
    return this.exited;
  }
}

/** Starts a node; the caller waits for it with `ready()` where it needs to. */
export function spawnNode(options: ChildNodeOptions): ChildNode {
  return new ChildNode(options);
}

/** Process ids of `pid`'s children, such as a node's workers (ps answers 1 when there are none). */
export function childrenOf(pid: number): number[] {
  let out: string;
  try {
    out = execFileSync("ps", ["-o", "pid=", "--ppid", String(pid)], { encoding: "utf8" });
  } catch (err) {
    if ((err as { status?: number }).status === 1) return [];
    throw err;
  }
  return out
    .split("\n")
    .map((l) => Number(l.trim()))
    .filter((n) => n > 0);
}
