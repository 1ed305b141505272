import autocannon from "autocannon";
import { printSummary } from "./load-report";

/**
 * A load process for the HTTP benchmarks: GETs one URL for a while with autocannon (optionally with a
 * bearer token) and prints its summary as JSON.
 */
const [url, connections, seconds, token] = process.argv.slice(2);

autocannon(
  {
    url,
    connections: Number(connections),
    duration: Number(seconds),
    headers: token ? { authorization: `Bearer ${token}` } : {},
  },
  printSummary,
);
