import { describe, expect, it } from "vitest";
import { afterOutcome, redeliveryDelayMs, sign, verify } from "../sandbox/sandbox.domain";
import { onNotification } from "./payment.domain";

const payment = { status: "CREATED" as const, amount: 330, providerTxId: "sbx_1", sequence: 0 };
const note = { providerTxId: "sbx_1", status: "SUCCEEDED" as const, amount: 330, sequence: 1 };

describe("notifications on a payment", () => {
  it("apply in order, a success being final", () => {
    expect(onNotification(payment, note)).toEqual({ apply: true, status: "SUCCEEDED" });
    expect(onNotification({ ...payment, status: "FAILED", sequence: 1 }, { ...note, sequence: 2 })).toEqual({ apply: true, status: "SUCCEEDED" });
    expect(onNotification({ ...payment, status: "SUCCEEDED", sequence: 2 }, { ...note, status: "FAILED", sequence: 3 })).toEqual({ apply: false, code: "ALREADY_SUCCEEDED" });
    expect(onNotification({ ...payment, status: "FAILED", sequence: 2 }, { ...note, sequence: 1 })).toEqual({ apply: false, code: "STALE_NOTIFICATION" });
    expect(onNotification({ ...payment, status: "REFUNDED", sequence: 2 }, { ...note, sequence: 3 })).toEqual({ apply: false, code: "ALREADY_REFUNDED" });
  });

  it("refuse another transaction's or another amount's notification", () => {
    expect(onNotification(payment, { ...note, providerTxId: "sbx_2" })).toEqual({ apply: false, code: "PROVIDER_TX_MISMATCH" });
    expect(onNotification(payment, { ...note, amount: 1 })).toEqual({ apply: false, code: "AMOUNT_MISMATCH" });
    expect(onNotification({ ...payment, providerTxId: null }, note)).toEqual({ apply: true, status: "SUCCEEDED" });
  });
});

describe("sandbox signatures", () => {
  const now = 1_800_000_000_000;
  const ts = String(now / 1000);
  it("verify what was signed, fresh, and nothing else", () => {
    const body = '{"a":1}';
    expect(verify("s", ts, sign("s", ts, body), body, now)).toBeNull();
    expect(verify("s", ts, sign("s", ts, body), '{"a":2}', now)?.code).toBe("SIGNATURE_INVALID");
    expect(verify("other", ts, sign("s", ts, body), body, now)?.code).toBe("SIGNATURE_INVALID");
    expect(verify("s", ts, "zz", body, now)?.code).toBe("SIGNATURE_INVALID");
    expect(verify("s", ts, sign("s", ts, body), body, now + 301_000)?.code).toBe("TIMESTAMP_STALE");
    expect(verify("s", "soon", sign("s", "soon", body), body, now)?.code).toBe("TIMESTAMP_STALE");
    expect(verify("s", undefined, undefined, body, now)?.code).toBe("SIGNATURE_MISSING");
  });

  it("retry deliveries doubling to five minutes, and settle a checkout once paid", () => {
    expect([1, 2, 3, 20].map(redeliveryDelayMs)).toEqual([1000, 2000, 4000, 300_000]);
    expect(afterOutcome("PENDING", "FAIL")).toBe("FAILED");
    expect(afterOutcome("FAILED", "SUCCESS")).toBe("SUCCEEDED");
    expect(afterOutcome("SUCCEEDED", "SUCCESS")).toBeNull();
    expect(afterOutcome("REFUNDED", "FAIL")).toBeNull();
  });
});
