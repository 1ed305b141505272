import { ServiceBroker, type ServiceSchema } from "moleculer";
import { version as PACKAGE_VERSION } from "../../../package.json";
import { guardMiddleware } from "../guard/guard";
import { laneMiddleware } from "../release/lane";
import { GrayStrategy } from "../release/release.strategy";
import { brokerMetricsMiddleware, registerBrokerGauges } from "../observability/metrics";
import { ValidationMiddleware } from "./action";
import { deadlineMiddleware } from "./deadline";
import type { Platform } from "./platform";

/** How long a call may take unless it says otherwise. */
const REQUEST_TIMEOUT_MS = 10_000;

export type ServiceFactory = (platform: Platform) => ServiceSchema;

/**
 * One broker per process. Without a NATS URL the services talk in-process; with one, NATS is the
 * transporter and Moleculer's registry finds services on every node of the namespace.
 */
export function createBroker(platform: Platform, transporter?: string): ServiceBroker {
  const { config } = platform;
  const broker = new ServiceBroker({
    namespace: config.namespace,
    nodeID: platform.nodeId,
    metadata: {
      version: config.nodeVersion ?? PACKAGE_VERSION,
      colour: config.nodeColour,
      zone: config.nodeZone,
      tags: platform.tags,
      drained: false,
    },
    // The gray strategy picks among endpoints (local first when it may serve); Moleculer's own
    // preferLocal would bypass it.
    registry: { strategy: GrayStrategy, strategyOptions: { routing: () => platform.routing.value }, preferLocal: false },
    transporter: transporter ?? (config.natsUrl ? { type: "NATS", options: { url: config.natsUrl } } : undefined),
    logger: {
      type: "Pino",
      options: {
        level: config.logLevel,
        createLogger: (level: string, bindings: object) => platform.logger.child(bindings, { level }),
      },
    },
    // Timed by the deadline middleware (one coarse clock for every call), not per call by Moleculer.
    requestTimeout: 0,
    // On stop, each service waits (up to the timeout) for the calls it is handling before it goes.
    tracking: { enabled: true, shutdownTimeout: 10_000 },
    retryPolicy: { enabled: false },
    circuitBreaker: { enabled: true, threshold: 0.5, minRequestCount: 20, windowTime: 60, halfOpenTime: 10_000 },
    // Our own cheaper call metrics instead (brokerMetricsMiddleware); see there.
    metrics: { enabled: false },
    // A span per action call, in the trace of the request that caused it (the gateway's request id),
    // batched every second to a Zipkin-compatible collector. Off unless configured: it costs on every call.
    // Params never go into spans: they carry passwords, tokens and personal data.
    tracing: config.tracingUrl
      ? {
          enabled: true,
          tags: { action: { params: false, meta: false }, event: { params: false, meta: false } },
          exporter: { type: "Zipkin", options: { baseURL: config.tracingUrl, interval: 1, payloadOptions: { debug: false, shared: false } } },
        }
      : { enabled: false },
    // Validation first, so a call the guard admits is already a well-formed one.
    middlewares: [
      ValidationMiddleware,
      laneMiddleware(),
      ...(config.tracingUrl ? [platform.messageTracing.middleware()] : []),
      guardMiddleware(platform.guard),
      brokerMetricsMiddleware(platform.metrics),
      // Outermost of ours, where Moleculer's own timeout sat: a call's time includes a guard's queueing.
      deadlineMiddleware(REQUEST_TIMEOUT_MS),
    ],
    // Errors are answered to the caller and logged once by the gateway; Moleculer need not log them again.
    errorHandler: (err) => {
      throw err;
    },
  });
  registerBrokerGauges(platform.metrics, broker);
  platform.messageTracing.attach(broker);
  return broker;
}

/** Creates the named services on the broker from a catalogue; an unknown name is a startup error. */
export function loadServices(
  broker: ServiceBroker,
  platform: Platform,
  catalogue: Record<string, ServiceFactory>,
  names: string[],
): void {
  for (const name of names) {
    const factory = catalogue[name];
    if (!factory) throw new Error(`unknown service "${name}"; known: ${Object.keys(catalogue).join(", ")}`);
    broker.createService(factory(platform));
  }
}
