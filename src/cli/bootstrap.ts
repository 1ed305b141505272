import type { ServiceBroker } from "moleculer";
import type { Logger } from "pino";
import type { AuthUser, Meta } from "../platform/runtime/action";

/** Demo accounts share this password; they exist only when demo data is loaded. */
export const DEMO_PASSWORD = "demo-password";
export const DEMO_USERS = 200;

const SYSTEM: AuthUser = { id: 0, username: "system", roles: ["admin", "operator"] };
const asSystem = { meta: { user: SYSTEM } satisfies Meta };

export const DEMO_POLICIES = [
  { reportType: "SPAM", panelSize: 3, votesToDecide: 2, voteTimeoutSeconds: 3600, caseTimeoutSeconds: 86_400, maxAlternates: 3, coinsPerVote: 5, coinsPerCoherentVote: 5 },
  { reportType: "FRAUD", panelSize: 5, votesToDecide: 3, voteTimeoutSeconds: 3600, caseTimeoutSeconds: 2 * 86_400, maxAlternates: 5, coinsPerVote: 10, coinsPerCoherentVote: 10 },
  { reportType: "ABUSE", panelSize: 5, votesToDecide: 3, voteTimeoutSeconds: 1800, caseTimeoutSeconds: 86_400, maxAlternates: 5, coinsPerVote: 8, coinsPerCoherentVote: 8 },
  { reportType: "COUNTERFEIT", panelSize: 7, votesToDecide: 4, voteTimeoutSeconds: 7200, caseTimeoutSeconds: 3 * 86_400, maxAlternates: 7, coinsPerVote: 15, coinsPerCoherentVote: 15 },
];

export const DEMO_ITEMS = [
  { name: "Shipping voucher", price: 10, stock: 1000 },
  { name: "Featured listing, 7 days", price: 50, stock: 500 },
  { name: "Bazaar tote bag", price: 120, stock: 100 },
  { name: "Reviewer of the month badge", price: 300, stock: 12 },
];

/** Creates the admin account once and prints its generated password (to stdout, never to the logs). */
export async function ensureAdmin(broker: ServiceBroker, password: string | undefined): Promise<void> {
  const result = await broker.call<{ created: boolean; password?: string }, object>("identity.ensureAdmin", { password });
  if (result.created && result.password) {
    process.stdout.write(
      `\n  bazaar: created the operator account\n    username: admin\n    password: ${result.password}\n  It is shown only now; set BAZAAR_ADMIN_PASSWORD to choose it.\n\n`,
    );
  }
}

/** Loads vote policies, demo reviewers and mall items, but only into an empty store. */
export async function loadDemoData(broker: ServiceBroker, logger: Logger): Promise<boolean> {
  await broker.waitForServices(["identity", "report", "reviewer", "reward"], 30_000);
  const [users, policies] = await Promise.all([
    broker.call<number, object>("identity.count", {}),
    broker.call<unknown[], object>("report.listPolicies", {}, asSystem),
  ]);
  if (users > 1 || policies.length > 0) return false;
  for (const policy of DEMO_POLICIES) await broker.call("report.putPolicy", policy, asSystem);
  const usernames = Array.from({ length: DEMO_USERS }, (_, i) => `demo-user-${String(i + 1).padStart(3, "0")}`);
  const created = await broker.call<{ id: number; username: string }[], object>("identity.importUsers", { usernames, password: DEMO_PASSWORD });
  for (const user of created) {
    const meta: Meta = { user: { id: user.id, username: user.username, roles: ["user"] } };
    await broker.call("reviewer.enrol", {}, { meta });
    await broker.call("identity.recordActivity", { userId: user.id });
  }
  for (const item of DEMO_ITEMS) await broker.call("reward.createItem", item, asSystem);
  logger.info({ users: created.length, policies: DEMO_POLICIES.length, items: DEMO_ITEMS.length }, "demo data loaded");
  return true;
}
