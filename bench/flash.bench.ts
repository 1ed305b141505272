import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import type { ServiceBroker } from "moleculer";
import { TokenSigner } from "../src/platform/gateway/jwt";
import type { Platform } from "../src/platform/runtime/platform";
import { cleanEngines, eventually } from "../test/support/harness";
import { benchNode, operator, userMeta } from "./support";

const ATTEMPTS_ROUTE = "/api/flash/campaigns/:id/attempts";
const OWNER = 1;

export interface FlashSaleOptions {
  redisUrl?: string;
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
 * it). Answers are counted by the server's own request metrics (202 admitted, 409 sold out / limit);
 * then the run waits for every admitted attempt to become an order and checks that exactly the stock
 * was sold. Runs on the embedded kv, or on Redis when `redisUrl` is given.
 */
export async function flashSale(options: FlashSaleOptions = {}) {
  const { redisUrl, connections = 128, seconds = 10, stock = 5_000, buyers = 20_000 } = options;
  // The services a flash-sale deployment runs (the seeds give it its own cluster): no governance.
  const services = ["gateway", "identity", "tenant", "permission", "inventory", "order", "tx", "config", "flash"];
  const { node, dataDir } = await benchNode({}, redisUrl ? { BAZAAR_REDIS_URL: redisUrl } : { BAZAAR_REDIS_URL: "" }, services);
  const { broker, platform } = node;
  const tenant = await broker.call<{ id: string }, object>("tenant.create", { name: "Flash shop", ownerId: OWNER, quotas: { maxOrdersPerDay: 10_000_000, flashQps: 1_000_000 } }, operator);
  const signer = TokenSigner.fromConfig(platform.config);
  const tokenFile = async (name: string, first: number, count: number) => {
    const tokens: string[] = [];
    for (let i = first; i < first + count; i++) tokens.push(await signer.sign({ id: i, username: `b${i}`, roles: ["user"] }, 3600, Date.now()));
    const file = path.join(dataDir, name);
    writeFileSync(file, `${tokens.join("\n")}\n`);
    return file;
  };
  const sale = (sku: string, units: number, file: string, loadSeconds: number) =>
    run({ broker, platform, url: node.url!, tid: tenant.id, sku, stock: units, tokens: file, connections, seconds: loadSeconds });

  await sale("warm-up", 1_000, await tokenFile("warm-up.txt", 10_000, 2_000), 3);
  const measured = await sale("phone", stock, await tokenFile("buyers.txt", 100_000, buyers), seconds);
  await node.stop();
  await cleanEngines(platform.config);
  return { kv: redisUrl ? "redis" : "embedded", stock, buyers, connections, ...measured };
}

interface Sale {
  broker: ServiceBroker;
  platform: Platform;
  url: string;
  tid: string;
  sku: string;
  stock: number;
  tokens: string;
  connections: number;
  seconds: number;
}

async function run({ broker, platform, url, tid, sku, stock, tokens, connections, seconds }: Sale) {
  const staff = userMeta(OWNER);
  await broker.call("inventory.createProduct", { tid, sku, name: sku, price: 50_000 }, staff);
  await broker.call("inventory.setStock", { tid, sku, quantity: stock }, staff);
  const now = Date.now();
  const campaign = await broker.call<{ id: string }, object>(
    "flash.createCampaign",
    { tenantId: tid, sku, price: 9_900, stock, startsAt: new Date(now).toISOString(), endsAt: new Date(now + 3_600_000).toISOString(), perUserLimit: 2 },
    staff,
  );
  const before = await answers(platform);
  const cpu = process.cpuUsage();
  const { stdout } = await promisify(execFile)(
    "wrk",
    ["-t1", `-c${connections}`, `-d${seconds}s`, "--timeout", "5s", "-s", path.join(__dirname, "flash-load.lua"), url, "--", tokens, `/api/flash/campaigns/${campaign.id}/attempts`],
    { maxBuffer: 1 << 20 },
  ).catch((err: NodeJS.ErrnoException) => {
    throw err.code === "ENOENT" ? new Error("the flash benchmark needs wrk (Debian: apt-get install wrk)") : err;
  });
  const used = process.cpuUsage(cpu);
  const load = JSON.parse(stdout.trim().split("\n").pop()!) as { requests: number; seconds: number };
  const after = await answers(platform);
  const statusCodes = Object.fromEntries(Object.entries(after).map(([status, n]) => [status, n - (before[status] ?? 0)]).filter(([, n]) => Number(n) > 0));
  const started = Date.now();
  const settled = await eventually(async () => {
    const view = await broker.call<{ ordered: number; remaining: number; admitted: number }, object>("flash.getCampaign", { id: campaign.id }, staff);
    return view.ordered === stock && view;
  }, 180_000).catch(async () => broker.call("flash.getCampaign", { id: campaign.id }, staff));
  return {
    ...load,
    attemptsPerSecond: Math.round(load.requests / load.seconds),
    statusCodes,
    serverCpuMicrosPerAttempt: Math.round((used.user + used.system) / Math.max(1, load.requests)),
    settleSeconds: Math.round((Date.now() - started) / 100) / 10,
    settled,
  };
}

/** Answers to purchase attempts so far, by HTTP status, from the gateway's request counter. */
async function answers(platform: Platform): Promise<Record<string, number>> {
  const { values } = await platform.metrics.httpRequests.get();
  const out: Record<string, number> = {};
  for (const v of values) if (v.labels.route === ATTEMPTS_ROUTE) out[String(v.labels.status)] = (out[String(v.labels.status)] ?? 0) + v.value;
  return out;
}
