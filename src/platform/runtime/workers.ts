import cluster, { type Worker } from "node:cluster";
import type { Logger } from "pino";
import type { BazaarConfig } from "./config";

/** A worker that dies is started again after this long (a crash loop does not spin the CPU). */
const RESTART_DELAY_MS = 1_000;

/** Why these settings cannot run as several worker processes, or undefined when they can. */
export function workersProblem(workers: number, config: Pick<BazaarConfig, "natsUrl" | "redisUrl" | "dbUrl">): string | undefined {
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) return `--workers must be a whole number from 1 to 64, not ${workers}`;
  if (workers === 1) return undefined;
  // Each worker is a node of the cluster: nothing may live only inside one process.
  const missing = [
    ["BAZAAR_NATS_URL", config.natsUrl],
    ["BAZAAR_REDIS_URL", config.redisUrl],
    ["BAZAAR_DB_URL", config.dbUrl],
  ]
    .filter(([, url]) => !url)
    .map(([name]) => name);
  return missing.length ? `--workers ${workers} runs a node per process, which share state only through real engines: set ${missing.join(", ")}` : undefined;
}

/** A worker's node id: the configured one with the worker's number, so the cluster tells them apart. */
export function workerNodeId(configured: string | undefined, workerId: number | undefined): string | undefined {
  return configured !== undefined && workerId !== undefined ? `${configured}-w${workerId}` : configured;
}

/**
 * The primary of `bazaar node --workers n`: starts n worker processes running this same command
 * (Node's cluster module: they share the gateway's port, the primary hands each new connection to
 * one of them), starts again any that dies, and on SIGTERM/SIGINT passes the signal on and exits
 * once every worker has stopped. Like several replicas on one host, for a host with more cores than
 * one Node process uses.
 */
export function superviseWorkers(workers: number, logger: Logger): Promise<void> {
  let stopping = false;
  const start = () => {
    if (stopping) return;
    const worker = cluster.fork();
    worker.on("exit", (code, signal) => onExit(worker, code, signal));
  };
  const onExit = (worker: Worker, code: number | null, signal: string | null) => {
    if (stopping) return;
    logger.error({ worker: worker.id, pid: worker.process.pid, code, signal }, "worker died; starting another");
    setTimeout(start, RESTART_DELAY_MS);
  };
  for (let i = 0; i < workers; i++) start();
  logger.info({ workers }, "workers started");
  return new Promise((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      const running = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead());
      logger.info({ signal, workers: running.length }, "stopping workers");
      let left = running.length;
      if (left === 0) resolve();
      for (const w of running) {
        w.once("exit", () => {
          if (--left === 0) resolve();
        });
        w.process.kill(signal);
      }
    };
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
  });
}
