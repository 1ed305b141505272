import { z } from "zod";
import type { RouteDef } from "../../../platform/gateway/routes";
import { pageInput } from "../../../platform/runtime/action";

export const RewardContract = {
  balance: z.object({}),
  ledger: z.object({ ...pageInput }),
  listItems: z.object({}),
  createItem: z.object({
    name: z.string().trim().min(1).max(100),
    price: z.number().int().min(1).max(100_000_000),
    stock: z.number().int().min(0).max(100_000_000),
  }),
  redeem: z.object({ itemId: z.coerce.number().int().positive() }),
};

export const RewardEvents = {
  /** One per decided case that paid anyone: who got how many coins. */
  paid: "reward.case.paid",
} as const;

export interface CasePaid {
  caseId: string;
  grants: { userId: number; amount: number; coherent: boolean }[];
}

export interface Redemption {
  redemptionId: string;
  itemId: number;
  price: number;
  balance: number;
  at: string;
}

export const rewardRoutes: RouteDef[] = [
  { method: "GET", path: "/api/rewards/me", action: "reward.balance", auth: "user" },
  { method: "GET", path: "/api/rewards/me/ledger", action: "reward.ledger", auth: "user" },
  { method: "GET", path: "/api/rewards/items", action: "reward.listItems", auth: "user" },
  { method: "POST", path: "/api/rewards/items", action: "reward.createItem", auth: ["operator"], status: 201 },
  { method: "POST", path: "/api/rewards/redemptions", action: "reward.redeem", auth: "user", status: 201 },
];
