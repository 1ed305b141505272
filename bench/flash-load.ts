import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import autocannon from "autocannon";
import { printSummary } from "./load-report";

/**
 * The load process of the flash-sale benchmark: purchase attempts for one campaign, each from a
 * random prepared buyer with a fresh Idempotency-Key, for a fixed time; prints autocannon's summary.
 */
const [url, campaignId, file, connections, seconds] = process.argv.slice(2);
const tokens = JSON.parse(readFileSync(file, "utf8")) as string[];
const body = JSON.stringify({ quantity: 1 });

autocannon(
  {
    url,
    connections: Number(connections),
    duration: Number(seconds),
    requests: [
      {
        method: "POST",
        path: `/api/flash/campaigns/${campaignId}/attempts`,
        setupRequest: (req) => ({
          ...req,
          headers: {
            "content-type": "application/json",
            authorization: `Bearer ${tokens[Math.floor(Math.random() * tokens.length)]}`,
            "idempotency-key": randomUUID(),
          },
          body,
        }),
      },
    ],
  },
  printSummary,
);
