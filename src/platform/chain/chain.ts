// Types only: viem (and the development node) load when a process first asks for the chain.
import type { Address, PublicClient, Transport, Chain as ViemChain } from "viem";

/** An ERC-20 the chain carries, as the exchange asset it stands for. */
export interface ChainToken {
  asset: string;
  address: Address;
  decimals: number;
}

/** Controls only a development node has: mining, faucets and state snapshots (for demos and tests). */
export interface DevChainControls {
  mine(blocks: number): Promise<void>;
  /** Blocks come only when mined (0), or every `ms` besides. */
  setIntervalMining(ms: number): Promise<void>;
  /** Sends `amount` of an asset (native or token, in its base units) from the dev faucet. */
  faucet(to: Address, asset: string, amount: bigint): Promise<void>;
  snapshot(): Promise<string>;
  /** Back to a snapshot: every block after it is gone (a reorg, once other blocks are mined instead). */
  revert(snapshot: string): Promise<void>;
}

/**
 * The chain port (an EVM JSON-RPC node behind the wallet's isolated zone): reads through `client`,
 * signers send through `transport`. Embedded: Hardhat's in-process node with a test token; real: any
 * EVM JSON-RPC URL (BAZAAR_CHAIN_URL) with the tokens named in BAZAAR_CHAIN_TOKENS.
 */
export interface Chain {
  readonly client: PublicClient;
  readonly transport: Transport;
  readonly chain: ViemChain;
  readonly native: { asset: string; decimals: number };
  readonly tokens: ChainToken[];
  readonly dev?: DevChainControls;
}

export interface ChainConfig {
  chainUrl?: string;
  /** `USDT=0x…:6,USDC=0x…:6`: the ERC-20s a real chain carries for us. */
  chainTokens?: string;
}

/** `ASSET=0xaddress:decimals` pairs, comma-separated. */
export function parseTokens(spec: string | undefined): ChainToken[] {
  if (!spec?.trim()) return [];
  return spec.split(",").map((part) => {
    const m = /^\s*([A-Z0-9]{2,16})=(0x[0-9a-fA-F]{40}):(\d{1,2})\s*$/.exec(part);
    if (!m) throw new Error(`BAZAAR_CHAIN_TOKENS: "${part}" is not ASSET=0xaddress:decimals`);
    return { asset: m[1], address: m[2] as Address, decimals: Number(m[3]) };
  });
}

let connecting: Promise<Chain> | undefined;

/** The chain this configuration names: a JSON-RPC URL, or the in-process development node (one per process). */
export async function connectChain(config: ChainConfig): Promise<Chain> {
  if (config.chainUrl) return (await import("./rpc.chain")).rpcChain(config.chainUrl, parseTokens(config.chainTokens));
  connecting ??= import("./dev.chain").then((m) => m.devChain());
  return connecting;
}
