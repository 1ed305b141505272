import type { ServiceBroker } from "moleculer";
import { configAgentService } from "../config/config.agent";
import { type GatewayOptions, gatewayService } from "../gateway/gateway.service";
import { startOpsServer } from "../observability/ops.server";
import { releaseAgentService } from "../release/release.agent";
import { createBroker, loadServices, type ServiceFactory } from "./broker";
import type { BazaarConfig } from "./config";
import { createPlatform, type Platform, type PlatformOptions } from "./platform";

export interface RunningNode {
  platform: Platform;
  broker: ServiceBroker;
  /** Base URL of this node's gateway, when it runs one. */
  url?: string;
  /** Where a node without the gateway answers /health, /ready and /metrics (BAZAAR_OPS_PORT). */
  opsUrl?: string;
  stop(): Promise<void>;
}

export interface NodeOptions extends PlatformOptions {
  catalogue: Record<string, ServiceFactory>;
  /** Services to run here; "gateway" is the HTTP edge. */
  services: string[];
  /** The business actions the gateway calls on its own: activity, tenant permissions. */
  gateway?: GatewayOptions;
  /** Overrides the transporter chosen by configuration (tests join several nodes in one process with "Fake"). */
  transporter?: string;
}

/** Starts one node: platform adapters, broker, the chosen services; stop() undoes it in order. */
export async function startNode(config: BazaarConfig, options: NodeOptions): Promise<RunningNode> {
  const platform = await createPlatform(config, options);
  const broker = createBroker(platform, options.transporter);
  const business = options.services.filter((s) => s !== "gateway");
  loadServices(broker, platform, options.catalogue, business);
  broker.createService(configAgentService(platform.configs));
  broker.createService(releaseAgentService());
  if (options.services.includes("gateway"))
    broker.createService(gatewayService(platform, options.gateway ?? {}));
  try {
    await broker.start();
  } catch (err) {
    await broker.stop().catch(() => undefined);
    await platform.close();
    throw err;
  }
  const gateway = broker.getLocalService("gateway");
  const port = (gateway?.settings as { port?: number } | undefined)?.port;
  // A node without the gateway still answers probes and scrapes where it is asked to.
  const ops = !gateway && config.opsPort !== undefined ? await startOpsServer(platform, config.opsPort) : undefined;
  let stopped = false;
  return {
    platform,
    broker,
    url: gateway ? `http://${config.host}:${port}` : undefined,
    opsUrl: ops?.url,
    /** Graceful: the gateway drains first, then services finish their calls in flight and leave the registry. */
    async stop() {
      if (stopped) return;
      stopped = true;
      const edge = broker.getLocalService("gateway") as unknown as { drain?: () => Promise<void> } | undefined;
      await edge?.drain?.();
      platform.readiness.ready = false;
      await broker.stop();
      await ops?.close();
      await platform.close();
    },
  };
}
