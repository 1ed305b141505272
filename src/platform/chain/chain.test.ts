import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ARTIFACT, compileDevToken } from "../../../scripts/compile-dev-token";
import { parseTokens } from "./chain";

describe("the chain port", () => {
  it("reads a real chain's tokens as ASSET=0xaddress:decimals and names a bad entry", () => {
    expect(parseTokens(undefined)).toEqual([]);
    expect(parseTokens(" USDT=0x5FbDB2315678afecb367f032d93F642f64180aa3:6 , DAI=0x6B175474E89094C44Da98b954EedeAC495271d0F:18")).toEqual([
      { asset: "USDT", address: "0x5FbDB2315678afecb367f032d93F642f64180aa3", decimals: 6 },
      { asset: "DAI", address: "0x6B175474E89094C44Da98b954EedeAC495271d0F", decimals: 18 },
    ]);
    expect(() => parseTokens("USDT=0x123:6")).toThrow(/USDT=0x123:6/);
  });

  it("ships the test token's bytecode exactly as its Solidity source compiles", () => {
    const committed = JSON.parse(readFileSync(ARTIFACT, "utf8"));
    expect(compileDevToken()).toEqual(committed);
  }, 60_000);
});
