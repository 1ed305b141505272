import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { afterAll, describe, expect, it, onTestFailed } from "vitest";
import type { ApiClient } from "../src/platform/gateway/client";
import { type ChildNode, spawnNode } from "./support/child-node";
import { cleanEngines, eventually, testConfig } from "./support/harness";
import { freePort } from "./support/net";

/**
 * The wallet killed at its two dangerous moments, against a chain node that survives it (Hardhat's node
 * as its own process): after crediting a deposit but before marking it credited, and after recording a
 * signed withdrawal but before broadcasting it. Restarted, it credits nothing twice and sends the same
 * transaction once — the money on both sides is exact.
 */
const config = testConfig();
const ADMIN = "wallet-crash-admin";
/** Hardhat's public development account #1: funded on every Hardhat node, never a real key. */
const HOT_KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const HOT_ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const FAUCET = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const ETH = 10n ** 18n;
let chain: ChildProcess | undefined;
const started: ChildNode[] = [];
const node = () => started[started.length - 1]!;

afterAll(async () => {
  await node()?.stop();
  chain?.kill("SIGKILL");
  await cleanEngines(config);
});

async function rpc<T>(url: string, method: string, params: unknown[] = []): Promise<T> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) });
  const body = (await res.json()) as { result?: T; error?: { message: string } };
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result as T;
}

async function startNode(port: number, chainUrl: string, crashAt?: string): Promise<ApiClient> {
  const env = { BAZAAR_CHAIN_URL: chainUrl, BAZAAR_CHAIN_CONFIRMATIONS: "2", BAZAAR_WALLET_HOT_KEY: HOT_KEY, BAZAAR_CRASH_AT: crashAt };
  started.push(spawnNode({ config, name: `wallet-${started.length}`, services: "gateway,identity,tx,account,wallet", port, adminPassword: ADMIN, env }));
  return (await node().ready(60_000)).api;
}

describe("wallet crash safety", () => {
  it("credits a deposit once and sends a withdrawal once across kills at its two dangerous moments", async () => {
    onTestFailed(() => void process.stderr.write(`${started.map((n) => n.tail(150)).join("\n")}\n`));
    const chainPort = await freePort();
    const chainUrl = `http://127.0.0.1:${chainPort}`;
    chain = spawn(process.execPath, [path.resolve("node_modules/hardhat/internal/cli/cli.js"), "node", "--hostname", "127.0.0.1", "--port", String(chainPort)], {
      env: { ...process.env, HARDHAT_CONFIG: path.resolve("src/platform/chain/dev-chain.config.js") },
      stdio: ["ignore", "ignore", "pipe"],
    });
    await eventually(() => rpc<string>(chainUrl, "eth_blockNumber").catch(() => undefined), 60_000);
    await rpc(chainUrl, "evm_setIntervalMining", [0]);
    const port = await freePort();

    // 1. A deposit, with the node killed right after the account credited it.
    let api = await startNode(port, chainUrl, "wallet.deposit.credited");
    let admin = await api.login("admin", ADMIN);
    await api.post("/api/exchange/admin/assets", { code: "ETH", decimals: 18 }, admin.token);
    await api.post("/api/auth/register", { username: "holder", password: "password-123" });
    let holder = await api.login("holder", "password-123");
    const { address } = (await api.get("/api/wallet/deposit-address?asset=ETH", holder.token)).body;
    await rpc(chainUrl, "eth_sendTransaction", [{ from: FAUCET, to: address, value: `0x${(3n * ETH).toString(16)}` }]);
    await rpc(chainUrl, "hardhat_mine", ["0x3"]);
    expect(await node().exited).toBeNull();

    api = await startNode(port, chainUrl);
    holder = await api.login("holder", "password-123");
    const balance = async () => (await api.get("/api/exchange/balances", holder.token)).body.find((b: { asset: string }) => b.asset === "ETH");
    await eventually(async () => (await api.get("/api/wallet/deposits", holder.token)).body[0]?.status === "CREDITED", 30_000);
    expect(await balance()).toMatchObject({ available: "3.000000000000000000", frozen: "0.000000000000000000" });
    await node().stop();

    // 2. A withdrawal, with the node killed after recording the signed transaction, before broadcasting it.
    const nonceBefore = Number(await rpc<string>(chainUrl, "eth_getTransactionCount", [HOT_ADDRESS, "latest"]));
    api = await startNode(port, chainUrl, "wallet.withdrawal.recorded");
    holder = await api.login("holder", "password-123");
    const to = "0x000000000000000000000000000000000000bEEF";
    const requested = await api.post("/api/wallet/withdrawals", { asset: "ETH", address: to, amount: "0.5" }, holder.token, randomUUID());
    expect(requested.body.status).toBe("APPROVED");
    expect(await node().exited).toBeNull();
    expect(await rpc<string>(chainUrl, "eth_getBalance", [to, "latest"])).toBe("0x0");

    api = await startNode(port, chainUrl);
    holder = await api.login("holder", "password-123");
    // What the withdrawal read last goes with a timeout: once, in a full CI run, it never read SENT.
    let seen: unknown;
    await eventually(async () => {
      const res = await api.get(`/api/wallet/withdrawals/${requested.body.id}`, holder.token);
      seen = { status: res.status, body: res.body };
      return res.body.status === "SENT";
    }, 30_000).catch((err: Error) => {
      throw new Error(`${err.message}: the withdrawal read ${JSON.stringify(seen)}`);
    });
    await rpc(chainUrl, "hardhat_mine", ["0x3"]);
    await eventually(async () => (await balance())?.frozen === "0.000000000000000000", 30_000);
    expect((await api.get(`/api/wallet/withdrawals/${requested.body.id}`, holder.token)).body.status).toBe("CONFIRMED");
    expect(BigInt(await rpc<string>(chainUrl, "eth_getBalance", [to, "latest"]))).toBe(ETH / 2n);
    expect(Number(await rpc<string>(chainUrl, "eth_getTransactionCount", [HOT_ADDRESS, "latest"]))).toBe(nonceBefore + 1);
    expect(await balance()).toMatchObject({ available: "2.500000000000000000", frozen: "0.000000000000000000" });
    admin = await api.login("admin", ADMIN);
    expect((await api.get("/api/exchange/admin/ledger/audit", admin.token)).body.ok).toBe(true);
  }, 240_000);
});
