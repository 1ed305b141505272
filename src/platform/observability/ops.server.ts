import Fastify, { type FastifyInstance } from "fastify";
import type { Platform } from "../runtime/platform";

/** /health (the process answers), /ready (started and not draining) and /metrics (Prometheus), on any Fastify app. */
export function opsRoutes(app: FastifyInstance, platform: Platform): void {
  app.get("/health", async () => ({ status: "ok", node: platform.nodeId }));
  app.get("/ready", async (_req, reply) => (platform.readiness.ready ? { status: "ready", node: platform.nodeId } : reply.code(503).send({ status: "starting" })));
  app.get("/metrics", async (_req, reply) => {
    reply.type("text/plain; version=0.0.4");
    return platform.metrics.registry.metrics();
  });
}

/**
 * The same three routes for a node without the gateway (BAZAAR_OPS_PORT), so an orchestrator can probe
 * it and Prometheus can scrape it. Answers where it listens.
 */
export async function startOpsServer(platform: Platform, port: number): Promise<{ url: string; close(): Promise<void> }> {
  const app = Fastify({ logger: false });
  opsRoutes(app, platform);
  await app.listen({ host: platform.config.host, port });
  const address = app.server.address();
  const actual = typeof address === "object" && address ? address.port : port;
  return { url: `http://${platform.config.host}:${actual}`, close: () => app.close() };
}
