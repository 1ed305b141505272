import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

/** Everything a deployment can set. One table drives env vars, CLI flags and `--help`. */
export interface BazaarConfig {
  port: number;
  host: string;
  dataDir: string;
  namespace: string;
  nodeId?: string;
  /** Comma-separated node tags: gray config selects nodes by them. */
  nodeTags?: string;
  /** The release lane this node serves (gray routing by version). */
  nodeVersion?: string;
  /** Blue-green colour of this node. */
  nodeColour?: string;
  nodeZone?: string;
  dbUrl?: string;
  /** Connections each service's database pool may open on a server engine: a process with N services opens up to N times this. */
  dbPool: number;
  redisUrl?: string;
  natsUrl?: string;
  /** etcd endpoints for leader election (comma-separated); unset: this node always leads. */
  etcdUrl?: string;
  /** Where the config centre keeps values: its own SQL database, or etcd (at `etcdUrl`). */
  configStore: "sql" | "etcd";
  /** Port of /health, /ready and /metrics on a node without the gateway; unset: none. */
  opsPort?: number;
  /** This process's replica name, for services that keep per-replica state (the matching engine). */
  replica?: string;
  adminPassword?: string;
  jwtSecret?: string;
  demo: boolean;
  logLevel: string;
  bodyLimit: number;
  tokenTtlSeconds: number;
  /** How long a stop may take before the process gives up and exits 1. */
  shutdownGraceMs: number;
  /** A Zipkin-compatible span collector (Jaeger takes Zipkin on :9411); unset: no tracing. */
  tracingUrl?: string;
  /** Calls of one transaction branch operation before the coordinator leaves it STUCK. */
  txMaxAttempts: number;
  /** Copies of the JetStream stream the cluster keeps. */
  streamReplicas: number;
  /** The address third parties reach this system at (payment notifications); default: this node's gateway. */
  publicUrl?: string;
  /** Shared secret of the built-in sandbox payment provider (signs its notifications). */
  sandboxSecret: string;
  /** An EVM JSON-RPC URL for the wallet; unset: Hardhat's in-process development node. */
  chainUrl?: string;
  /** The ERC-20s a real chain carries for us: `USDT=0x…:6,…`. */
  chainTokens?: string;
  /** Blocks (the transfer's own included) before a deposit is credited or a withdrawal counts as done. */
  chainConfirmations: number;
  /** The HD master seed of deposit addresses (hex, or `file:<path>`); unset: generated into the data dir. */
  walletSeed?: string;
  /** The hot wallet's private key that signs withdrawals (hex, or `file:<path>`); unset: generated into the data dir. */
  walletHotKey?: string;
}

type Kind = "string" | "int" | "bool";
export interface ConfigOption {
  key: keyof BazaarConfig;
  env: string;
  flag: string;
  kind: Kind;
  help: string;
}

export const CONFIG_OPTIONS: ConfigOption[] = [
  { key: "port", env: "BAZAAR_PORT", flag: "port", kind: "int", help: "gateway HTTP port (default 8080; 0 picks a free one)" },
  { key: "host", env: "BAZAAR_HOST", flag: "host", kind: "string", help: "gateway bind address (default 127.0.0.1)" },
  { key: "dataDir", env: "BAZAAR_DATA_DIR", flag: "data-dir", kind: "string", help: "directory of the embedded stores (default ./data)" },
  { key: "namespace", env: "BAZAAR_NAMESPACE", flag: "namespace", kind: "string", help: "environment isolation: broker namespace, database and subject prefix (default dev)" },
  { key: "nodeId", env: "BAZAAR_NODE_ID", flag: "node-id", kind: "string", help: "this process's node id (default host-pid)" },
  { key: "nodeTags", env: "BAZAAR_NODE_TAGS", flag: "node-tags", kind: "string", help: "comma-separated tags of this node (e.g. canary,zone-a): gray config goes to nodes by tag" },
  { key: "nodeVersion", env: "BAZAAR_NODE_VERSION", flag: "node-version", kind: "string", help: "release lane this node serves, for gray routing (default: the package version)" },
  { key: "nodeColour", env: "BAZAAR_NODE_COLOUR", flag: "node-colour", kind: "string", help: "blue-green colour of this node (e.g. blue, green)" },
  { key: "nodeZone", env: "BAZAAR_NODE_ZONE", flag: "node-zone", kind: "string", help: "zone of this node, reported in its metadata" },
  { key: "dbUrl", env: "BAZAAR_DB_URL", flag: "db-url", kind: "string", help: "mysql://user:pass@host:port/ or postgres://user:pass@host:port/ — one database per service, created if missing (default: SQLite file per service)" },
  { key: "dbPool", env: "BAZAAR_DB_POOL", flag: "db-pool", kind: "int", help: "connections per service database on MySQL/PostgreSQL; a process running N services opens up to N times this (default 10)" },
  { key: "redisUrl", env: "BAZAAR_REDIS_URL", flag: "redis-url", kind: "string", help: "redis://host:port — kv and shared rate limits (default: in-process)" },
  { key: "natsUrl", env: "BAZAAR_NATS_URL", flag: "nats-url", kind: "string", help: "nats://host:port — transporter and JetStream (default: in-process broker, SQLite log)" },
  { key: "etcdUrl", env: "BAZAAR_ETCD_URL", flag: "etcd-url", kind: "string", help: "http://host:2379[,…] — leader election of the matching engines (default: single node, always leader)" },
  { key: "configStore", env: "BAZAAR_CONFIG_STORE", flag: "config-store", kind: "string", help: "sql|etcd — where the config centre keeps its values: its own database (default) or etcd at BAZAAR_ETCD_URL" },
  { key: "opsPort", env: "BAZAAR_OPS_PORT", flag: "ops-port", kind: "int", help: "port of /health, /ready and /metrics on a node without the gateway, for probes and scrapes (default: none)" },
  { key: "replica", env: "BAZAAR_REPLICA", flag: "replica", kind: "string", help: "replica name of this matching engine (a-z0-9, e.g. a, b): its own database and its own place on the command log (default: none, one engine)" },
  { key: "adminPassword", env: "BAZAAR_ADMIN_PASSWORD", flag: "admin-password", kind: "string", help: "password of the bootstrap admin account (default: random, printed once)" },
  { key: "jwtSecret", env: "BAZAAR_JWT_SECRET", flag: "jwt-secret", kind: "string", help: "HS256 secret for access tokens; set it when several gateways run (default: generated into the data dir)" },
  { key: "demo", env: "BAZAAR_DEMO", flag: "demo", kind: "bool", help: "load demo data on an empty store (default 1; 0 disables)" },
  { key: "logLevel", env: "BAZAAR_LOG_LEVEL", flag: "log-level", kind: "string", help: "fatal|error|warn|info|debug (default info)" },
  { key: "bodyLimit", env: "BAZAAR_BODY_LIMIT", flag: "body-limit", kind: "int", help: "largest accepted request body in bytes (default 65536)" },
  { key: "tokenTtlSeconds", env: "BAZAAR_TOKEN_TTL", flag: "token-ttl", kind: "int", help: "access token lifetime in seconds (default 3600)" },
  {
    key: "tracingUrl",
    env: "BAZAAR_TRACING_URL",
    flag: "tracing-url",
    kind: "string",
    help: "Zipkin-compatible collector for spans of every action call, one trace per request (Jaeger: http://jaeger:9411); default off",
  },
  {
    key: "shutdownGraceMs",
    env: "BAZAAR_SHUTDOWN_GRACE_MS",
    flag: "shutdown-grace-ms",
    kind: "int",
    help: "on SIGTERM: drain requests and calls in flight, then exit; past this many ms exit 1 (default 25000)",
  },
  { key: "publicUrl", env: "BAZAAR_PUBLIC_URL", flag: "public-url", kind: "string", help: "address third parties reach this system at, for payment notifications (default: this node's gateway)" },
  { key: "sandboxSecret", env: "BAZAAR_SANDBOX_SECRET", flag: "sandbox-secret", kind: "string", help: "shared secret of the built-in sandbox payment provider (default: a fixed development secret)" },
  { key: "chainUrl", env: "BAZAAR_CHAIN_URL", flag: "chain-url", kind: "string", help: "EVM JSON-RPC URL the wallet uses (default: Hardhat's in-process development node with a test USDT token)" },
  { key: "chainTokens", env: "BAZAAR_CHAIN_TOKENS", flag: "chain-tokens", kind: "string", help: "ERC-20 tokens on that chain as ASSET=0xaddress:decimals, comma-separated" },
  { key: "chainConfirmations", env: "BAZAAR_CHAIN_CONFIRMATIONS", flag: "chain-confirmations", kind: "int", help: "blocks before a deposit is credited or a withdrawal is final (default 6; reorgs shallower than this are survived)" },
  { key: "walletSeed", env: "BAZAAR_WALLET_SEED", flag: "wallet-seed", kind: "string", help: "HD master seed of deposit addresses, hex or file:<path> (default: generated into the data dir); never logged" },
  { key: "walletHotKey", env: "BAZAAR_WALLET_HOT_KEY", flag: "wallet-hot-key", kind: "string", help: "private key of the hot wallet that signs withdrawals, hex or file:<path> (default: generated into the data dir); never logged" },
  { key: "streamReplicas", env: "BAZAAR_STREAM_REPLICAS", flag: "stream-replicas", kind: "int", help: "copies of the JetStream stream a NATS cluster keeps: 3 on a 3-node cluster survives a node's loss (default 1)" },
  { key: "txMaxAttempts", env: "BAZAAR_TX_MAX_ATTEMPTS", flag: "tx-max-attempts", kind: "int", help: "calls of a failing transaction branch before the coordinator marks it STUCK (default 8; backoff 0.5 s doubling to 30 s)" },
];

export const DEFAULT_CONFIG: BazaarConfig = {
  port: 8080,
  host: "127.0.0.1",
  dataDir: "./data",
  namespace: "dev",
  configStore: "sql",
  demo: true,
  logLevel: "info",
  bodyLimit: 65536,
  tokenTtlSeconds: 3600,
  shutdownGraceMs: 25_000,
  txMaxAttempts: 8,
  dbPool: 10,
  streamReplicas: 1,
  chainConfirmations: 6,
  sandboxSecret: "sandbox-development-secret",
};

function coerce(option: ConfigOption, raw: unknown): unknown {
  if (raw === undefined || raw === null || raw === "") return undefined;
  switch (option.kind) {
    case "int": {
      const n = Number(raw);
      if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${option.env}: expected a non-negative integer, got ${String(raw)}`);
      return n;
    }
    case "bool":
      if (typeof raw === "boolean") return raw;
      if (/^(1|true|yes|on)$/i.test(String(raw))) return true;
      if (/^(0|false|no|off)$/i.test(String(raw))) return false;
      throw new Error(`${option.env}: expected 0 or 1, got ${String(raw)}`);
    default:
      return String(raw);
  }
}

/**
 * Layers, lowest first: defaults < config file (`BAZAAR_CONFIG` or ./bazaar.config.json) < environment < flags.
 * The file uses the same keys as BazaarConfig.
 */
export function loadConfig(
  flags: Record<string, unknown> = {},
  env: NodeJS.ProcessEnv = process.env,
): BazaarConfig {
  const filePath = env.BAZAAR_CONFIG ?? (existsSync("bazaar.config.json") ? "bazaar.config.json" : undefined);
  const file: Record<string, unknown> = filePath ? JSON.parse(readFileSync(filePath, "utf8")) : {};
  const out: Record<string, unknown> = { ...DEFAULT_CONFIG };
  for (const option of CONFIG_OPTIONS) {
    for (const raw of [file[option.key], env[option.env], flags[camel(option.flag)]]) {
      const value = coerce(option, raw);
      if (value !== undefined) out[option.key] = value;
    }
  }
  const config = out as unknown as BazaarConfig;
  config.dataDir = path.resolve(config.dataDir);
  if (!/^[a-z0-9_]{1,32}$/.test(config.namespace))
    throw new Error("BAZAAR_NAMESPACE: use 1-32 lower-case letters, digits or underscores");
  if (config.configStore !== "sql" && config.configStore !== "etcd") throw new Error(`BAZAAR_CONFIG_STORE: expected sql or etcd, got ${String(config.configStore)}`);
  if (config.configStore === "etcd" && !config.etcdUrl) throw new Error("BAZAAR_CONFIG_STORE=etcd needs BAZAAR_ETCD_URL");
  // JetStream keeps 1 to 5 copies of a stream.
  if (config.streamReplicas < 1 || config.streamReplicas > 5) throw new Error(`BAZAAR_STREAM_REPLICAS: expected 1 to 5, got ${config.streamReplicas}`);
  return config;
}

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}
