import { governancePhases, governancePipeline } from "./governance-pipeline.bench";
import { startup } from "./startup.bench";
import { checkout } from "./checkout.bench";
import { flashSale } from "./flash.bench";
import { matching } from "./matching.bench";
import { orderEntry } from "./order-entry.bench";
import { coordinator } from "./tx.bench";
import { gatewayVersusBare, guardOverhead } from "./guard.bench";
import { machine } from "./support";
import { voteHttp } from "./vote-http.bench";

/** `npm run bench`: runs every benchmark and prints one JSON line each, then a summary for BENCHMARKS.md. */
async function main() {
  const only = process.argv[2];
  const results: Record<string, unknown> = { machine: machine(), date: new Date().toISOString() };
  if (!only || only === "startup") results.startup = await startup();
  if (!only || only === "pipeline") results.pipeline = await governancePipeline(3000, 32, 3000, 3);
  // A diagnostic, run only when asked for.
  if (only === "phases") results.pipelinePhases = await governancePhases();
  if (!only || only === "tx") results.coordinator = await coordinator();
  if (!only || only === "checkout") results.checkout = await checkout();
  if (!only || only === "flash") {
    results.flashEmbedded = await flashSale();
    // With BAZAAR_REDIS_URL set, the same sale on Redis too; with the database and NATS as well, on
    // the real engines in two worker processes (one per core).
    const { BAZAAR_REDIS_URL: redisUrl, BAZAAR_DB_URL: dbUrl, BAZAAR_NATS_URL: natsUrl } = process.env;
    if (redisUrl) results.flashRedis = await flashSale({ redisUrl });
    if (redisUrl && dbUrl && natsUrl) results.flashWorkers = await flashSale({ redisUrl, workers: 2 });
  }
  if (!only || only === "matching") results.matching = await matching();
  if (!only || only === "orders") results.orderEntry = await orderEntry();
  if (!only || only === "guard") {
    results.guardOverhead = guardOverhead();
    results.gatewayVersusBare = await gatewayVersusBare();
  }
  if (!only || only === "votes") {
    results.votesHttp10 = await voteHttp(400, 10);
    results.votesHttp32 = await voteHttp(400, 32);
  }
  console.log(JSON.stringify(results, null, 2));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
