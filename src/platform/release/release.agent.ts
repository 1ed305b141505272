import type { ServiceBroker, ServiceSchema } from "moleculer";
import { z } from "zod";
import { action } from "../runtime/action";
import type { NodeFacts } from "./release.domain";

export interface NodeView {
  nodeId: string;
  available: boolean;
  local?: boolean;
  version?: string;
  colour?: string;
  zone?: string;
  tags: string[];
  drained: boolean;
  services: string[];
}

/** This node's metadata, changed in place and announced to every node (an INFO packet with a new sequence). */
async function announceMetadata(broker: ServiceBroker, change: Partial<NodeFacts>): Promise<void> {
  const registry = broker.registry as unknown as {
    nodes: { localNode: { metadata: Record<string, unknown> } };
    regenerateLocalRawInfo(incSeq: boolean): unknown;
  };
  Object.assign(registry.nodes.localNode.metadata, change);
  const info = registry.regenerateLocalRawInfo(true);
  const transit = (broker as unknown as { transit?: { sendNodeInfo(info: unknown): Promise<void> } }).transit;
  await transit?.sendNodeInfo(info);
}

/** Every node runs this: it drains or restores the node it runs on. */
export function releaseAgentService(): ServiceSchema {
  return {
    name: "release-agent",
    actions: {
      setDrained: action(z.object({ drained: z.boolean() }), async function (this: { broker: ServiceBroker }, ctx) {
        await announceMetadata(ctx.broker, { drained: ctx.params.drained });
        return { nodeId: ctx.broker.nodeID, drained: ctx.params.drained };
      }),
    },
  };
}
