import { z } from "zod";
import type { RouteDef } from "../../../platform/gateway/routes";

const asset = z.string().regex(/^[A-Z0-9]{2,16}$/, "an asset code, e.g. ETH");
const id = z.coerce.number().int().positive();

export const WalletContract = {
  depositAddress: z.object({ asset }),
  deposits: z.object({}),
  /** `amount`: a decimal string in the asset's precision; `address`: an EVM address (checksummed if mixed-case). */
  requestWithdrawal: z.object({ asset, address: z.string().min(1).max(64), amount: z.string().min(1).max(60) }),
  withdrawal: z.object({ id }),
  withdrawals: z.object({}),
  approve: z.object({ id }),
  reject: z.object({ id, reason: z.string().trim().min(1).max(200) }),
  pendingWithdrawals: z.object({ status: z.enum(["PENDING_APPROVAL", "APPROVED", "SENT"]).default("PENDING_APPROVAL") }),
  tick: z.object({}),
};

export interface WithdrawalView {
  id: number;
  asset: string;
  address: string;
  amount: string;
  status: string;
  reason: string | null;
  txHash: string | null;
  createdAt: string;
}

export interface DepositView {
  id: string;
  asset: string;
  amount: string;
  txHash: string;
  blockNumber: number;
  status: "PENDING" | "CREDITED";
}

export const walletRoutes: RouteDef[] = [
  { method: "GET", path: "/api/wallet/deposit-address", action: "wallet.depositAddress", auth: "user" },
  { method: "GET", path: "/api/wallet/deposits", action: "wallet.deposits", auth: "user" },
  { method: "POST", path: "/api/wallet/withdrawals", action: "wallet.requestWithdrawal", auth: "user", status: 201 },
  { method: "GET", path: "/api/wallet/withdrawals", action: "wallet.withdrawals", auth: "user" },
  { method: "GET", path: "/api/wallet/withdrawals/:id", action: "wallet.withdrawal", auth: "user" },
  { method: "POST", path: "/api/wallet/withdrawals/:id/approve", action: "wallet.approve", auth: ["operator"] },
  { method: "POST", path: "/api/wallet/withdrawals/:id/reject", action: "wallet.reject", auth: ["operator"] },
  { method: "GET", path: "/api/wallet/admin/withdrawals", action: "wallet.pendingWithdrawals", auth: ["operator"] },
];
