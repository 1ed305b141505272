import { readFileSync } from "node:fs";
import autocannon from "autocannon";
import { printSummary } from "./load-report";

/**
 * The load process of the order-entry benchmark: limit orders from prepared traders, buys and sells
 * alternating a few ticks around 30,000 so that about half of them cross; prints autocannon's summary.
 */
const [url, file, connections, seconds] = process.argv.slice(2);
const tokens = JSON.parse(readFileSync(file, "utf8")) as string[];
let n = 0;

autocannon(
  {
    url,
    connections: Number(connections),
    duration: Number(seconds),
    requests: [
      {
        method: "POST",
        path: "/api/exchange/orders",
        setupRequest: (req) => {
          const i = n++;
          const side = i % 2 === 0 ? "BUY" : "SELL";
          const price = (30_000 + (side === "BUY" ? 1 : -1) * ((i >> 1) % 5)).toFixed(2);
          return {
            ...req,
            headers: { "content-type": "application/json", authorization: `Bearer ${tokens[i % tokens.length]}` },
            body: JSON.stringify({ symbol: "BTC-USDT", side, type: "LIMIT", price, quantity: "0.01" }),
          };
        },
      },
    ],
  },
  printSummary,
);
