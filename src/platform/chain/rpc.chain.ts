import { createPublicClient, defineChain, http, type PublicClient } from "viem";
import type { Chain, ChainToken } from "./chain";

/** A real EVM node over JSON-RPC; its chain id is asked once. */
export async function rpcChain(url: string, tokens: ChainToken[]): Promise<Chain> {
  const transport = http(url, { retryCount: 3 });
  const probe = createPublicClient({ transport });
  const id = await probe.getChainId();
  const chain = defineChain({ id, name: `evm-${id}`, nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 }, rpcUrls: { default: { http: [url] } } });
  return { client: createPublicClient({ chain, transport, cacheTime: 0 }) as PublicClient, transport, chain, native: { asset: "ETH", decimals: 18 }, tokens };
}
