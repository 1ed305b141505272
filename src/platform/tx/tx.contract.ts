import { z } from "zod";
import type { RouteDef } from "../gateway/routes";
import { pageInput } from "../runtime/action";
import { TX_STATES } from "./tx.domain";

const gid = z.string().trim().min(1).max(128).regex(/^[\x21-\x7e]+$/, "visible ASCII only");
const actionName = z.string().min(3).max(128).regex(/^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)+$/, "a Moleculer action name, service.action");

/** A branch's params: what the coordinator passes to each of its calls. */
const payload = z.record(z.string(), z.unknown()).default({});

export const TxContract = {
  /**
   * Registers a TCC branch and calls its try; answers the try's result. The first branch starts the
   * transaction; past `timeoutMs` without a decision, the coordinator asks `<initiator>.txDecision`.
   */
  tryBranch: z.object({
    gid,
    initiator: z.string().min(1).max(64),
    timeoutMs: z.number().int().min(100).max(3_600_000).default(15_000),
    action: actionName,
    confirm: actionName,
    cancel: actionName,
    payload,
  }),
  commit: z.object({ gid }),
  abort: z.object({ gid }),
  /** Runs a saga: steps in order, each with its compensation. `wait` answers once it ends (or sticks). */
  saga: z.object({
    gid,
    steps: z
      .array(z.object({ action: actionName, compensate: actionName, payload }))
      .min(1)
      .max(32),
    wait: z.boolean().default(false),
  }),
  list: z.object({ state: z.enum(TX_STATES as [string, ...string[]]).optional(), ...pageInput, cursor: z.string().max(400).optional() }),
  get: z.object({ gid }),
  retry: z.object({ gid }),
  compensate: z.object({ gid }),
  tick: z.object({}),
};

export interface BranchViewOut {
  branchId: string;
  action: string;
  confirm: string | null;
  compensate: string;
  state: string;
  attempts: number;
  /** What its forward call (try or saga step) answered, for an operator following a transaction; of an answer over 512 characters of JSON, `{omittedChars}`. */
  result: unknown;
  lastError: string | null;
  createdAt: string;
  doneAt: string | null;
  finishedAt: string | null;
}

export interface TxView {
  gid: string;
  kind: string;
  state: string;
  stuckIn: string | null;
  initiator: string | null;
  attempts: number;
  lastError: string | null;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
  /** Milliseconds from start to final state. */
  durationMs: number | null;
  branches: BranchViewOut[];
}

export const txRoutes: RouteDef[] = [
  { method: "GET", path: "/api/platform/tx", action: "tx.list", auth: ["operator"] },
  { method: "GET", path: "/api/platform/tx/:gid", action: "tx.get", auth: ["operator"] },
  { method: "POST", path: "/api/platform/tx/:gid/retry", action: "tx.retry", auth: ["operator"] },
  { method: "POST", path: "/api/platform/tx/:gid/compensate", action: "tx.compensate", auth: ["operator"] },
];
