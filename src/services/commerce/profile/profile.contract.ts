import { z } from "zod";
import type { RouteDef } from "../../../platform/gateway/routes";
import type { Tag } from "./profile.domain";

export const ProfileContract = {
  me: z.object({}),
  get: z.object({ userId: z.coerce.number().int().positive() }),
};

export interface ProfileView {
  userId: number;
  accountCreatedAt: string | null;
  lastActiveAt: string | null;
  orders: { placed: number; paid: number; completed: number };
  spent: number;
  violationsUpheld: number;
  lastViolationAt: string | null;
  tags: Tag[];
}

export const ProfileEvents = {
  /** What the reviewer pool needs of a profile, whenever it changes; `version` orders the copies. */
  changed: "commerce.profile.changed",
} as const;

export interface ProfileChanged {
  userId: number;
  version: number;
  accountCreatedAt: number | null;
  lastActiveAt: number | null;
  violationsUpheld: number;
  lastViolationAt: number | null;
}

export const profileRoutes: RouteDef[] = [
  { method: "GET", path: "/api/profiles/me", action: "profile.me", auth: "user" },
  { method: "GET", path: "/api/profiles/:userId", action: "profile.get", auth: ["operator"] },
];
