import { z } from "zod";
import type { RouteDef } from "../../../platform/gateway/routes";
import { pageInput } from "../../../platform/runtime/action";
import { DECISIONS, type Decision, type DecidedBy, type PanelState, TARGET_TYPES, type Verdict } from "./report.domain";

const reportType = z.string().regex(/^[A-Za-z0-9_.-]{1,32}$/, "use 1-32 letters, digits, '.', '_' or '-'");
const count = (min: number, max: number) => z.number().int().min(min).max(max);
const caseId = z.string().regex(/^[0-9a-z]{9,40}$/, "not a case id");

export const target = z.object({
  type: z.enum(TARGET_TYPES),
  id: z.string().min(1).max(64),
  authorId: z.number().int().positive(),
});

export const ReportContract = {
  putPolicy: z.object({
    reportType,
    panelSize: count(1, 51),
    votesToDecide: count(1, 51),
    voteTimeoutSeconds: count(1, 30 * 86_400),
    caseTimeoutSeconds: count(1, 90 * 86_400),
    maxAlternates: count(0, 100),
    coinsPerVote: count(0, 1_000_000),
    coinsPerCoherentVote: count(0, 1_000_000),
    appealWindowSeconds: count(0, 90 * 86_400).default(7 * 86_400),
  }),
  listPolicies: z.object({}),
  submit: z.object({
    reportType,
    target,
    reason: z.string().trim().min(1).max(2000),
    evidence: z.array(z.string().max(500)).max(10).optional(),
  }),
  get: z.object({ id: caseId }),
  list: z.object({
    targetType: z.enum(TARGET_TYPES).optional(),
    targetId: z.string().min(1).max(64).optional(),
    reporterId: z.union([z.literal("me"), z.coerce.number().int().positive()]).optional(),
    status: z.enum(["OPEN", "VOTING", "UPHELD", "REJECTED", "EXPIRED"]).optional(),
    ...pageInput,
  }),
  tasks: z.object({}),
  vote: z.object({ id: caseId, decision: z.enum(DECISIONS), comment: z.string().max(1000).optional() }),
  decide: z.object({ id: caseId, verdict: z.enum(["UPHELD", "REJECTED"]), reason: z.string().trim().min(1).max(1000) }),
  appeal: z.object({ id: caseId, reason: z.string().trim().min(1).max(2000) }),
  audit: z.object({ ...pageInput }),
  tick: z.object({}),
};

/** What other systems publish on `governance.report.submitted` to file a report. */
export const ExternalReport = z.object({
  source: z.string().regex(/^[a-z0-9_-]{1,32}$/),
  externalId: z.string().min(1).max(64),
  reporterId: z.number().int().positive(),
  reportType,
  target,
  reason: z.string().trim().min(1).max(2000),
  evidence: z.array(z.string().max(500)).max(10).optional(),
});
export type ExternalReport = z.infer<typeof ExternalReport>;

export const ReportEvents = {
  submitted: "governance.report.submitted",
  opened: "governance.case.opened",
  invited: "governance.task.invited",
  replaced: "governance.panel.replaced",
  decided: "governance.case.decided",
  audit: "governance.audit.recorded",
} as const;

export interface PanelSeat {
  reviewerId: number;
  state: PanelState;
  decision: Decision | null;
}

export interface CaseDecided {
  caseId: string;
  reportType: string;
  target: { type: string; id: string; authorId: number };
  verdict: Verdict;
  decidedBy: DecidedBy;
  decidedAt: number;
  /** Set on an appeal's decision: the case it overrules or confirms, for good. */
  appealOf: string | null;
  coinsPerVote: number;
  coinsPerCoherentVote: number;
  panel: PanelSeat[];
}

export interface TaskInvited {
  caseId: string;
  reviewerId: number;
  deadlineAt: number;
}

export interface SeatReplaced {
  caseId: string;
  reviewerId: number;
  /** Whether an alternate took the seat (false when none were left). */
  alternate: boolean;
}

export interface AuditRecorded {
  actorId: number;
  action: string;
  subject: string;
  detail: unknown;
  at: number;
}

export const reportRoutes: RouteDef[] = [
  { method: "PUT", path: "/api/governance/policies/:reportType", action: "report.putPolicy", auth: ["operator"] },
  { method: "GET", path: "/api/governance/policies", action: "report.listPolicies", auth: "user" },
  { method: "POST", path: "/api/governance/reports", action: "report.submit", auth: "user", status: 201 },
  { method: "GET", path: "/api/governance/cases", action: "report.list", auth: "user" },
  { method: "GET", path: "/api/governance/cases/:id", action: "report.get", auth: "user" },
  { method: "POST", path: "/api/governance/cases/:id/votes", action: "report.vote", auth: "user", status: 201 },
  { method: "POST", path: "/api/governance/cases/:id/decision", action: "report.decide", auth: ["operator"] },
  { method: "POST", path: "/api/governance/cases/:id/appeal", action: "report.appeal", auth: "user", status: 201 },
  { method: "GET", path: "/api/governance/tasks", action: "report.tasks", auth: "user" },
  { method: "GET", path: "/api/governance/audit", action: "report.audit", auth: ["operator"] },
];
