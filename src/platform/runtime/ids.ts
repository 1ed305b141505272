import { randomBytes } from "node:crypto";

/** Time-ordered ids (base36 milliseconds + 64 random bits) so newest-first pagination is an index scan. */
export function newId(now: number = Date.now()): string {
  return now.toString(36).padStart(9, "0") + randomBytes(8).toString("hex");
}
