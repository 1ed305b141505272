import type { ServiceBroker } from "moleculer";
import type { Logger } from "pino";
import type { Clock } from "../platform/clock/clock";
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

const DEMO_USERNAMES = Array.from({ length: DEMO_USERS }, (_, i) => `demo-user-${String(i + 1).padStart(3, "0")}`);

/**
 * Loads vote policies, mall items and demo reviewers into a store that holds nothing else. Every step
 * is idempotent and users arrive in one transaction, so a start killed half-way through finishes the
 * job on the next start, while a store with anything of its own is never touched.
 */
export async function loadDemoData(broker: ServiceBroker, logger: Logger, clock: Clock): Promise<boolean> {
  await broker.waitForServices(["identity", "report", "reviewer", "reward"], 30_000);
  const [users, policies, items, pool] = await Promise.all([
    broker.call<number, object>("identity.count", {}),
    broker.call<{ reportType: string }[], object>("report.listPolicies", {}, asSystem),
    broker.call<{ name: string }[], object>("reward.listItems", {}, asSystem),
    broker.call<Record<string, number>, object>("reviewer.stats", {}),
  ]);
  const demoUsers = users === 1 + DEMO_USERS ? await broker.call<{ id: number; username: string }[], object>("identity.findByUsernames", { usernames: DEMO_USERNAMES }) : [];
  const onlyDemo =
    (users === 1 || demoUsers.length === DEMO_USERS) &&
    policies.every((p) => DEMO_POLICIES.some((d) => d.reportType === p.reportType)) &&
    items.every((i) => DEMO_ITEMS.some((d) => d.name === i.name));
  const enrolled = Object.values(pool).reduce((sum, n) => sum + n, 0);
  const complete = policies.length === DEMO_POLICIES.length && items.length === DEMO_ITEMS.length && enrolled >= DEMO_USERS;
  if (!onlyDemo || complete) return false;

  for (const policy of DEMO_POLICIES)
    if (!policies.some((p) => p.reportType === policy.reportType)) await broker.call("report.putPolicy", policy, asSystem);
  for (const item of DEMO_ITEMS) if (!items.some((i) => i.name === item.name)) await broker.call("reward.createItem", item, asSystem);
  const reviewers =
    users === 1 ? await broker.call<{ id: number; username: string }[], object>("identity.importUsers", { usernames: DEMO_USERNAMES, password: DEMO_PASSWORD }) : demoUsers;
  for (const user of reviewers) {
    const meta: Meta = { user: { id: user.id, username: user.username, roles: ["user"] } };
    await broker.call("reviewer.enrol", {}, { meta });
  }
  await broker.call("identity.recordActivity", { userIds: reviewers.map((u) => u.id), at: clock.now() });
  logger.info({ users: reviewers.length, policies: DEMO_POLICIES.length, items: DEMO_ITEMS.length }, "demo data loaded");
  return true;
}

/** The exchange's demo assets: the development chain's coin and test token, so wallet deposits are credited. */
export const DEMO_ASSETS = [
  { code: "ETH", decimals: 18 },
  { code: "USDT", decimals: 6 },
];

/** Registers the demo assets on an exchange with none (a store that has assets is left alone). */
export async function loadExchangeDemo(broker: ServiceBroker): Promise<boolean> {
  await broker.waitForServices(["account"], 30_000);
  const assets = await broker.call<{ code: string }[], object>("account.listAssets", {});
  if (assets.length > 0) return false;
  for (const asset of DEMO_ASSETS) await broker.call("account.createAsset", asset, asSystem);
  return true;
}
