import { randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { ServiceBroker } from "moleculer";
import { TokenSigner } from "../src/platform/gateway/jwt";
import { type ChildNode, childrenOf, spawnNode } from "../test/support/child-node";
import { eventually } from "../test/support/harness";
import { freePort } from "../test/support/net";
import { benchNode, operator, userMeta, wrk, stopBenchNode } from "./support";

const OWNER = 1;
/** The services a flash-sale deployment runs (the seeds give it its own cluster): no governance. */
const FLASH_SERVICES = ["gateway", "identity", "tenant", "permission", "inventory", "order", "tx", "config", "flash"];

export interface FlashSaleOptions {
  redisUrl?: string;
  /**
   * Run the flash services in this many processes (`bazaar node --workers`) instead of in this one;
   * needs the real engines (BAZAAR_DB_URL and BAZAAR_NATS_URL set, and `redisUrl`).
   */
  workers?: number;
  connections?: number;
  seconds?: number;
  stock?: number;
  buyers?: number;
}

/**
 * The flash sale over HTTP: a separate process (wrk) fires purchase attempts through the gateway for
 * `seconds`, each from one of `buyers` signed-in buyers with its own Idempotency-Key, at a campaign of
 * `stock` units (perUserLimit 2). The server is warmed first by a smaller sale with other buyers (a
 * sale opens on a running shop, not a cold process; the measured buyers' tokens are still new to
 * it). wrk counts the answers by status (202 admitted, 409 sold out / limit); then the run waits for
 * every admitted attempt to become an order and checks that exactly the stock was sold. Runs on the
 * embedded kv in this process, on Redis in this process, or on the real engines in `workers` processes.
 */
export async function flashSale(options: FlashSaleOptions = {}) {
  const { redisUrl, workers, connections = 128, seconds = 10, stock = 5_000, buyers = 20_000 } = options;
  const jwtSecret = randomBytes(32).toString("base64url");
  const env = { BAZAAR_REDIS_URL: redisUrl ?? "", BAZAAR_JWT_SECRET: jwtSecret };
  // With workers, this process only sets the sale up (a node with no services of its own, over NATS).
  const { node, dataDir } = await benchNode({}, env, workers ? [] : FLASH_SERVICES);
  const { broker, platform } = node;
  let server: ChildNode | undefined;
  let url = node.url;
  if (workers) {
    if (!redisUrl || !platform.config.natsUrl || !platform.config.dbUrl) throw new Error("the flash benchmark with workers needs BAZAAR_DB_URL, BAZAAR_REDIS_URL and BAZAAR_NATS_URL");
    const port = await freePort();
    server = spawnNode({ config: platform.config, name: "flash", services: FLASH_SERVICES.join(","), port, env: { ...env, BAZAAR_WORKERS: String(workers), BAZAAR_NODE_ID: undefined } });
    await server.ready(120_000);
    await broker.waitForServices(FLASH_SERVICES.filter((s) => s !== "gateway"), 60_000);
    url = `http://127.0.0.1:${port}`;
  }
  try {
    const tenant = await broker.call<{ id: string }, object>("tenant.create", { name: "Flash shop", ownerId: OWNER, quotas: { maxOrdersPerDay: 10_000_000, flashQps: 1_000_000 } }, operator);
    const signer = new TokenSigner(jwtSecret);
    const tokenFile = async (name: string, first: number, count: number) => {
      const tokens: string[] = [];
      for (let i = first; i < first + count; i++) tokens.push(await signer.sign({ id: i, username: `b${i}`, roles: ["user"] }, 3600, Date.now()));
      const file = path.join(dataDir, name);
      writeFileSync(file, `${tokens.join("\n")}\n`);
      return file;
    };
    const serverCpu = () => (server ? treeCpuMicros(server.process.pid!) : cpuMicros(process.cpuUsage()));
    const sale = (sku: string, units: number, file: string, loadSeconds: number) =>
      run({ broker, url: url!, tid: tenant.id, sku, stock: units, tokens: file, connections, seconds: loadSeconds, serverCpu });

    await sale("warm-up", 1_000, await tokenFile("warm-up.txt", 10_000, 2_000), 3);
    const measured = await sale("phone", stock, await tokenFile("buyers.txt", 100_000, buyers), seconds);
    return { kv: redisUrl ? "redis" : "embedded", processes: workers ?? 1, stock, buyers, connections, ...measured };
  } catch (err) {
    // The workers' own output says why they failed.
    if (server) process.stderr.write(`${server.tail(200)}\n`);
    throw err;
  } finally {
    await server?.stop("SIGTERM");
    await stopBenchNode(node);
  }
}

interface Sale {
  broker: ServiceBroker;
  url: string;
  tid: string;
  sku: string;
  stock: number;
  tokens: string;
  connections: number;
  seconds: number;
  /** CPU time the server has used so far, in microseconds. */
  serverCpu: () => number;
}

async function run({ broker, url, tid, sku, stock, tokens, connections, seconds, serverCpu }: Sale) {
  const staff = userMeta(OWNER);
  await broker.call("inventory.createProduct", { tid, sku, name: sku, price: 50_000 }, staff);
  await broker.call("inventory.setStock", { tid, sku, quantity: stock }, staff);
  const now = Date.now();
  const campaign = await broker.call<{ id: string }, object>(
    "flash.createCampaign",
    { tenantId: tid, sku, price: 9_900, stock, startsAt: new Date(now).toISOString(), endsAt: new Date(now + 3_600_000).toISOString(), perUserLimit: 2 },
    staff,
  );
  const cpuBefore = serverCpu();
  const load = await wrk<{ requests: number; seconds: number }>([
    "-t1", `-c${connections}`, `-d${seconds}s`, "--timeout", "5s", "-s", path.join(__dirname, "flash-load.lua"), url, "--", tokens, `/api/flash/campaigns/${campaign.id}/attempts`,
  ]);
  const cpu = serverCpu() - cpuBefore;
  const started = Date.now();
  const settled = await eventually(async () => {
    const view = await broker.call<{ ordered: number; remaining: number; admitted: number }, object>("flash.getCampaign", { id: campaign.id }, staff);
    return view.ordered === stock && view;
  }, 180_000).catch(async () => broker.call("flash.getCampaign", { id: campaign.id }, staff));
  return {
    ...load,
    attemptsPerSecond: Math.round(load.requests / load.seconds),
    serverCpuMicrosPerAttempt: Math.round(cpu / Math.max(1, load.requests)),
    settleSeconds: Math.round((Date.now() - started) / 100) / 10,
    settled,
  };
}

const cpuMicros = (usage: NodeJS.CpuUsage) => usage.user + usage.system;

/** CPU a process and its children (the workers) have used, in microseconds, from /proc. */
function treeCpuMicros(pid: number): number {
  const ticksPerSecond = 100;
  const pids = [pid, ...childrenOf(pid)];
  let ticks = 0;
  for (const p of pids) {
    // Fields after the command name: utime and stime are the 12th and 13th.
    const fields = readFileSync(`/proc/${p}/stat`, "utf8").split(") ")[1].split(" ");
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return (ticks / ticksPerSecond) * 1e6;
}
