import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it, onTestFailed } from "vitest";
import { type ChildNode, spawnNode } from "./support/child-node";
import { freePort } from "./support/net";
import { cleanEngines, engines, eventually, testConfig } from "./support/harness";

/**
 * Services split over two processes that find each other through NATS: the gateway and identity in
 * one, governance in the other. Runs where a NATS URL is configured (CI's real-engine pass).
 */
const config = testConfig();
const ADMIN = "cluster-admin-password";
const nodes: ChildNode[] = [];

afterAll(async () => {
  for (const n of nodes) await n.stop();
  await cleanEngines(config);
});

function node(services: string, port: number, name: string): ChildNode {
  const started = spawnNode({ config, name, services, port, adminPassword: ADMIN, env: { BAZAAR_JWT_SECRET: "cluster-secret" } });
  nodes.push(started);
  return started;
}

describe.runIf(engines.nats)("services on separate nodes over NATS", () => {
  it("serves governance through a gateway on another node, and answers 503 while that node is down", async () => {
    onTestFailed(() => void process.stderr.write(`${nodes.map((n) => n.tail()).join("\n")}\n`));
    const port = await freePort();
    const edge = node("gateway,identity,profile,tx,config", port, "edge");
    let governance = node("report,reviewer,reward", 0, "governance");
    const api = edge.api;
    // Ready means the admin account exists: signing in before that counts as failed attempts.
    await edge.ready(90_000);
    const admin = await api.login("admin", ADMIN);
    for (const probe of ["/api/governance/policies", "/api/governance/reviewer-rules", "/api/rewards/items"])
      await eventually(async () => (await api.get(probe, admin.token)).status === 200, 60_000);

    await api.put("/api/governance/policies/SPAM", { panelSize: 1, votesToDecide: 1, voteTimeoutSeconds: 60, caseTimeoutSeconds: 600, maxAlternates: 0, coinsPerVote: 2, coinsPerCoherentVote: 1 }, admin.token);
    await api.post("/api/auth/register", { username: "judge", password: "password-123" });
    const judge = await api.login("judge", "password-123");
    expect((await api.post("/api/governance/reviewers/me/enrol", {}, judge.token)).status).toBe(200);
    await api.post("/api/auth/register", { username: "reporter", password: "password-123" });
    const reporter = await api.login("reporter", "password-123");
    const opened = await api.post(
      "/api/governance/reports",
      { reportType: "SPAM", target: { type: "COMMENT", id: "c-1", authorId: admin.id }, reason: "spam" },
      reporter.token,
      randomUUID(),
    );
    expect(opened.body.status).toBe("VOTING");
    const voted = await api.post(`/api/governance/cases/${opened.body.caseId}/votes`, { decision: "VIOLATION" }, judge.token);
    expect(voted.body.caseStatus).toBe("UPHELD");
    await eventually(async () => (await api.get("/api/rewards/me", judge.token)).body.balance === 3, 15_000);

    await governance.stop("SIGTERM");
    const down = await eventually(async () => {
      const res = await api.get("/api/rewards/me", judge.token);
      return res.status >= 500 ? res : null;
    }, 30_000);
    expect(down.status).toBe(503);
    expect(down.body.error.code).toBe("SERVICE_UNAVAILABLE");

    governance = node("report,reviewer,reward", 0, "governance-2");
    await eventually(async () => (await api.get("/api/rewards/me", judge.token)).status === 200, 30_000);
    expect((await api.get("/api/rewards/me", judge.token)).body.balance).toBe(3);
  }, 240_000);
});
