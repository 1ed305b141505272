import type { ServiceSchema } from "moleculer";
import { z } from "zod";
import type { RouteDef } from "../gateway/routes";
import { routesWithSchemas } from "../gateway/routes";
import { action, requireRole } from "../runtime/action";
import { notFound } from "../runtime/errors";
import type { NodeView } from "./release.agent";

const nodeId = z.string().min(1).max(128);

export const ReleaseContract = {
  nodes: z.object({}),
  drain: z.object({ nodeId }),
  undrain: z.object({ nodeId }),
};

export const releaseRoutes: RouteDef[] = [
  { method: "GET", path: "/api/platform/nodes", action: "release.nodes", auth: ["operator"] },
  { method: "POST", path: "/api/platform/nodes/:nodeId/drain", action: "release.drain", auth: ["operator"] },
  { method: "POST", path: "/api/platform/nodes/:nodeId/undrain", action: "release.undrain", auth: ["operator"] },
];

interface RegistryNode {
  id: string;
  available: boolean;
  local: boolean;
  metadata?: { version?: string; colour?: string; zone?: string; tags?: string[]; drained?: boolean };
  services?: { name: string }[];
}

/**
 * Operators' view of the nodes (version, colour, zone, tags, drained) and the drain switch of
 * blue-green and rolling releases: a drained node takes no new calls while others can serve them;
 * calls in flight finish.
 */
export function releaseService(): ServiceSchema {
  return {
    name: "release",
    settings: { routes: routesWithSchemas(releaseRoutes, ReleaseContract) },
    actions: {
      nodes: action(ReleaseContract.nodes, async (ctx): Promise<NodeView[]> => {
        requireRole(ctx, "operator");
        const nodes = ctx.broker.registry.nodes.list({ onlyAvailable: false, withServices: true }) as RegistryNode[];
        return nodes.map((n) => ({
          nodeId: n.id,
          available: n.available,
          local: n.local,
          version: n.metadata?.version,
          colour: n.metadata?.colour,
          zone: n.metadata?.zone,
          tags: n.metadata?.tags ?? [],
          drained: n.metadata?.drained === true,
          services: (n.services ?? []).map((s) => s.name).filter((s) => !s.startsWith("$")),
        }));
      }),
      drain: action(ReleaseContract.drain, async (ctx) => {
        requireRole(ctx, "operator");
        return setDrained(ctx, ctx.params.nodeId, true);
      }),
      undrain: action(ReleaseContract.undrain, async (ctx) => {
        requireRole(ctx, "operator");
        return setDrained(ctx, ctx.params.nodeId, false);
      }),
    },
  };
}

async function setDrained(ctx: { broker: { registry: { nodes: { get(id: string): unknown } } }; call: (a: string, p: object, o: object) => Promise<unknown> }, nodeId: string, drained: boolean) {
  if (!ctx.broker.registry.nodes.get(nodeId)) throw notFound("NODE_NOT_FOUND", `no node ${nodeId} in this namespace`);
  return ctx.call("release-agent.setDrained", { drained }, { nodeID: nodeId });
}
