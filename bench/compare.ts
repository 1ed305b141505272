import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { machine } from "./support";

const run = promisify(execFile);
const ROOT = path.resolve(__dirname, "..");

/**
 * `npm run bench:compare -- <ref> [pairs] [cases]`: the governance pipeline of commit `<ref>` (A) against
 * this checkout (B), CPU per case. On a shared VM the speed moves by a fifth within minutes and one
 * core can be steadily faster than the other, so each pair runs A and B at the same moment **on the
 * same core** (`taskset`), the core swapped between pairs: both see the same machine. The same code
 * on both sides differs by 0–7 % a pair this way; judge a change on several pairs.
 */
async function main() {
  const [ref, pairsArg, casesArg] = process.argv.slice(2);
  if (!ref) throw new Error("usage: npm run bench:compare -- <git ref> [pairs=4] [cases=3000]");
  const pairs = Number(pairsArg ?? 4);
  const cases = Number(casesArg ?? 3000);
  const before = mkdtempSync(path.join(tmpdir(), "bazaar-compare-"));
  await run("git", ["-C", ROOT, "worktree", "add", "--detach", before, ref]);
  try {
    if (!existsSync(path.join(before, "node_modules"))) symlinkSync(path.join(ROOT, "node_modules"), path.join(before, "node_modules"));
    const results: { core: number; a: number; b: number }[] = [];
    for (let i = 0; i < pairs; i++) {
      const core = i % 2;
      const [a, b] = await Promise.all([cpuPerCase(before, core, cases), cpuPerCase(ROOT, core, cases)]);
      results.push({ core, a, b });
      console.error(`pair ${i + 1}: core ${core}, A ${a} ms, B ${b} ms a case`);
    }
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    const a = mean(results.map((r) => r.a));
    const b = mean(results.map((r) => r.b));
    const summary = { machine: machine(), date: new Date().toISOString(), a: ref, b: "this checkout", cases, pairs: results, meanA: round(a), meanB: round(b), changePercent: round(((b - a) / a) * 100) };
    console.log(JSON.stringify(summary, null, 2));
  } finally {
    await run("git", ["-C", ROOT, "worktree", "remove", "--force", before]);
  }
}

/** One pipeline run of the checkout at `dir`, pinned to `core`: its CPU ms per case. */
function cpuPerCase(dir: string, core: number, cases: number): Promise<number> {
  // Evaluated as a module, which sees a CommonJS-compiled file's exports as its default.
  const script = `const m = await import(${JSON.stringify(path.join(dir, "bench/governance-pipeline.bench.ts"))});
const r = await (m.governancePipeline ?? m.default.governancePipeline)(${cases});
console.log(JSON.stringify(r));
process.exit(0);`;
  return new Promise((resolve, reject) => {
    const child = spawn("taskset", ["-c", String(core), process.execPath, "--import", "tsx", "--input-type=module", "-e", script], { cwd: dir, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += String(chunk)));
    child.on("error", reject);
    child.on("exit", (code) => {
      const line = out.split("\n").find((l) => l.startsWith('{"cases"'));
      if (code !== 0 || !line) return reject(new Error(`the pipeline in ${dir} exited ${code}`));
      resolve(JSON.parse(line).cpuMsPerCase as number);
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
