import { type Context, type Endpoint, Strategies } from "moleculer";
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
