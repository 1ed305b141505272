import { MetricReporters } from "moleculer";
import { collectDefaultMetrics, Counter, Histogram, Registry } from "prom-client";

/** Our own Prometheus metrics; the gateway's /metrics serves them together with the broker's. */
export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<"method" | "route" | "status">;
  readonly httpDuration: Histogram<"method" | "route">;

  constructor(collectProcess: boolean) {
    if (collectProcess) collectDefaultMetrics({ register: this.registry, prefix: "bazaar_" });
    this.httpRequests = new Counter({
      name: "bazaar_http_requests_total",
      help: "HTTP requests by route and status",
      labelNames: ["method", "route", "status"],
      registers: [this.registry],
    });
    this.httpDuration = new Histogram({
      name: "bazaar_http_request_duration_seconds",
      help: "HTTP request latency by route",
      labelNames: ["method", "route"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [this.registry],
    });
  }

  /** A business counter, made on first use; services on one node share it by name. */
  counter<L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Counter<L>;
    return new Counter({ name, help, labelNames: [...labelNames], registers: [this.registry] });
  }

  /** A business latency histogram (seconds), made on first use. */
  histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]): Histogram<L> {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Histogram<L>;
    return new Histogram({ name, help, labelNames: [...labelNames], buckets, registers: [this.registry] });
  }
}

/**
 * Moleculer's Prometheus reporter, minus its own HTTP server: the gateway owns the one /metrics.
 */
export class BrokerMetricsReporter extends MetricReporters.Prometheus {
  init(registry: unknown): void {
    (MetricReporters.Base.prototype as unknown as { init(r: unknown): void }).init.call(this, registry);
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
  text(): string {
    return (this as unknown as { generatePrometheusResponse(): string }).generatePrometheusResponse();
  }
}
