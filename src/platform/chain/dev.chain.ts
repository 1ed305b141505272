import path from "node:path";
import {
  type Address,
  createPublicClient,
  custom,
  defineChain,
  encodeDeployData,
  encodeFunctionData,
  getContractAddress,
  type Hex,
  type PublicClient,
} from "viem";
import type { Chain, ChainToken } from "./chain";
import token from "./dev-token.artifact.json";

/** Hardhat's first development account: the faucet, and the deployer of the test token (its first transaction). */
const FAUCET: Address = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const TEST_TOKEN = { asset: "USDT", name: "Dev Tether", decimals: 6 };

interface Eip1193 {
  request(args: { method: string; params?: unknown[] }): Promise<unknown>;
}

/** Hardhat's in-process node, with the test token deployed at the faucet's first nonce (always the same address). */
export async function devChain(): Promise<Chain> {
  // Hardhat reads its configuration from this variable; ours only shapes the in-process network.
  process.env.HARDHAT_CONFIG = path.join(__dirname, "dev-chain.config.js");
  // Hardhat's runtime environment defines `network` lazily, which a namespace import does not see.
  const hardhat = require("hardhat") as { network: { provider: Eip1193 } };
  const provider = hardhat.network.provider;
  const chain = defineChain({ id: 31337, name: "bazaar-dev", nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 }, rpcUrls: { default: { http: [] } } });
  const transport = custom(provider);
  const client = createPublicClient({ chain, transport, cacheTime: 0, pollingInterval: 100 }) as PublicClient;
  const rpc = (method: string, params: unknown[] = []) => provider.request({ method, params });
  const send = async (to: Address | undefined, data: Hex, value = 0n) => {
    const hash = (await rpc("eth_sendTransaction", [{ from: FAUCET, ...(to ? { to } : {}), data, value: `0x${value.toString(16)}` }])) as Hex;
    await client.waitForTransactionReceipt({ hash, pollingInterval: 50 });
  };

  const address = getContractAddress({ from: FAUCET, nonce: 0n });
  if ((await client.getCode({ address })) === undefined) {
    const nonce = await client.getTransactionCount({ address: FAUCET });
    if (nonce !== 0) throw new Error("dev chain: the faucet has sent transactions, so the test token's address is not its first nonce");
    await send(undefined, encodeDeployData({ abi: token.abi, bytecode: token.bytecode as Hex, args: [TEST_TOKEN.name, TEST_TOKEN.asset, TEST_TOKEN.decimals] }));
  }
  const tokens: ChainToken[] = [{ asset: TEST_TOKEN.asset, address, decimals: TEST_TOKEN.decimals }];

  return {
    client,
    transport,
    chain,
    native: { asset: "ETH", decimals: 18 },
    tokens,
    dev: {
      async mine(blocks) {
        await rpc("hardhat_mine", [`0x${blocks.toString(16)}`]);
      },
      async setIntervalMining(ms) {
        await rpc("evm_setIntervalMining", [ms]);
      },
      async faucet(to, asset, amount) {
        if (asset === "ETH") return send(to, "0x", amount);
        const t = tokens.find((x) => x.asset === asset);
        if (!t) throw new Error(`dev chain: no token ${asset}`);
        await send(t.address, encodeFunctionData({ abi: token.abi, functionName: "mint", args: [to, amount] }));
      },
      snapshot: async () => (await rpc("evm_snapshot")) as string,
      async revert(snapshot) {
        if (!(await rpc("evm_revert", [snapshot]))) throw new Error(`dev chain: no snapshot ${snapshot}`);
      },
    },
  };
}
