import { execFile, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { TokenSigner } from "../src/platform/gateway/jwt";
import { eventually } from "../test/support/harness";
import { benchNode, operator, stopBenchNode } from "./support";

/**
 * Exchange order entry over HTTP: a separate process (autocannon) posts limit orders through the
 * gateway for `seconds` — buyers and sellers alternating around one price, so about half of them trade —
 * each order validated, its funds frozen as a TCC branch, its command appended to the log. Counts the
 * answers (201), then waits until the matching service has decided every accepted order and the trading
 * service has settled every trade. Meanwhile `subscribers` WebSocket clients (another process) follow
 * the symbol's depth and trades: the market-data fan-out, measured at the subscribers.
 */
export async function orderEntry(options: { connections?: number; seconds?: number; traders?: number; subscribers?: number } = {}) {
  const { connections = 32, seconds = 10, traders = 200, subscribers = 1000 } = options;
  const services = ["gateway", "identity", "config", "account", "trading", "matching", "market"];
  const { node, dataDir } = await benchNode({}, {}, services);
  const { broker, platform } = node;
  await broker.call("account.createAsset", { code: "BTC", decimals: 8 }, operator);
  await broker.call("account.createAsset", { code: "USDT", decimals: 6 }, operator);
  await broker.call(
    "trading.createSymbol",
    { symbol: "BTC-USDT", base: "BTC", quote: "USDT", tickSize: "0.01", lotSize: "0.0001", minNotional: "1", makerFeeBps: 10, takerFeeBps: 20 },
    operator,
  );
  const signer = TokenSigner.fromConfig(platform.config);
  const tokens: string[] = [];
  for (let i = 0; i < traders; i++) {
    const userId = 500_000 + i;
    for (const [asset, amount] of [["BTC", "1000"], ["USDT", "100000000"]] as const)
      await broker.call("account.adjust", { userId, asset, amount, reason: "bench" }, { ...operator, meta: { ...operator.meta, idempotencyKey: randomUUID() } });
    tokens.push(await signer.sign({ id: userId, username: `t${i}`, roles: ["user"] }, 3600, Date.now()));
  }
  const file = path.join(dataDir, "traders.json");
  writeFileSync(file, JSON.stringify(tokens));
  const fanout = spawn(process.execPath, ["--import", "tsx", path.join(__dirname, "fanout-load.ts"), node.url!, "BTC-USDT", String(subscribers)], { stdio: ["ignore", "pipe", "inherit"] });
  let fanoutOut = "";
  fanout.stdout.on("data", (b: Buffer) => (fanoutOut += String(b)));
  await eventually(async () => fanoutOut.includes("ready\n"), 120_000);
  const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", path.join(__dirname, "order-entry-load.ts"), node.url!, file, String(connections), String(seconds)], {
    maxBuffer: 1 << 20,
  });
  const load = JSON.parse(stdout);
  const started = Date.now();
  // Decided: the engine has applied every accepted order; settled: the trading service has no order still in entry or awaiting events.
  const accepted = load.statusCodes?.["201"]?.count ?? 0;
  await eventually(async () => {
    // The log is drained when the engine's sequence stops moving.
    const depth = await broker.call<{ sequence: number }, object>("matching.depth", { symbol: "BTC-USDT" });
    await new Promise((r) => setTimeout(r, 500));
    const again = await broker.call<{ sequence: number }, object>("matching.depth", { symbol: "BTC-USDT" });
    return depth.sequence === again.sequence && depth.sequence > 0;
  }, 600_000);
  const drainSeconds = (Date.now() - started) / 1000;
  // The last pushes reach the subscribers a moment after the engine is done.
  await new Promise((r) => setTimeout(r, 1000));
  const finished = new Promise((r) => fanout.once("exit", r));
  fanout.kill("SIGTERM");
  await finished;
  const marketData = JSON.parse(fanoutOut.split("\n").filter((l) => l.startsWith("{")).pop() ?? "null");
  await stopBenchNode(node);
  return { traders, connections, ...load, accepted, secondsToDecideTheBacklog: Math.round(drainSeconds * 10) / 10, marketData };
}
