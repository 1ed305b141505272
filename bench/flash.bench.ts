import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { TokenSigner } from "../src/platform/gateway/jwt";
import { cleanEngines, eventually } from "../test/support/harness";
import { benchNode, operator, userMeta } from "./support";

/**
 * The flash sale over HTTP: a separate process (autocannon) fires purchase attempts through the
 * gateway for `seconds`, each from one of `buyers` signed-in buyers with its own Idempotency-Key, at a
 * campaign of `stock` units (perUserLimit 2). Counts answers (202 admitted, 409 sold out / limit), then
 * waits for every admitted attempt to become an order and checks that exactly the stock was sold.
 * Runs on the embedded kv, or on Redis when `redisUrl` is given.
 */
export async function flashSale(options: { redisUrl?: string; connections?: number; seconds?: number; stock?: number; buyers?: number } = {}) {
  const { redisUrl, connections = 128, seconds = 10, stock = 5_000, buyers = 20_000 } = options;
  // The services a flash-sale deployment runs (the seeds give it its own cluster): no governance.
  const services = ["gateway", "identity", "tenant", "permission", "inventory", "order", "tx", "config", "flash"];
  const { node, dataDir } = await benchNode({}, redisUrl ? { BAZAAR_REDIS_URL: redisUrl } : { BAZAAR_REDIS_URL: "" }, services);
  const { broker, platform } = node;
  const owner = 1;
  const tenant = await broker.call<{ id: string }, object>("tenant.create", { name: "Flash shop", ownerId: owner, quotas: { maxOrdersPerDay: 10_000_000, flashQps: 1_000_000 } }, operator);
  const staff = userMeta(owner);
  await broker.call("inventory.createProduct", { tid: tenant.id, sku: "phone", name: "Phone", price: 50_000 }, staff);
  await broker.call("inventory.setStock", { tid: tenant.id, sku: "phone", quantity: stock }, staff);
  const now = Date.now();
  const campaign = await broker.call<{ id: string }, object>(
    "flash.createCampaign",
    { tenantId: tenant.id, sku: "phone", price: 9_900, stock, startsAt: new Date(now).toISOString(), endsAt: new Date(now + 3_600_000).toISOString(), perUserLimit: 2 },
    staff,
  );
  const signer = TokenSigner.fromConfig(platform.config);
  const tokens: string[] = [];
  for (let i = 0; i < buyers; i++) tokens.push(await signer.sign({ id: 100_000 + i, username: `b${i}`, roles: ["user"] }, 3600, Date.now()));
  const file = path.join(dataDir, "buyers.json");
  writeFileSync(file, JSON.stringify(tokens));
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ["--import", "tsx", path.join(__dirname, "flash-load.ts"), node.url!, campaign.id, file, String(connections), String(seconds)],
    { maxBuffer: 1 << 20 },
  );
  const load = JSON.parse(stdout);
  const settled = await eventually(async () => {
    const view = await broker.call<{ ordered: number; remaining: number; admitted: number }, object>("flash.getCampaign", { id: campaign.id }, userMeta(owner));
    return view.ordered === stock && view;
  }, 120_000).catch(async () => broker.call("flash.getCampaign", { id: campaign.id }, userMeta(owner)));
  await node.stop();
  await cleanEngines(platform.config);
  return { kv: redisUrl ? "redis" : "embedded", stock, buyers, connections, ...load, settled };
}
