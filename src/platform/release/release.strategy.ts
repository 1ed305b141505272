import { type Context, type Endpoint, type ServiceBroker, Strategies } from "moleculer";
import type { Meta } from "../runtime/action";
import { eligible, type NodeFacts, type Routing } from "./release.domain";

type EndpointLike = Endpoint & { node: { metadata?: NodeFacts } };

/**
 * The broker's load-balancing strategy: honours the request's lane (`ctx.meta.lane`, decided once at
 * the gateway and carried on every hop), the live colour and drained nodes; among the endpoints that
 * may serve, the local one first (the broker's own preferLocal is off so that this choice is made
 * here), else round robin.
 */
export class GrayStrategy extends Strategies.Base {
  private turn = 0;

  select(list: EndpointLike[], ctx?: Context): EndpointLike {
    const routing = (this as unknown as { opts: { routing: () => Routing } }).opts.routing();
    const lane = (ctx?.meta as Meta | undefined)?.lane;
    const candidates = eligible(list, (e) => e.node.metadata ?? {}, lane, routing);
    for (const e of candidates) if (e.local) return e;
    this.turn = (this.turn + 1) % 1_000_000;
    return candidates[this.turn % candidates.length];
  }
}

/** The versions the nodes in this broker's registry serve, kept current as nodes come, go and change. */
export function servedVersions(broker: ServiceBroker): ReadonlySet<string> {
  const served = new Set<string>();
  const refresh = () => {
    served.clear();
    for (const node of broker.registry.nodes.list({ onlyAvailable: true, withServices: false }) as { metadata?: NodeFacts }[])
      if (node.metadata?.version) served.add(node.metadata.version);
  };
  for (const event of ["$node.connected", "$node.disconnected", "$node.updated"]) broker.localBus.on(event, refresh);
  refresh();
  return served;
}
