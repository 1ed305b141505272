import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";

interface RunResult {
  engine: string;
  profile: string;
  commandsPerSecond: number;
  p50us: number;
  p99us: number;
  p999us: number;
  depthHash: string;
  peakRssMb: number;
}

/**
 * The matching engine alone on the reference workload (`../shared/bench/matching-workload.md`, 1,000,000
 * commands, profiles brief and banded 20), and the npm `nodejs-order-book` peer on the identical
 * stream; each run in its own process (`matching-run.ts`), best of three, then a timed pass for latency.
 */
export async function matching(commands = 1_000_000) {
  const one = async (engine: "ours" | "peer", profile: "brief" | "banded"): Promise<RunResult> => {
    const { stdout } = await promisify(execFile)(process.execPath, ["--import", "tsx", path.join(__dirname, "matching-run.ts"), engine, profile, String(commands)], {
      maxBuffer: 1 << 20,
    });
    return JSON.parse(stdout);
  };
  const results: Record<string, unknown> = {};
  for (const profile of ["brief", "banded"] as const) {
    const ours = await one("ours", profile);
    const peer = await one("peer", profile);
    if (ours.depthHash !== peer.depthHash) throw new Error(`${profile}: the engines ended with different books (${ours.depthHash} / ${peer.depthHash})`);
    results[profile] = { ours, peer, ratio: Math.round((ours.commandsPerSecond / peer.commandsPerSecond) * 10) / 10 };
  }
  return results;
}
