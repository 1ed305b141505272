import { randomUUID } from "node:crypto";
import { type Address, erc20Abi, getAddress } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestSystem, type TestSystem } from "../../../../test/support/harness";
import type { Chain } from "../../../platform/chain/chain";

/**
 * The wallet against Hardhat's in-process chain node: deposits (native and the test ERC-20) credited
 * once after the confirmations, a reorganisation that takes a pending deposit away, and withdrawals
 * with limits, operator approval, signing, broadcast and confirmation.
 */
const CONFIRMATIONS = 4;
let sys: TestSystem;
let chain: Chain;
type User = { token: string; id: number; username: string };
let alice: User;

const tick = () => sys.call("wallet.tick");
const mine = (n: number) => chain.dev!.mine(n);
const balances = async (u: User) =>
  Object.fromEntries(((await sys.api.get("/api/exchange/balances", u.token)).body as { asset: string; available: string; frozen: string }[]).map((b) => [b.asset, b]));
const withdraw = (u: User, body: object, key = randomUUID()) => sys.api.post("/api/wallet/withdrawals", body, u.token, key);
const stranger = () => privateKeyToAccount(generatePrivateKey()).address;
const tokenBalance = (address: Address) => chain.client.readContract({ address: chain.tokens[0].address, abi: erc20Abi, functionName: "balanceOf", args: [address] });

beforeAll(async () => {
  sys = await startTestSystem({ services: ["gateway", "identity", "tx", "account", "wallet"], config: { chainConfirmations: CONFIRMATIONS } });
  chain = await sys.node.platform.chain();
  // Blocks only when a transaction or the test makes one.
  await chain.dev!.setIntervalMining(0);
  await sys.api.post("/api/exchange/admin/assets", { code: "ETH", decimals: 18 }, sys.admin.token);
  await sys.api.post("/api/exchange/admin/assets", { code: "USDT", decimals: 6 }, sys.admin.token);
  alice = await sys.user();
  await tick();
}, 60_000);
afterAll(() => sys?.stop());

describe("deposits", () => {
  it("gives each user one HD address, and credits native and token deposits once, after the confirmations", async () => {
    const first = await sys.api.get("/api/wallet/deposit-address?asset=ETH", alice.token);
    expect(first.status).toBe(200);
    const address = first.body.address as Address;
    expect(getAddress(address)).toBe(address);
    expect((await sys.api.get("/api/wallet/deposit-address?asset=USDT", alice.token)).body.address).toBe(address);
    expect((await sys.api.get("/api/wallet/deposit-address?asset=DOGE", alice.token)).body.error.code).toBe("ASSET_NOT_SUPPORTED");
    const bob = await sys.user();
    expect((await sys.api.get("/api/wallet/deposit-address?asset=ETH", bob.token)).body.address).not.toBe(address);

    await chain.dev!.faucet(address, "ETH", 1_500_000_000_000_000_000n); // block B
    await chain.dev!.faucet(address, "USDT", 250_000_000n); // block B+1
    await tick();
    const pending = (await sys.api.get("/api/wallet/deposits", alice.token)).body;
    expect(pending.map((d: { asset: string; status: string; amount: string }) => [d.asset, d.amount, d.status]).sort()).toEqual([
      ["ETH", "1.500000000000000000", "PENDING"],
      ["USDT", "250.000000", "PENDING"],
    ]);
    expect(await balances(alice)).toEqual({});

    await mine(1); // head B+2: ETH has 3 of 4 confirmations
    await tick();
    expect((await balances(alice)).ETH).toBeUndefined();
    await mine(1); // head B+3: ETH final, USDT has 3
    await tick();
    expect((await balances(alice)).ETH.available).toBe("1.500000000000000000");
    expect((await balances(alice)).USDT).toBeUndefined();
    await mine(1);
    await tick();
    await tick();
    expect(await balances(alice)).toEqual({
      ETH: { asset: "ETH", available: "1.500000000000000000", frozen: "0.000000000000000000" },
      USDT: { asset: "USDT", available: "250.000000", frozen: "0.000000" },
    });
    expect((await sys.api.get("/api/wallet/deposits", alice.token)).body.every((d: { status: string }) => d.status === "CREDITED")).toBe(true);
  });

  it("forgets a pending deposit that a reorganisation took away, and credits the one the new chain has", async () => {
    const { address } = (await sys.api.get("/api/wallet/deposit-address?asset=ETH", alice.token)).body;
    const before = await chain.dev!.snapshot();
    await chain.dev!.faucet(address, "ETH", 2_000_000_000_000_000_000n);
    await mine(1);
    await tick();
    expect((await sys.api.get("/api/wallet/deposits", alice.token)).body.filter((d: { status: string }) => d.status === "PENDING")).toHaveLength(1);

    // Another branch wins: the blocks with the deposit are gone, and the new chain is longer.
    await chain.dev!.revert(before);
    await mine(3);
    await tick();
    expect((await sys.api.get("/api/wallet/deposits", alice.token)).body.filter((d: { status: string }) => d.status === "PENDING")).toHaveLength(0);
    await mine(CONFIRMATIONS);
    await tick();
    expect((await balances(alice)).ETH.available).toBe("1.500000000000000000");

    // A transfer on the new chain is credited as usual.
    await chain.dev!.faucet(address, "ETH", 250_000_000_000_000_000n);
    await mine(CONFIRMATIONS);
    await tick();
    expect((await balances(alice)).ETH.available).toBe("1.750000000000000000");
  });
});

describe("withdrawals", () => {
  it("refuses bad requests with a code and freezes nothing", async () => {
    const to = stranger();
    const refused = async (body: object) => {
      const res = await withdraw(alice, body);
      return [res.status, res.body.error?.code];
    };
    expect(await refused({ asset: "ETH", address: "0x1234", amount: "0.1" })).toEqual([400, "INVALID_ADDRESS"]);
    expect(await refused({ asset: "ETH", address: to.toLowerCase().replace("0x", "0X"), amount: "0.1" })).toEqual([400, "INVALID_ADDRESS"]);
    // A valid checksum with one letter's case flipped (every random address has letters a-f).
    const letter = to.slice(2).search(/[a-fA-F]/) + 2;
    const flipped = to[letter] === to[letter].toUpperCase() ? to[letter].toLowerCase() : to[letter].toUpperCase();
    const badChecksum = to.slice(0, letter) + flipped + to.slice(letter + 1);
    expect(await refused({ asset: "ETH", address: badChecksum, amount: "0.1" })).toEqual([400, "INVALID_ADDRESS"]);
    expect(await refused({ asset: "ETH", address: "0x0000000000000000000000000000000000000000", amount: "0.1" })).toEqual([400, "INVALID_ADDRESS"]);
    expect(await refused({ asset: "ETH", address: to, amount: "0.1234567890123456789" })).toEqual([400, "INVALID_AMOUNT"]);
    expect(await refused({ asset: "ETH", address: to, amount: "0" })).toEqual([400, "INVALID_AMOUNT"]);
    expect(await refused({ asset: "ETH", address: to, amount: "51" })).toEqual([400, "ABOVE_LIMIT"]);
    expect(await refused({ asset: "ETH", address: to, amount: "5" })).toEqual([409, "INSUFFICIENT_BALANCE"]);
    expect(await refused({ asset: "DOGE", address: to, amount: "1" })).toEqual([404, "ASSET_NOT_FOUND"]);
    const noKey = await sys.api.post("/api/wallet/withdrawals", { asset: "ETH", address: to, amount: "0.1" }, alice.token);
    expect(noKey.body.error.code).toBe("IDEMPOTENCY_KEY_REQUIRED");
    expect((await balances(alice)).ETH).toEqual({ asset: "ETH", available: "1.750000000000000000", frozen: "0.000000000000000000" });
  });

  it("sends a small withdrawal at once, waits for an operator above the threshold, and pays out of frozen funds on confirmation", async () => {
    const small = stranger();
    const key = randomUUID();
    const usdt = await withdraw(alice, { asset: "USDT", address: small, amount: "100" }, key);
    expect(usdt.status).toBe(201);
    expect(usdt.body).toMatchObject({ asset: "USDT", amount: "100.000000", status: "APPROVED" });
    expect((await withdraw(alice, { asset: "USDT", address: small, amount: "100" }, key)).body.id).toBe(usdt.body.id);
    expect((await balances(alice)).USDT).toMatchObject({ available: "150.000000", frozen: "100.000000" });

    const big = stranger();
    const eth = await withdraw(alice, { asset: "ETH", address: big, amount: "1.2" });
    expect(eth.body.status).toBe("PENDING_APPROVAL");
    expect((await balances(alice)).ETH).toMatchObject({ available: "0.550000000000000000", frozen: "1.200000000000000000" });

    await tick();
    const sent = (await sys.api.get(`/api/wallet/withdrawals/${usdt.body.id}`, alice.token)).body;
    expect(sent.status).toBe("SENT");
    expect(sent.txHash).toMatch(/^0x[0-9a-f]{64}$/);
    expect((await sys.api.get(`/api/wallet/withdrawals/${eth.body.id}`, alice.token)).body.status).toBe("PENDING_APPROVAL");
    const bob = await sys.user();
    expect((await sys.api.get(`/api/wallet/withdrawals/${eth.body.id}`, bob.token)).status).toBe(404);

    const queue = (await sys.api.get("/api/wallet/admin/withdrawals?status=PENDING_APPROVAL", sys.admin.token)).body;
    expect(queue.map((w: { id: number }) => w.id)).toContain(eth.body.id);
    expect((await sys.api.post(`/api/wallet/withdrawals/${eth.body.id}/approve`, {}, alice.token)).status).toBe(403);
    expect((await sys.api.post(`/api/wallet/withdrawals/${eth.body.id}/approve`, {}, sys.admin.token)).body.status).toBe("APPROVED");
    expect((await sys.api.post(`/api/wallet/withdrawals/${eth.body.id}/approve`, {}, sys.admin.token)).body.error.code).toBe("NOT_AWAITING_APPROVAL");
    await tick();
    expect((await sys.api.get(`/api/wallet/withdrawals/${eth.body.id}`, alice.token)).body.status).toBe("SENT");

    await mine(CONFIRMATIONS);
    await tick();
    expect((await sys.api.get(`/api/wallet/withdrawals/${usdt.body.id}`, alice.token)).body.status).toBe("CONFIRMED");
    expect((await sys.api.get(`/api/wallet/withdrawals/${eth.body.id}`, alice.token)).body.status).toBe("CONFIRMED");
    await tick();
    expect(await balances(alice)).toEqual({
      ETH: { asset: "ETH", available: "0.550000000000000000", frozen: "0.000000000000000000" },
      USDT: { asset: "USDT", available: "150.000000", frozen: "0.000000" },
    });
    expect(await chain.client.getBalance({ address: big })).toBe(1_200_000_000_000_000_000n);
    expect(await tokenBalance(small)).toBe(100_000_000n);
    expect((await sys.call("account.auditLedger", {}, { user: { id: sys.admin.id, username: "admin", roles: ["admin", "operator"] } })).ok).toBe(true);
  });

  it("returns the funds of a withdrawal an operator rejects", async () => {
    await sys.api.post("/api/exchange/admin/adjustments", { userId: alice.id, asset: "ETH", amount: "2", reason: "test funds" }, sys.admin.token, randomUUID());
    const w = await withdraw(alice, { asset: "ETH", address: stranger(), amount: "2" });
    expect(w.body.status).toBe("PENDING_APPROVAL");
    expect((await balances(alice)).ETH.frozen).toBe("2.000000000000000000");
    expect((await sys.api.post(`/api/wallet/withdrawals/${w.body.id}/reject`, {}, sys.admin.token)).body.error.field).toBe("reason");
    expect((await sys.api.post(`/api/wallet/withdrawals/${w.body.id}/reject`, { reason: "address on a sanctions list" }, sys.admin.token)).body.status).toBe("REJECTED");
    await tick();
    expect((await balances(alice)).ETH).toEqual({ asset: "ETH", available: "2.550000000000000000", frozen: "0.000000000000000000" });
    expect((await sys.api.get(`/api/wallet/withdrawals/${w.body.id}`, alice.token)).body).toMatchObject({ status: "REJECTED", reason: "OPERATOR: address on a sanctions list", txHash: null });
  });

  it("lets concurrent requests of one user pass the daily limit only as far as it goes", async () => {
    const bob = await sys.user();
    await sys.api.post("/api/exchange/admin/adjustments", { userId: bob.id, asset: "USDT", amount: "1000000", reason: "test funds" }, sys.admin.token, randomUUID());
    // The default limits: 100,000 USDT a withdrawal, 200,000 a day; each of these waits for an operator.
    const answers = await Promise.all(Array.from({ length: 10 }, () => withdraw(bob, { asset: "USDT", address: stranger(), amount: "90000" })));
    const outcomes = answers.map((a) => a.body.status ?? a.body.error?.code).sort();
    expect(outcomes).toEqual([...Array(8).fill("DAILY_LIMIT"), "PENDING_APPROVAL", "PENDING_APPROVAL"]);
    expect((await balances(bob)).USDT).toMatchObject({ available: "820000.000000", frozen: "180000.000000" });
  });
});
