import { z } from "zod";
import type { RouteDef } from "../../../platform/gateway/routes";
import type { DiscrepancyKind } from "./reconciliation.domain";

const date = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "a date as YYYY-MM-DD");

export const ReconciliationContract = {
  /** Reconciles one UTC day now (again, if it was): the report is replaced whole, so a re-run changes nothing that agrees. */
  run: z.object({ date }),
  report: z.object({ date }),
  /** The day's findings that touch one tenant's books. */
  tenantReport: z.object({ tid: z.string().min(1).max(40), date }),
  /** The nightly job once now: reconciles yesterday if it has not been. */
  tick: z.object({}),
};

export interface DiscrepancyView {
  kind: DiscrepancyKind;
  ref: string;
  tenantId: string | null;
  detail: string;
}

export interface ReportView {
  date: string;
  ranAt: string;
  statementLines: number;
  payments: number;
  discrepancies: DiscrepancyView[];
}

export const reconciliationRoutes: RouteDef[] = [
  { method: "POST", path: "/api/commerce/reconciliation/:date/run", action: "reconciliation.run", auth: ["admin", "operator"] },
  { method: "GET", path: "/api/commerce/reconciliation/:date", action: "reconciliation.report", auth: ["admin", "operator"] },
  { method: "GET", path: "/api/commerce/tenants/:tid/reconciliation/:date", action: "reconciliation.tenantReport", auth: "user", permission: "reconciliation:read" },
];
