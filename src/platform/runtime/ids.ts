import { randomFillSync } from "node:crypto";

// Random bytes drawn 4 KiB at a time: one call into the CSPRNG per 512 ids, not one per id.
const pool = Buffer.alloc(4096);
let offset = pool.length;

/** Time-ordered ids (base36 milliseconds + 64 random bits) so newest-first pagination is an index scan. */
export function newId(now: number = Date.now()): string {
  if (offset + 8 > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const random = pool.toString("hex", offset, offset + 8);
  offset += 8;
  return now.toString(36).padStart(9, "0") + random;
}
