/**
 * Compiles the development chain's test token (src/platform/chain/dev-token.sol) with solc-js and
 * writes its ABI and bytecode next to it. `npm run build:dev-token`; a test checks the artifact is
 * what the source compiles to, so the committed bytecode can always be reproduced.
 */
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

const SOURCE = path.join(__dirname, "../src/platform/chain/dev-token.sol");
export const ARTIFACT = path.join(__dirname, "../src/platform/chain/dev-token.artifact.json");

export function compileDevToken(): { compiler: string; abi: unknown[]; bytecode: string } {
  // solc is a development dependency: only this script and its test load it.
  const solc = require("solc") as { compile(input: string): string; version(): string };
  const input = {
    language: "Solidity",
    sources: { "dev-token.sol": { content: readFileSync(SOURCE, "utf8") } },
    settings: { optimizer: { enabled: true, runs: 200 }, evmVersion: "cancun", outputSelection: { "*": { DevToken: ["abi", "evm.bytecode.object"] } } },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors ?? []).filter((e: { severity: string }) => e.severity === "error");
  if (errors.length) throw new Error(errors.map((e: { formattedMessage: string }) => e.formattedMessage).join("\n"));
  const contract = output.contracts["dev-token.sol"].DevToken;
  return { compiler: solc.version(), abi: contract.abi, bytecode: `0x${contract.evm.bytecode.object}` };
}

if (require.main === module) {
  writeFileSync(ARTIFACT, `${JSON.stringify(compileDevToken(), null, 2)}\n`);
  process.stdout.write(`wrote ${path.relative(process.cwd(), ARTIFACT)}\n`);
}
