import type { ServiceFactory } from "../platform/runtime/broker";
import { configService } from "../platform/config/config.service";
import { releaseService } from "../platform/release/release.service";
import { txService } from "../platform/tx/tx.service";
import { identityService } from "./commerce/identity/identity.service";
import { inventoryService } from "./commerce/inventory/inventory.service";
import { flashService } from "./commerce/flash/flash.service";
import { callbackService } from "./commerce/callback/callback.service";
import { permissionService } from "./commerce/permission/permission.service";
import { profileService } from "./commerce/profile/profile.service";
import { reconciliationService } from "./commerce/reconciliation/reconciliation.service";
import { orderService } from "./commerce/order/order.service";
import { paymentService } from "./commerce/payment/payment.service";
import { sandboxService } from "./commerce/sandbox/sandbox.service";
import { tenantService } from "./commerce/tenant/tenant.service";
import { accountService } from "./exchange/account/account.service";
import { matchingService } from "./exchange/matching/matching.service";
import { tradingService } from "./exchange/trading/trading.service";
import { marketService } from "./exchange/market/market.service";
import { walletService } from "./exchange/wallet/wallet.service";
import { reportService } from "./governance/report/report.service";
import { reviewerService } from "./governance/reviewer/reviewer.service";
import { rewardService } from "./governance/reward/reward.service";

/** Every business service a node can run, by the name `--services` takes. */
export const catalogue: Record<string, ServiceFactory> = {
  identity: identityService,
  tenant: tenantService,
  /** Tenant RBAC (casbin): roles, assignments, the check the gateway and services ask. */
  permission: permissionService,
  /** Profiles and tags from behaviour; the reviewer pool's eligibility facts. */
  profile: profileService,
  inventory: inventoryService,
  order: orderService,
  payment: paymentService,
  callback: callbackService,
  /** The flash sale: kv admission, stream peak shaving, orders at the campaign's price. */
  flash: flashService,
  /** The provider's statement against our payments, and payments against orders; nightly and on demand. */
  reconciliation: reconciliationService,
  /** The built-in sandbox payment provider (a third party, simulated). */
  sandbox: sandboxService,
  /** Exchange accounts: assets and balances as a double-entry ledger. */
  account: accountService,
  /** Exchange matching: an engine per symbol following the command log; journal and snapshots. */
  matching: matchingService,
  /** Exchange order entry: symbols, validation, freezing, the command log; settlement from the engine's events. */
  trading: tradingService,
  /** Exchange market data: trades feed, K-lines, 24h tickers. */
  market: marketService,
  /** Exchange wallet: HD deposit addresses, chain scanner with confirmations and reorgs, withdrawals signed by the hot key. */
  wallet: walletService,
  report: reportService,
  reviewer: reviewerService,
  reward: rewardService,
  /** The platform's transaction coordinator: sagas, TCC, reliable messages. */
  tx: txService,
  /** The platform's config centre: versioned values, gray release, rollback, live push. */
  config: configService,
  /** Nodes and their release state: list, drain, undrain. */
  release: releaseService,
};

export const ALL_SERVICES = ["gateway", ...Object.keys(catalogue)];

/** What the gateway calls on its own: who was active, and whether a caller holds a tenant permission. */
export const GATEWAY_HOOKS = { activityAction: "identity.recordActivity", permissionAction: "permission.require" };
