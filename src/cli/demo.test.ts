import { describe, expect, it, vi } from "vitest";
import { runGovernanceDemo } from "./demo";

describe("npx bazaar demo governance", () => {
  it("walks a case from report to redemption on a throw-away system", async () => {
    const printed: string[] = [];
    const write = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
      printed.push(String(chunk));
      return true;
    });
    try {
      await runGovernanceDemo();
    } finally {
      write.mockRestore();
    }
    const out = printed.join("");
    expect(out).toMatch(/reports listing-4711 .* → 201/);
    expect(out).toContain('"tally": "hidden"');
    expect(out).toMatch(/votes VIOLATION → 201/);
    expect(out).toMatch(/a vote after the decision → 409/);
    expect(out).toContain('"verdict": "UPHELD"');
    expect(out).toMatch(/redeems "Shipping voucher" \(10 coins\) → 201/);
    expect(out).toMatch(/retried with its Idempotency-Key → 201/);
    expect(out).toContain('"balance": 0');
    expect(out).toContain("▸ done");
  });
});
