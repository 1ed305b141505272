import { z } from "zod";
import type { RouteDef } from "../gateway/routes";
import { NAME_PATTERN, NAMESPACE_PATTERN } from "./config.domain";

const namespace = z.string().regex(NAMESPACE_PATTERN, "1-32 lower-case letters, digits or underscores");
const name = z.string().regex(NAME_PATTERN, "1-64 lower-case letters, digits, '.', '_' or '-'");
const address = { namespace, group: name, key: name };
const tags = z.array(z.string().trim().min(1).max(64)).max(32);

export const ConfigContract = {
  get: z.object(address),
  /** Writes a new version: released to every node, or with `grayTags` first to nodes carrying one of them. */
  put: z.object({ ...address, value: z.unknown().refine((v) => v !== undefined, "required"), grayTags: tags.min(1).optional() }),
  history: z.object({ ...address, limit: z.coerce.number().int().min(1).max(200).default(50) }),
  rollback: z.object({ ...address, version: z.number().int().positive() }),
  promote: z.object(address),
  /** Called by nodes: the version and value this node should run. */
  resolve: z.object({ ...address, tags: tags.default([]) }),
  /** Called by owning services at start: the JSON Schema every value of group/key must meet. */
  registerSchema: z.object({ group: name, key: name, owner: z.string().min(1).max(64), schema: z.record(z.string(), z.unknown()) }),
};

/** Broadcast to every node when what some node should run changed. */
export const CONFIG_CHANGED = "config.changed";

export interface ConfigChanged {
  namespace: string;
  group: string;
  key: string;
}

export interface Resolved {
  version: number;
  value: unknown;
  gray: boolean;
}

export const configRoutes: RouteDef[] = [
  { method: "GET", path: "/api/platform/config/:namespace/:group/:key", action: "config.get", auth: ["operator"] },
  { method: "PUT", path: "/api/platform/config/:namespace/:group/:key", action: "config.put", auth: ["operator"] },
  { method: "GET", path: "/api/platform/config/:namespace/:group/:key/history", action: "config.history", auth: ["operator"] },
  { method: "POST", path: "/api/platform/config/:namespace/:group/:key/rollback", action: "config.rollback", auth: ["operator"] },
  { method: "POST", path: "/api/platform/config/:namespace/:group/:key/promote", action: "config.promote", auth: ["operator"] },
];
