import { hostname } from "node:os";
import type { Migration } from "kysely";
import type { DestinationStream, Logger } from "pino";
import { type Clock, systemClock } from "../clock/clock";
import { ConfigAgent, type ConfigHandle } from "../config/config.agent";
import { NO_ROUTING, Routing } from "../release/release.domain";
import { parseTags } from "../config/config.domain";
import { eventLoopLag, Guard } from "../guard/guard";
import { watchGuardRules } from "../guard/guard.rules";
import { type Chain, connectChain } from "../chain/chain";
import { type Election, SingleNodeElection } from "../election/election";
import { EtcdElection } from "../election/etcd.election";
import type { Kv } from "../kv/kv";
import { MemoryKv } from "../kv/memory.kv";
import { RedisKv } from "../kv/redis.kv";
import { createLogger } from "../observability/logger";
import { MessageTracing } from "../observability/message-tracing";
import { Metrics } from "../observability/metrics";
import { JetStreamStream } from "../stream/jetstream.stream";
import { SqliteStream } from "../stream/sqlite.stream";
import type { Stream } from "../stream/stream";
import type { BazaarConfig } from "./config";
import { ServiceHost } from "./service-host";

/**
 * What one process shares between its services: configuration, clock, logger, the kv and stream
 * adapters chosen by configuration, and metrics. Services receive it; none constructs its own.
 */
export interface Platform {
  readonly config: BazaarConfig;
  readonly nodeId: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly kv: Kv;
  readonly stream: Stream;
  /** The EVM chain (BAZAAR_CHAIN_URL, else the in-process development node), connected on first use. */
  chain(): Promise<Chain>;
  /** Leader election among replicas: `platform.election.campaign(name, candidate)`. */
  readonly election: Election;
  readonly metrics: Metrics;
  /** Traces across stream messages (with BAZAAR_TRACING_URL): the header events carry, the span a consumer continues. */
  readonly messageTracing: MessageTracing;
  /** Values from the config centre, applied live: `platform.configs.watch(owner, group, key, schema, default)`. */
  readonly configs: ConfigAgent;
  /** This node's tags (BAZAAR_NODE_TAGS). */
  readonly tags: string[];
  /** Gray, weighted and blue-green routing rules (config centre release/routing), applied live. */
  readonly routing: ConfigHandle<Routing>;
  /** Flow control and circuit breaking for every action and gateway route; rules from the config centre (group `guard`). */
  readonly guard: Guard;
  host<T>(service: string, migrations: Record<string, Migration>, tenantTables?: readonly string[]): ServiceHost<T>;
  /** Readiness the gateway reports: set once the node has started and finished its bootstrap. */
  readonly readiness: { ready: boolean };
  /** Where this node's gateway listens, once it does (third parties are told BAZAAR_PUBLIC_URL, else this). */
  readonly endpoint: { url?: string };
  close(): Promise<void>;
}

export interface PlatformOptions {
  clock?: Clock;
  logger?: Logger;
  /** Where the node's own logger writes (stdout by default); tests read the lines from here. */
  logTo?: DestinationStream;
  /** Process metrics are registered once per process; tests that build several platforms turn them off. */
  processMetrics?: boolean;
}

export async function createPlatform(config: BazaarConfig, options: PlatformOptions = {}): Promise<Platform> {
  const nodeId = config.nodeId ?? `${hostname()}-${process.pid}`;
  const clock = options.clock ?? systemClock;
  const messageTracing = new MessageTracing();
  const logger = options.logger ?? createLogger(config.logLevel, nodeId, () => messageTracing.logContext(), options.logTo);
  const prefix = `bazaar:${config.namespace}:`;
  const kv: Kv = config.redisUrl ? new RedisKv(config.redisUrl, prefix) : new MemoryKv(clock, prefix);
  const stream: Stream = config.natsUrl
    ? await JetStreamStream.connect(config.natsUrl, config.namespace, logger, config.streamReplicas)
    : new SqliteStream(config.dataDir, config.namespace, logger, clock);
  const election: Election = config.etcdUrl ? new EtcdElection(config.etcdUrl, config.namespace, logger.child({ svc: "election" })) : new SingleNodeElection();
  const metrics = new Metrics(options.processMetrics ?? true);
  const tags = parseTags(config.nodeTags);
  const configs = new ConfigAgent(config.dataDir, config.namespace, tags, logger.child({ svc: "config-agent" }));
  const lag = eventLoopLag();
  const guard = new Guard(clock, kv, metrics, lag.read);
  watchGuardRules(configs, guard);
  const routing = configs.watch("release", "release", "routing", Routing, NO_ROUTING);
  const platform: Platform = {
    config,
    nodeId,
    clock,
    logger,
    kv,
    stream,
    chain: () => connectChain(config),
    election,
    metrics,
    messageTracing,
    configs,
    tags,
    routing,
    guard,
    host: (service, migrations, tenantTables) => new ServiceHost(platform, service, migrations, tenantTables),
    readiness: { ready: false },
    endpoint: {},
    async close() {
      lag.stop();
      await election.close();
      await stream.close();
      await kv.close();
    },
  };
  return platform;
}
