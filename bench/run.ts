import { governancePipeline } from "./governance-pipeline.bench";
import { machine } from "./support";

/** `npm run bench`: runs every benchmark and prints one JSON line each, then a summary for BENCHMARKS.md. */
async function main() {
  const only = process.argv[2];
  const results: Record<string, unknown> = { machine: machine(), date: new Date().toISOString() };
  if (!only || only === "pipeline") results.pipeline = await governancePipeline();
  console.log(JSON.stringify(results, null, 2));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
