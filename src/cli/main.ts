import cluster from "node:cluster";
import { hostname } from "node:os";
import { Command, Option } from "commander";
import { backup, restore } from "../platform/db/backup";
import { CONFIG_OPTIONS, loadConfig } from "../platform/runtime/config";
import { createLogger } from "../platform/observability/logger";
import { type RunningNode, startNode } from "../platform/runtime/system";
import { superviseWorkers, workerNodeId, workersProblem } from "../platform/runtime/workers";
import { ALL_SERVICES, catalogue, GATEWAY_HOOKS } from "../services/catalog";
import { ensureAdmin, loadDemoData, loadExchangeDemo } from "./bootstrap";
import { addAuditCommand, addConfigCommands, addNodeCommands, addReconcileCommand } from "./operator-commands";
import { runGovernanceDemo } from "./demo";

/** Starts a node with the given services, bootstraps what it owns, and stops cleanly on SIGTERM/SIGINT. */
async function runNode(services: string[], flags: Record<string, unknown>): Promise<RunningNode> {
  const loaded = loadConfig(flags);
  const config = { ...loaded, nodeId: workerNodeId(loaded.nodeId, cluster.worker?.id) };
  const node = await startNode(config, { catalogue, services, gateway: GATEWAY_HOOKS });
  const { broker, platform } = node;
  if (services.includes("identity")) await ensureAdmin(broker, config.adminPassword);
  if (config.demo && services.includes("identity")) await loadDemoData(broker, platform.logger, platform.clock);
  if (config.demo && services.includes("account")) await loadExchangeDemo(broker);
  platform.readiness.ready = true;
  if (node.url) platform.logger.info({ url: node.url, services }, "bazaar ready");
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    platform.logger.info({ signal, graceMs: config.shutdownGraceMs }, "shutting down");
    // Past the grace period the orchestrator kills us anyway; exit on our own terms, and say so.
    setTimeout(() => {
      platform.logger.error({ graceMs: config.shutdownGraceMs }, "shutdown did not finish within the grace period");
      process.exit(1);
    }, config.shutdownGraceMs).unref();
    await node.stop();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  return node;
}

function withConfigFlags(command: Command): Command {
  for (const option of CONFIG_OPTIONS) {
    const flag = option.kind === "bool" ? `--${option.flag} <0|1>` : `--${option.flag} <value>`;
    command.addOption(new Option(flag, option.help).env(option.env));
  }
  return command;
}

const program = new Command("bazaar").description("bazaar: marketplace governance, shop and exchange on one service platform");

withConfigFlags(program.command("start").description("run every service in this process, on the embedded defaults unless engine URLs are set")).action(
  async (flags) => {
    await runNode(ALL_SERVICES, flags);
  },
);

const nodeCommand = withConfigFlags(
  program
    .command("node")
    .description("run some services in this process (nodes find each other over NATS, BAZAAR_NATS_URL); or list, drain and undrain nodes")
    .addOption(new Option("--services <list>", `comma-separated, from: ${ALL_SERVICES.join(", ")}`).env("BAZAAR_SERVICES"))
    .addOption(
      new Option("--workers <n>", "run the node in n processes sharing the gateway port, one per core (needs the NATS, Redis and database URLs; default 1)").env("BAZAAR_WORKERS"),
    ),
).action(async (flags) => {
  const services = String(flags.services ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (services.length === 0) throw new Error("bazaar node: give the services to run with --services a,b (or a subcommand: list, drain, undrain)");
  const workers = Number(flags.workers ?? 1);
  if (cluster.isPrimary) {
    const config = loadConfig(flags);
    const problem = workersProblem(workers, config);
    if (problem) throw new Error(`bazaar node: ${problem}`);
    if (workers > 1) {
      await superviseWorkers(workers, createLogger(config.logLevel, config.nodeId ?? `${hostname()}-${process.pid}`));
      process.exit(0);
    }
  }
  await runNode(services, flags);
});
addNodeCommands(nodeCommand);

withConfigFlags(
  program
    .command("backup")
    .description("back up every service database of the namespace into a directory (online for SQLite; drain or stop the nodes for one cut across services)")
    .requiredOption("--to <dir>", "an empty directory"),
).action(async (flags) => {
  const manifest = await backup(loadConfig(flags), String(flags.to), Date.now());
  process.stdout.write(`${JSON.stringify(manifest, null, 2)}\n`);
});

withConfigFlags(
  program
    .command("restore")
    .description("restore a backup into the namespace's stores; start the nodes afterwards")
    .requiredOption("--from <dir>", "a directory written by bazaar backup")
    .option("--force", "replace databases that exist"),
).action(async (flags) => {
  const manifest = await restore(loadConfig(flags), String(flags.from), Boolean(flags.force));
  process.stdout.write(`${JSON.stringify(manifest, null, 2)}\n`);
});

program
  .command("demo")
  .description("walk a scenario end to end on a throw-away system, printing each step")
  .argument("<scenario>", "governance")
  .action(async (scenario: string) => {
    if (scenario !== "governance") throw new Error(`unknown demo "${scenario}"; try: governance`);
    await runGovernanceDemo();
  });

addConfigCommands(program);
addReconcileCommand(program);
addAuditCommand(program);

program.parseAsync(process.argv).catch((err) => {
  process.stderr.write(`bazaar: ${(err as Error).message}\n`);
  process.exit(1);
});
