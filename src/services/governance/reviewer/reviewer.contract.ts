import { z } from "zod";
import type { RouteDef } from "../../../platform/gateway/routes";
import { pageInput } from "../../../platform/runtime/action";
import type { Candidate, ReviewerStatus } from "./reviewer.domain";

const days = z.number().int().min(0).max(3650);
const userId = z.number().int().positive();
/** A seating branch's payload; the coordinator passes it to try, confirm and cancel alike, the reservation id is its gid. */
const seating = z.object({
  caseId: z.string().min(1).max(40),
  count: z.number().int().min(1).max(201),
  exclude: z.array(userId).max(10_000),
});

export const ReviewerContract = {
  putRules: z.object({
    activeWithinDays: days,
    minAccountAgeDays: days,
    violationCooldownDays: days.optional(),
    minAccuracy: z.number().min(0).max(1),
    maxOpenCases: z.number().int().min(0).max(1000).optional(),
    maxCasesPerDay: z.number().int().min(0).max(100_000).optional(),
    cooldownSeconds: z.number().int().min(0).max(86_400).optional(),
    suspendAfterNoShows: z.number().int().min(0).max(1000).optional(),
    suspendBelowAccuracy: z.number().min(0).max(1).optional(),
    minVotesForAccuracy: z.number().int().min(0).max(100_000).optional(),
    suspensionDays: days.optional(),
  }),
  getRules: z.object({}),
  enrol: z.object({}),
  optOut: z.object({}),
  me: z.object({}),
  /** TCC branch, called by the coordinator: try draws `count` eligible reviewers and holds a seat each until confirm or cancel. */
  tryChoose: seating,
  confirm: seating,
  cancel: seating,
  stats: z.object({}),
  list: z.object({ status: z.enum(["ACTIVE", "SUSPENDED", "OPTED_OUT"]).optional(), ...pageInput }),
  /** Operator action: suspend for `days` (default: the rules' suspension period) or reinstate. */
  setStatus: z.object({
    id: z.coerce.number().int().positive(),
    status: z.enum(["ACTIVE", "SUSPENDED"]),
    days: z.number().int().min(1).max(3650).optional(),
    reason: z.string().trim().min(1).max(500),
  }),
};

export interface ChooseResult {
  reservationId: string;
  reviewers: number[];
  seed: string;
  /** The eligible list the draw was made from, with weights: the panel can be re-derived from it and the seed. */
  candidates: Candidate[];
}

export interface ReviewerView {
  userId: number;
  status: ReviewerStatus;
  suspendedUntil: string | null;
  votes: number;
  coherentVotes: number;
  accuracy: number;
  weight: number;
  noShows: number;
  openCases: number;
  casesToday: number;
}

export const reviewerRoutes: RouteDef[] = [
  { method: "PUT", path: "/api/governance/reviewer-rules", action: "reviewer.putRules", auth: ["operator"] },
  { method: "GET", path: "/api/governance/reviewer-rules", action: "reviewer.getRules", auth: ["operator"] },
  { method: "POST", path: "/api/governance/reviewers/me/enrol", action: "reviewer.enrol", auth: "user" },
  { method: "POST", path: "/api/governance/reviewers/me/opt-out", action: "reviewer.optOut", auth: "user" },
  { method: "GET", path: "/api/governance/reviewers/me", action: "reviewer.me", auth: "user" },
  { method: "GET", path: "/api/governance/reviewers", action: "reviewer.list", auth: ["operator"] },
  { method: "POST", path: "/api/governance/reviewers/:id/status", action: "reviewer.setStatus", auth: ["operator"] },
];
