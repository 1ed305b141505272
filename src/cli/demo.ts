import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ApiClient } from "../platform/gateway/client";
import { loadConfig } from "../platform/runtime/config";
import { startNode } from "../platform/runtime/system";
import { ALL_SERVICES, catalogue, GATEWAY_HOOKS } from "../services/catalog";
import { DEMO_PASSWORD, ensureAdmin, loadDemoData } from "./bootstrap";

const say = (step: string, detail?: unknown) =>
  process.stdout.write(`\n▸ ${step}\n${detail === undefined ? "" : `  ${JSON.stringify(detail, null, 2).replace(/\n/g, "\n  ")}\n`}`);

/** Report → panel → votes → verdict → coins → redemption, over the real HTTP API of a throw-away system. */
export async function runGovernanceDemo(): Promise<void> {
  const dataDir = mkdtempSync(path.join(tmpdir(), "bazaar-demo-"));
  const adminPassword = randomUUID();
  const config = loadConfig({}, { ...process.env, BAZAAR_DATA_DIR: dataDir, BAZAAR_PORT: "0", BAZAAR_LOG_LEVEL: process.env.BAZAAR_LOG_LEVEL ?? "warn", BAZAAR_NAMESPACE: "demo", BAZAAR_DB_URL: "", BAZAAR_NATS_URL: "", BAZAAR_REDIS_URL: "" });
  const node = await startNode(config, { catalogue, services: ALL_SERVICES, gateway: GATEWAY_HOOKS });
  try {
    await ensureAdmin(node.broker, adminPassword);
    await loadDemoData(node.broker, node.platform.logger, node.platform.clock);
    const api = new ApiClient(node.url!);
    say(`a throw-away bazaar is running at ${node.url} (data in ${dataDir})`);

    const admin = await api.login("admin", adminPassword);
    const reporter = await api.login("demo-user-001", DEMO_PASSWORD);
    const author = await api.login("demo-user-002", DEMO_PASSWORD);
    say("vote policies", (await api.get("/api/governance/policies", admin.token)).body);

    const report = await api.post(
      "/api/governance/reports",
      { reportType: "SPAM", target: { type: "LISTING", id: "listing-4711", authorId: author.id }, reason: "the same phone is listed 40 times" },
      reporter.token,
      randomUUID(),
    );
    say(`demo-user-001 reports listing-4711 (by demo-user-002) → ${report.status}`, report.body);
    const caseId = report.body.caseId as string;

    const seen = (await api.get(`/api/governance/cases/${caseId}`, reporter.token)).body;
    say("what the reporter sees while voting runs (no panel, no tally)", { status: seen.status, tally: seen.tally ?? "hidden" });

    const full = (await api.get(`/api/governance/cases/${caseId}`, admin.token)).body;
    say("the panel drawn (operator view)", { panel: full.panel.map((p: { reviewerId: number }) => p.reviewerId), seed: full.draws[0].seed, eligible: full.draws[0].candidates.length });

    const voters: { name: string; token: string }[] = [];
    for (const seat of full.panel as { reviewerId: number }[]) {
      const user = (await api.get(`/api/admin/users/${seat.reviewerId}`, admin.token)).body;
      voters.push({ name: user.username, token: (await api.login(user.username, DEMO_PASSWORD)).token });
    }
    const tasks = (await api.get("/api/governance/tasks", voters[0].token)).body;
    say(`${voters[0].name}'s open tasks`, tasks);

    for (const voter of voters) {
      const vote = await api.post(`/api/governance/cases/${caseId}/votes`, { decision: "VIOLATION", comment: "duplicate listings" }, voter.token);
      say(`${voter.name} votes VIOLATION → ${vote.status}`, vote.body);
      if (vote.body.caseStatus !== "VOTING") break;
    }
    const late = await api.post(`/api/governance/cases/${caseId}/votes`, { decision: "NO_VIOLATION" }, voters[voters.length - 1].token);
    say(`a vote after the decision → ${late.status}`, late.body);

    const decided = (await api.get(`/api/governance/cases/${caseId}`, reporter.token)).body;
    say("the verdict", { status: decided.status, verdict: decided.verdict, tally: decided.tally });

    let balance = 0;
    for (let i = 0; i < 100 && balance === 0; i++) {
      balance = (await api.get("/api/rewards/me", voters[0].token)).body.balance;
      if (balance === 0) await new Promise((r) => setTimeout(r, 50));
    }
    say(`${voters[0].name}'s coins after the verdict`, (await api.get("/api/rewards/me/ledger", voters[0].token)).body.items);

    const items = (await api.get("/api/rewards/items", voters[0].token)).body;
    const key = randomUUID();
    const redemption = await api.post("/api/rewards/redemptions", { itemId: items[0].id }, voters[0].token, key);
    say(`${voters[0].name} redeems "${items[0].name}" (${items[0].price} coins) → ${redemption.status}`, redemption.body);
    const again = await api.post("/api/rewards/redemptions", { itemId: items[0].id }, voters[0].token, key);
    say(`the same request retried with its Idempotency-Key → ${again.status} (same redemption)`, again.body);
    say("balance now", (await api.get("/api/rewards/me", voters[0].token)).body);
    say("operator audit log", (await api.get("/api/governance/audit?limit=5", admin.token)).body.items);
    say("done");
  } finally {
    await node.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
