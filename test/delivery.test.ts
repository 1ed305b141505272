import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";

/** The delivery workflow's shape: each stage waits for the one before, and a failed canary rolls itself back. */
describe("the delivery workflow", () => {
  const workflow = parse(readFileSync(".github/workflows/delivery.yml", "utf8"));

  it("goes test → image (built, scanned, pushed) → test environment → production canary → promotion", () => {
    const needs = Object.fromEntries(Object.entries(workflow.jobs as Record<string, { needs?: string }>).map(([name, job]) => [name, job.needs ?? null]));
    expect(needs).toEqual({ test: null, image: "test", "deploy-test": "image", "canary-prod": "deploy-test", "promote-prod": "canary-prod" });
    expect(workflow.jobs.test.steps.some((s: { run?: string }) => s.run?.includes("bash .ci/run"))).toBe(true);
    const image = workflow.jobs.image.steps.map((s: { name?: string; uses?: string }) => s.name ?? s.uses);
    expect(image.indexOf("Push")).toBeGreaterThan(image.findIndex((n: string) => n.startsWith("Scan")));
  });

  it("rolls a failed canary back: routing to stable, then the canary pods deleted", () => {
    const steps = workflow.jobs["canary-prod"].steps as { name?: string; if?: string; run?: string }[];
    const rollback = steps.find((s) => s.if === "failure()");
    expect(rollback?.run).toMatch(/config set release routing[\s\S]*kubectl delete -k deploy\/k8s\/overlays\/prod-canary/);
    expect(steps.some((s) => s.run?.includes("api/v2/alerts"))).toBe(true);
  });
});
