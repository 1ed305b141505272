import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { DASHBOARD_DIR, DASHBOARDS, renderDashboards } from "../deploy/monitoring/dashboards";
import { ALL_SERVICES } from "../src/services/catalog";
import { startTestSystem, type TestSystem } from "./support/harness";

/**
 * The Grafana dashboards: committed as deploy/monitoring/dashboards.ts emits them; every expression
 * parses (promtool, where installed) and names only metrics a running system exports.
 */
let sys: TestSystem;
beforeAll(async () => {
  // Every service, the wallet too: each registers its metrics as it is created.
  sys = await startTestSystem({ services: ALL_SERVICES });
});
afterAll(() => sys?.stop());

const expressions = DASHBOARDS.flatMap((d) => d.panels.flatMap((p) => p.targets.map((t) => ({ where: `${d.uid} / ${p.title}`, expr: t.expr }))));

describe("Grafana dashboards", () => {
  it("are committed exactly as the code emits them", () => {
    const rendered = renderDashboards();
    expect(readdirSync(DASHBOARD_DIR).filter((f) => f.endsWith(".json")).sort()).toEqual([...rendered.keys()].sort());
    for (const [file, text] of rendered) expect(readFileSync(path.join(DASHBOARD_DIR, file), "utf8"), file).toBe(text);
  });

  it("chart only metrics the system exports", async () => {
    const exported = new Set((await sys.node.platform.metrics.registry.getMetricsAsJSON()).map((m) => m.name));
    for (const { where, expr } of expressions) {
      // Metric names: bazaar_* identifiers, less the suffixes Prometheus adds to histograms.
      const names = [...expr.matchAll(/\bbazaar_[a-z0-9_]+/g)].map((m) => m[0].replace(/_bucket$/, ""));
      // Every expression charts something of ours, Prometheus' own `up`, or an infrastructure exporter's metric.
      expect(names.length > 0 || /\bup\b/.test(expr) || /\b(etcd|mysql|redis|gnatsd|jetstream)_/.test(expr), where).toBe(true);
      // Process metrics (bazaar_nodejs_*, bazaar_process_*) are registered once per process by the CLI, not in tests.
      for (const name of names) if (!/^bazaar_(nodejs|process)_/.test(name)) expect(exported, `${where}: ${name}`).toContain(name);
    }
  });

  it.runIf(hasPromtool())("parse as PromQL (each checked by promtool as a recording rule)", () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), "bazaar-dash-")), "rules.yml");
    writeFileSync(file, stringify({ groups: [{ name: "dashboards", rules: expressions.map((e, i) => ({ record: `bazaar:dashboard_expr_${i}`, expr: e.expr.replaceAll("$service", "gateway").replaceAll("$tenant", ".+") })) }] }));
    expect(execFileSync("promtool", ["check", "rules", file], { encoding: "utf8" })).toContain("SUCCESS");
  });
});

function hasPromtool(): boolean {
  try {
    execFileSync("promtool", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
