import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { etcdClient } from "../../src/platform/runtime/etcd";
import Redis from "ioredis";
import { createConnection } from "mysql2/promise";
import { connect } from "nats";
import pg from "pg";
import type { DestinationStream } from "pino";
import { ManualClock } from "../../src/platform/clock/clock";
import { ApiClient } from "../../src/platform/gateway/client";
import type { ServiceFactory } from "../../src/platform/runtime/broker";
import { type BazaarConfig, loadConfig } from "../../src/platform/runtime/config";
import { type RunningNode, startNode } from "../../src/platform/runtime/system";
import { ALL_SERVICES, catalogue, GATEWAY_HOOKS } from "../../src/services/catalog";

export const ADMIN_PASSWORD = "admin-password-for-tests";

/** Which engines this run uses: the embedded defaults, or the real ones CI points at. */
export const engines = {
  db: process.env.BAZAAR_DB_URL || undefined,
  redis: process.env.BAZAAR_REDIS_URL || undefined,
  nats: process.env.BAZAAR_NATS_URL || undefined,
  etcd: process.env.BAZAAR_ETCD_URL || undefined,
};

/** A configuration isolated from every other test: its own namespace, data dir and port. */
export function testConfig(overrides: Partial<BazaarConfig> = {}): BazaarConfig {
  const namespace = `t${randomBytes(5).toString("hex")}`;
  const dataDir = mkdtempSync(path.join(tmpdir(), "bazaar-test-"));
  return {
    ...loadConfig({}, { ...process.env, BAZAAR_NAMESPACE: namespace, BAZAAR_DATA_DIR: dataDir, BAZAAR_PORT: "0", BAZAAR_LOG_LEVEL: process.env.BAZAAR_LOG_LEVEL ?? "error" }),
    adminPassword: ADMIN_PASSWORD,
    demo: false,
    ...overrides,
  };
}

/** Drops what a test left in the engines: its databases, its JetStream stream, its Redis keys, its data dir. */
export async function cleanEngines(config: BazaarConfig): Promise<void> {
  if (config.dbUrl?.startsWith("postgres")) {
    const url = new URL(config.dbUrl);
    const client = new pg.Client({ host: url.hostname, port: Number(url.port || 5432), user: url.username || "postgres", password: url.password, database: "postgres" });
    await client.connect();
    const found = await client.query("SELECT datname FROM pg_database WHERE datname LIKE $1", [`bazaar\\_${config.namespace}\\_%`]);
    for (const row of found.rows as { datname: string }[]) await client.query(`DROP DATABASE "${row.datname}" WITH (FORCE)`);
    await client.end();
  } else if (config.dbUrl) {
    const url = new URL(config.dbUrl);
    const conn = await createConnection({ host: url.hostname, port: Number(url.port || 3306), user: url.username || "root", password: url.password });
    const [rows] = await conn.query(`SHOW DATABASES LIKE 'bazaar\\_${config.namespace}\\_%'`);
    for (const row of rows as Record<string, string>[]) await conn.query(`DROP DATABASE \`${Object.values(row)[0]}\``);
    await conn.end();
  }
  if (config.natsUrl) {
    const nc = await connect({ servers: config.natsUrl });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(`BAZAAR_${config.namespace.toUpperCase()}`).catch(() => undefined);
    await nc.close();
  }
  if (config.redisUrl) {
    const redis = new Redis(config.redisUrl);
    const keys = await redis.keys(`bazaar:${config.namespace}:*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  }
  if (config.etcdUrl) {
    const etcd = etcdClient(config.etcdUrl);
    await etcd.delete().prefix(`bazaar/${config.namespace}/`).exec();
    etcd.close();
  }
  rmSync(config.dataDir, { recursive: true, force: true });
}

export interface TestSystem {
  node: RunningNode;
  config: BazaarConfig;
  clock: ManualClock;
  api: ApiClient;
  admin: { token: string; id: number };
  /** Registers and logs in a user; answers its token and id. */
  user(name?: string): Promise<{ token: string; id: number; username: string }>;
  call<T = any>(action: string, params?: object, meta?: object): Promise<T>;
  /** Runs the governance sweeper once. */
  tick(): Promise<any>;
  stop(): Promise<void>;
}

/**
 * The whole system in this process, on the engines this run uses, with a hand-moved clock. The wallet
 * (it starts an in-process chain node) runs only where a test asks for it.
 */
export async function startTestSystem(
  options: { services?: string[]; config?: Partial<BazaarConfig>; extra?: Record<string, ServiceFactory>; clock?: ManualClock; logTo?: DestinationStream } = {},
): Promise<TestSystem> {
  const config = testConfig(options.config);
  const clock = options.clock ?? new ManualClock(Date.now());
  const extra = options.extra ?? {};
  const node = await startNode(config, {
    catalogue: { ...catalogue, ...extra },
    services: [...(options.services ?? ALL_SERVICES.filter((s) => s !== "wallet")), ...Object.keys(extra)],
    gateway: GATEWAY_HOOKS,
    clock,
    processMetrics: false,
    logTo: options.logTo,
  });
  await node.broker.call("identity.ensureAdmin", { password: ADMIN_PASSWORD });
  node.platform.readiness.ready = true;
  const api = new ApiClient(node.url!);
  const admin = await api.login("admin", ADMIN_PASSWORD);
  let counter = 0;
  return {
    node,
    config,
    clock,
    api,
    admin,
    async user(name?: string) {
      const username = name ?? `u${++counter}-${randomUUID().slice(0, 8)}`;
      const password = "password-123";
      const reg = await api.post("/api/auth/register", { username, password });
      if (reg.status !== 201) throw new Error(`register ${username}: ${reg.status} ${JSON.stringify(reg.body)}`);
      const login = await api.login(username, password);
      return { ...login, username };
    },
    call: (action, params = {}, meta = {}) => node.broker.call(action, params, { meta }),
    tick: () => node.broker.call("report.tick", {}),
    async stop() {
      await node.stop();
      await cleanEngines(config);
    },
  };
}

/** Polls until `check` returns a truthy value (events cross the stream asynchronously). */
export async function eventually<T>(check: () => Promise<T | undefined | null | false>, timeoutMs = 10_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() - started > timeoutMs) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
