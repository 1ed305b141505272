import { createHmac, timingSafeEqual } from "node:crypto";

/**
 * The sandbox payment provider's wire rules, shared by the provider (which signs) and our callback
 * endpoint (which verifies): a hex HMAC-SHA256 over `timestamp + "." + rawBody`, the timestamp in unix
 * seconds, and the retry schedule of unacknowledged notifications. Pure.
 */

export function sign(secret: string, timestamp: string, rawBody: string): string {
  return createHmac("sha256", secret).update(`${timestamp}.${rawBody}`).digest("hex");
}

export type VerifyFailure = { code: "SIGNATURE_MISSING" | "SIGNATURE_INVALID" | "TIMESTAMP_STALE"; message: string };

/** Checks a notification's signature and that its timestamp is within `toleranceS` of now. */
export function verify(secret: string, timestamp: string | undefined, signature: string | undefined, rawBody: string, nowMs: number, toleranceS = 300): VerifyFailure | null {
  if (!timestamp || !signature) return { code: "SIGNATURE_MISSING", message: "x-sandbox-timestamp and x-sandbox-signature are required" };
  if (!/^\d{1,12}$/.test(timestamp) || Math.abs(nowMs / 1000 - Number(timestamp)) > toleranceS)
    return { code: "TIMESTAMP_STALE", message: `the timestamp is more than ${toleranceS}s from now` };
  const expected = Buffer.from(sign(secret, timestamp, rawBody), "hex");
  const given = /^[0-9a-f]{64}$/i.test(signature) ? Buffer.from(signature, "hex") : Buffer.alloc(0);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { code: "SIGNATURE_INVALID", message: "the signature does not match" };
  return null;
}

/** Retry delay after `attempts` failed deliveries: 1 s doubling to 5 minutes, like providers do. */
export function redeliveryDelayMs(attempts: number): number {
  return Math.min(300_000, 1000 * 2 ** Math.min(attempts - 1, 20));
}

export type CheckoutStatus = "PENDING" | "SUCCEEDED" | "FAILED" | "REFUNDED";

/** What the customer's outcome on the hosted page does to a checkout: a success is final; a failure may be retried. */
export function afterOutcome(status: CheckoutStatus, outcome: "SUCCESS" | "FAIL"): "SUCCEEDED" | "FAILED" | null {
  if (status === "SUCCEEDED" || status === "REFUNDED") return null;
  return outcome === "SUCCESS" ? "SUCCEEDED" : "FAILED";
}
