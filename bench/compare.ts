import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, symlinkSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { machine } from "./support";

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, "..");

/**
 * What can be compared: the module and function of each benchmark, the CPU figure it answers, and its
 * throughput (time the event loop spends blocked, in a commit's writes for one, costs throughput but
 * no CPU).
 */
const BENCHES = {
  pipeline: { module: "bench/governance-pipeline.bench.ts", run: "governancePipeline", cpu: "cpuMsPerCase", rate: "decidedCasesPerSecond", size: 3000 },
  placement: { module: "bench/order-entry.bench.ts", run: "orderPlacement", cpu: "cpuUsPerOrder", rate: "ordersPerSecond", size: 4000 },
} as const;
type BenchName = keyof typeof BENCHES;

/**
 * `npm run bench:compare -- <ref> [pairs] [size] [pipeline|placement]`: a benchmark of commit `<ref>`
 * (A) against this checkout (B), CPU per unit (the governance pipeline's case by default; `placement`
 * is order entry in-process, per order). On a shared VM the speed moves by a fifth within minutes and
 * one core can be steadily faster than the other, so each pair runs A and B at the same moment **on
 * the same core** (`taskset`), the core swapped between pairs: both see the same machine. The same
 * code on both sides differs by 0–7 % a pair this way; judge a change on several pairs.
 */
async function main() {
  const [ref, pairsArg, sizeArg, benchArg = "pipeline"] = process.argv.slice(2);
  if (!ref || !(benchArg in BENCHES)) throw new Error("usage: npm run bench:compare -- <git ref> [pairs=4] [size] [pipeline|placement]");
  const bench = BENCHES[benchArg as BenchName];
  const pairs = Number(pairsArg ?? 4);
  const size = Number(sizeArg ?? bench.size);
  const before = mkdtempSync(path.join(tmpdir(), "bazaar-compare-"));
  await run("git", ["-C", ROOT, "worktree", "add", "--detach", before, ref]);
  try {
    if (!existsSync(path.join(before, "node_modules"))) symlinkSync(path.join(ROOT, "node_modules"), path.join(before, "node_modules"));
    const results: { core: number; a: number; b: number; rateA: number; rateB: number }[] = [];
    for (let i = 0; i < pairs; i++) {
      const core = i % cpus().length;
      const [ra, rb] = await Promise.all([runOnce(bench, before, core, size), runOnce(bench, ROOT, core, size)]);
      results.push({ core, a: ra.cpu, b: rb.cpu, rateA: ra.rate, rateB: rb.rate });
      console.error(`pair ${i + 1}: core ${core}, A ${ra.cpu}, B ${rb.cpu} ${bench.cpu}; A ${ra.rate}, B ${rb.rate} ${bench.rate}`);
    }
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    const a = mean(results.map((r) => r.a));
    const b = mean(results.map((r) => r.b));
    const rateA = mean(results.map((r) => r.rateA));
    const rateB = mean(results.map((r) => r.rateB));
    const summary = {
      machine: machine(),
      date: new Date().toISOString(),
      bench: benchArg,
      figure: bench.cpu,
      a: ref,
      b: "this checkout",
      size,
      pairs: results,
      meanA: round(a),
      meanB: round(b),
      changePercent: round(((b - a) / a) * 100),
      rateChangePercent: round(((rateB - rateA) / rateA) * 100),
    };
    console.log(JSON.stringify(summary, null, 2));
  } finally {
    await run("git", ["-C", ROOT, "worktree", "remove", "--force", before]);
  }
}

/** One run of `bench` in the checkout at `dir`, pinned to `core`: its CPU figure and its throughput. */
function runOnce(bench: (typeof BENCHES)[BenchName], dir: string, core: number, size: number): Promise<{ cpu: number; rate: number }> {
  // Evaluated as a module, which sees a CommonJS-compiled file's exports as its default.
  const script = `const m = await import(${JSON.stringify(path.join(dir, bench.module))});
const r = await (m.${bench.run} ?? m.default.${bench.run})(${size});
console.log("RESULT " + JSON.stringify(r));
process.exit(0);`;
  return new Promise((resolve, reject) => {
    const child = spawn("taskset", ["-c", String(core), process.execPath, "--import", "tsx", "-e", script], { cwd: dir, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += String(chunk)));
    child.on("error", reject);
    child.on("exit", (code) => {
      const line = out.split("\n").find((l) => l.startsWith("RESULT "));
      if (code !== 0 || !line) return reject(new Error(`${bench.run} in ${dir} exited ${code}`));
      const result = JSON.parse(line.slice("RESULT ".length)) as Record<string, number>;
      resolve({ cpu: result[bench.cpu], rate: result[bench.rate] });
    });
  });
}

const round = (x: number) => Math.round(x * 100) / 100;

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
