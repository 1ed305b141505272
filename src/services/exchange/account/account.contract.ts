import { z } from "zod";
import type { RouteDef } from "../../../platform/gateway/routes";
import { soleTriesParams } from "../../../platform/tx/tx.client";

const asset = z
  .string()
  .trim()
  .toUpperCase()
  .regex(/^[A-Z0-9]{2,16}$/, "2-16 letters or digits");
/** Base units as a decimal integer string (internal calls between exchange services). */
const units = z.string().regex(/^\d{1,40}$/, "a non-negative integer in base units");
const ref = z.string().min(1).max(160);
const userId = z.number().int().positive();

const settle = z.object({
  tradeId: ref,
  base: asset,
  quote: asset,
  buyerId: userId,
  sellerId: userId,
  quantity: units,
  notional: units,
  buyerFeeBps: z.number().int().min(0).max(1000),
  sellerFeeBps: z.number().int().min(0).max(1000),
});
const unfreeze = z.object({ ref, userId, asset, amount: units });

export const AccountContract = {
  createAsset: z.object({ code: asset, decimals: z.number().int().min(0).max(18) }),
  listAssets: z.object({}),
  /** An operator's credit or debit of a user's available balance (a decimal string, negative to debit); needs an Idempotency-Key and a reason. */
  adjust: z.object({ userId, asset, amount: z.string().min(1).max(60), reason: z.string().trim().min(1).max(500) }),
  balances: z.object({}),
  /** Internal: give back funds set aside (a withdrawal's that failed), once per ref. */
  unfreeze,
  /** Internal: trades settled and what ended orders no longer need given back, in order, in one transaction (each once per ref). */
  postAll: z.object({
    journals: z
      .array(z.discriminatedUnion("kind", [settle.extend({ kind: z.literal("settle") }), unfreeze.extend({ kind: z.literal("unfreeze") })]))
      .min(1)
      .max(1000),
  }),
  /** Internal, from the wallet: a confirmed deposit credited once per ref; a sent withdrawal paid from frozen funds once per ref. */
  credit: z.object({ ref, userId, asset, amount: units }),
  payOut: z.object({ ref, userId, asset, amount: units }),
  /**
   * A freeze as a TCC branch (the branch names the journal): try freezes, confirm keeps it, cancel
   * gives back whatever the try froze. Called by the coordinator (withdrawals) or by order entry itself.
   */
  tryFreeze: z.object({ userId, asset, amount: units }),
  /** Order entry's freezes made in one turn, each a sole-branch try of its own gid (see `soleBranch`'s `tryAll`). */
  tryFreezeAll: soleTriesParams({ userId, asset, amount: units }),
  confirmFreeze: z.object({ userId, asset, amount: units }),
  cancelFreeze: z.object({ userId, asset, amount: units }),
  /** The ledger's invariant, per asset: every balance of every account adds up to zero. */
  auditLedger: z.object({}),
};

export interface BalanceView {
  asset: string;
  available: string;
  frozen: string;
}

export const accountRoutes: RouteDef[] = [
  { method: "POST", path: "/api/exchange/admin/assets", action: "account.createAsset", auth: ["operator"], status: 201 },
  { method: "GET", path: "/api/exchange/assets", action: "account.listAssets", auth: "user" },
  { method: "POST", path: "/api/exchange/admin/adjustments", action: "account.adjust", auth: ["operator"], status: 201 },
  { method: "GET", path: "/api/exchange/balances", action: "account.balances", auth: "user" },
  { method: "GET", path: "/api/exchange/admin/ledger/audit", action: "account.auditLedger", auth: ["operator"] },
];
