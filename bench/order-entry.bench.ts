import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { TokenSigner } from "../src/platform/gateway/jwt";
import { eventually } from "../test/support/harness";
import type { ServiceBroker } from "moleculer";
import { benchNode, operator, stopBenchNode, userMeta, wrk } from "./support";

/**
 * Exchange order entry over HTTP: a separate process (wrk, with order-entry-load.lua) posts limit orders through the
 * gateway for `seconds` — buyers and sellers alternating around one price, so about half of them trade —
 * each order validated, its funds frozen as a TCC branch, its command appended to the log. Counts the
 * answers (201), then waits until the matching service has decided every accepted order and the trading
 * service has settled every trade. Meanwhile `subscribers` WebSocket clients (another process) follow
 * the symbol's depth and trades: the market-data fan-out, measured at the subscribers (over the warm-up
 * and the measured load both).
 *
 * A first load of `warmupSeconds` (not counted, its backlog decided before the measured one starts)
 * lets the JIT compile the order path, as on a node that has been running.
 */
export async function orderEntry(options: { connections?: number; seconds?: number; warmupSeconds?: number; traders?: number; subscribers?: number } = {}) {
  const { connections = 32, seconds = 10, warmupSeconds = 5, traders = 200, subscribers = 1000 } = options;
  const { node, dataDir } = await tradingFloor(traders);
  const { broker, platform } = node;
  const signer = TokenSigner.fromConfig(platform.config);
  const tokens: string[] = [];
  for (let i = 0; i < traders; i++) {
    const userId = TRADER_IDS + i;
    tokens.push(await signer.sign({ id: userId, username: `t${i}`, roles: ["user"] }, 3600, Date.now()));
  }
  const file = path.join(dataDir, "traders.txt");
  writeFileSync(file, `${tokens.join("\n")}\n`);
  const fanout = spawn(process.execPath, ["--import", "tsx", path.join(__dirname, "fanout-load.ts"), node.url!, "BTC-USDT", String(subscribers)], { stdio: ["ignore", "pipe", "inherit"] });
  let fanoutOut = "";
  fanout.stdout.on("data", (b: Buffer) => (fanoutOut += String(b)));
  await eventually(async () => fanoutOut.includes("ready\n"), 120_000);
  const load = (duration: number) =>
    wrk<{ requests: number; seconds: number; statusCodes: Record<string, number> }>([
      "-t1", `-c${connections}`, `-d${duration}s`, "--timeout", "5s", "-s", path.join(__dirname, "order-entry-load.lua"), node.url!, "--", file,
    ]);
  if (warmupSeconds > 0) {
    await load(warmupSeconds);
    await drained(broker);
  }
  const measured = await load(seconds);
  const started = Date.now();
  // Decided: the engine has applied every accepted order; settled: the trading service has no order still in entry or awaiting events.
  const accepted = measured.statusCodes["201"] ?? 0;
  await drained(broker);
  const drainSeconds = (Date.now() - started) / 1000;
  // The last pushes reach the subscribers a moment after the engine is done.
  await new Promise((r) => setTimeout(r, 1000));
  const finished = new Promise((r) => fanout.once("exit", r));
  fanout.kill("SIGTERM");
  await finished;
  const marketData = JSON.parse(fanoutOut.split("\n").filter((l) => l.startsWith("{")).pop() ?? "null");
  await stopBenchNode(node);
  return { traders, connections, warmupSeconds, ...measured, ordersPerSecond: Math.round(accepted / measured.seconds), accepted, secondsToDecideTheBacklog: Math.round(drainSeconds * 10) / 10, marketData };
}

const TRADER_IDS = 500_000;

/** A node with the exchange's services, BTC-USDT listed, and `traders` accounts funded in both assets. */
async function tradingFloor(traders: number) {
  const { node, dataDir } = await benchNode({}, {}, ["gateway", "identity", "config", "account", "trading", "matching", "market"]);
  const { broker } = node;
  await broker.call("account.createAsset", { code: "BTC", decimals: 8 }, operator);
  await broker.call("account.createAsset", { code: "USDT", decimals: 6 }, operator);
  await broker.call(
    "trading.createSymbol",
    { symbol: "BTC-USDT", base: "BTC", quote: "USDT", tickSize: "0.01", lotSize: "0.0001", minNotional: "1", makerFeeBps: 10, takerFeeBps: 20 },
    operator,
  );
  for (let i = 0; i < traders; i++)
    for (const [asset, amount] of [["BTC", "1000"], ["USDT", "100000000"]] as const)
      await broker.call("account.adjust", { userId: TRADER_IDS + i, asset, amount, reason: "bench" }, { ...operator, meta: { ...operator.meta, idempotencyKey: randomUUID() } });
  return { node, dataDir };
}

/** Waits until the engine has applied the whole log: its sequence stops moving. */
async function drained(broker: ServiceBroker): Promise<void> {
  await eventually(async () => {
    const depth = await broker.call<{ sequence: number }, object>("matching.depth", { symbol: "BTC-USDT" });
    await new Promise((r) => setTimeout(r, 500));
    const again = await broker.call<{ sequence: number }, object>("matching.depth", { symbol: "BTC-USDT" });
    return depth.sequence === again.sequence && depth.sequence > 0;
  }, 600_000);
}

/**
 * Order placement in-process, for A/B of the order path (`npm run bench:compare -- <ref> 4 4000
 * placement`): `orders` limit orders through `trading.place`, `inFlight` at a time, buyers and sellers
 * alternating around one price as in the HTTP benchmark; CPU from the first order until the engine
 * has applied the last (with the settling consumers' work), per order. No HTTP, no subscribers.
 */
export async function orderPlacement(orders = 4000, inFlight = 32, traders = 200) {
  const { node } = await tradingFloor(traders);
  const { broker } = node;
  let next = 0;
  const started = process.hrtime.bigint();
  const cpuBefore = process.cpuUsage();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next < orders) {
        const i = next++;
        const side = i % 2 === 0 ? "BUY" : "SELL";
        const price = (30_000 + (side === "BUY" ? 1 : -1) * ((i >> 1) % 5)).toFixed(2);
        await broker.call("trading.place", { symbol: "BTC-USDT", side, type: "LIMIT", price, quantity: "0.01" }, userMeta(TRADER_IDS + (i % traders)));
      }
    }),
  );
  const placedSeconds = Number(process.hrtime.bigint() - started) / 1e9;
  await drained(broker);
  // The drain check's own half-second waits are idle time, not the order path's.
  const cpu = process.cpuUsage(cpuBefore);
  await stopBenchNode(node);
  return { orders, ordersPerSecond: Math.round(orders / placedSeconds), cpuUsPerOrder: Math.round((cpu.user + cpu.system) / orders) };
}
