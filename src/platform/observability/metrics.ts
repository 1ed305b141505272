import { performance } from "node:perf_hooks";
import type { Context, Middleware, ServiceBroker } from "moleculer";
import { collectDefaultMetrics, Counter, Gauge, Histogram, type Metric, type MetricObjectWithValues, type MetricValue, Registry } from "prom-client";

type Labels = Record<string, string>;

/**
 * A metric on the hot path, read by the registry at scrape time. prom-client hashes the labels on
 * every update, even through a child bound with `labels()` (about 2 µs an update; four updates per
 * request were a tenth of the gateway's CPU). Here a child is found by one key lookup, or held by the
 * caller, and an update is an addition.
 */
abstract class HotMetric<C> {
  private readonly children: { labels: Labels; child: C }[] = [];
  /** First label's value → next label's value → … → child: no key string built per update (V8 caches small numbers' strings). */
  private readonly index = new Map<string, unknown>();

  constructor(
    registry: Registry,
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "histogram",
    private readonly labelNames: readonly string[],
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  /** The child for these label values, in the order of the label names. */
  labels(...values: (string | number)[]): C {
    let level = this.index;
    const last = values.length - 1;
    for (let i = 0; i < last; i++) {
      const key = String(values[i]);
      let next = level.get(key) as Map<string, unknown> | undefined;
      if (!next) level.set(key, (next = new Map()));
      level = next;
    }
    return (level.get(String(values[last])) as C | undefined) ?? this.add(level, values);
  }

  private add(level: Map<string, unknown>, values: (string | number)[]): C {
    const labels: Labels = {};
    this.labelNames.forEach((name, i) => (labels[name] = String(values[i])));
    const child = this.create();
    this.children.push({ labels, child });
    level.set(labels[this.labelNames[values.length - 1]], child);
    return child;
  }

  protected abstract create(): C;
  protected abstract zero(child: C): void;
  protected abstract valuesOf(labels: Labels, child: C): MetricValue<string>[];

  async get(): Promise<Omit<MetricObjectWithValues<MetricValue<string>>, "collect">> {
    const values: MetricValue<string>[] = [];
    for (const { labels, child } of this.children) values.push(...this.valuesOf(labels, child));
    return { name: this.name, help: this.help, type: this.type as never, values, aggregator: "sum" };
  }

  /** Zeroes every child in place: callers keep the children they hold. */
  reset(): void {
    for (const { child } of this.children) this.zero(child);
  }
}

export class HotCounter extends HotMetric<{ value: number; inc(by?: number): void }> {
  constructor(registry: Registry, name: string, help: string, labelNames: readonly string[]) {
    super(registry, name, help, "counter", labelNames);
  }
  protected create() {
    return {
      value: 0,
      inc(by = 1) {
        this.value += by;
      },
    };
  }
  protected zero(child: { value: number }) {
    child.value = 0;
  }
  protected valuesOf(labels: Labels, child: { value: number }) {
    return [{ labels, value: child.value }];
  }
}

interface HistogramChild {
  /** Per bucket, the observations that fell in it (not cumulative); the last is +Inf. */
  counts: Float64Array;
  sum: number;
  observe(value: number): void;
}

export class HotHistogram extends HotMetric<HistogramChild> {
  constructor(
    registry: Registry,
    name: string,
    help: string,
    labelNames: readonly string[],
    private readonly buckets: readonly number[],
  ) {
    super(registry, name, help, "histogram", labelNames);
  }
  protected create(): HistogramChild {
    const bounds = this.buckets;
    return {
      counts: new Float64Array(bounds.length + 1),
      sum: 0,
      observe(value: number) {
        let i = 0;
        while (i < bounds.length && value > bounds[i]) i++;
        this.counts[i]++;
        this.sum += value;
      },
    };
  }
  protected zero(child: HistogramChild) {
    child.counts.fill(0);
    child.sum = 0;
  }
  protected valuesOf(labels: Labels, child: HistogramChild) {
    const values: MetricValue<string>[] = [];
    let cumulative = 0;
    this.buckets.forEach((le, i) => {
      cumulative += child.counts[i];
      values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le }, value: cumulative } as MetricValue<string>);
    });
    cumulative += child.counts[this.buckets.length];
    values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: "+Inf" }, value: cumulative } as MetricValue<string>);
    values.push({ metricName: `${this.name}_sum`, labels, value: child.sum } as MetricValue<string>);
    values.push({ metricName: `${this.name}_count`, labels, value: cumulative } as MetricValue<string>);
    return values;
  }
}

/** Our own Prometheus metrics; the gateway's /metrics serves them together with the broker's. */
export class Metrics {
  readonly registry = new Registry();
  /** Labels: method, route, status. */
  readonly httpRequests: HotCounter;
  /** Labels: method, route. */
  readonly httpDuration: HotHistogram;
  /** Per tenant (requests on a tenant's routes or by a user signed in to one): what a tenant's dashboard shows. Labels: tenant, outcome. */
  readonly tenantRequests: HotCounter;

  constructor(collectProcess: boolean) {
    if (collectProcess) collectDefaultMetrics({ register: this.registry, prefix: "bazaar_" });
    this.httpRequests = new HotCounter(this.registry, "bazaar_http_requests_total", "HTTP requests by route and status", ["method", "route", "status"]);
    this.httpDuration = new HotHistogram(
      this.registry,
      "bazaar_http_request_duration_seconds",
      "HTTP request latency by route",
      ["method", "route"],
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    );
    this.tenantRequests = new HotCounter(this.registry, "bazaar_tenant_requests_total", "HTTP requests about one tenant, by outcome (ok, refused: 4xx, failed: 5xx)", [
      "tenant",
      "outcome",
    ]);
  }

  /** A business counter, made on first use; services on one node share it by name. */
  counter<L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Counter<L>;
    return new Counter({ name, help, labelNames: [...labelNames], registers: [this.registry] });
  }

  /** A gauge, made on first use. */
  gauge(name: string, help: string): Gauge {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Gauge;
    return new Gauge({ name, help, registers: [this.registry] });
  }

  /** A business latency histogram (seconds), made on first use. */
  histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]): Histogram<L> {
    const existing = this.registry.getSingleMetric(name);
    if (existing) return existing as Histogram<L>;
    return new Histogram({ name, help, labelNames: [...labelNames], buckets, registers: [this.registry] });
  }
}

/**
 * Per-action call metrics and the broker's registry, in our registry. Moleculer's own metrics are off:
 * its per-call histograms (quantiles, rates, label hashing on every call) cost about 3.6 µs a call and
 * halved the gateway's throughput; these use children bound once per action.
 */
export function brokerMetricsMiddleware(metrics: Metrics): Middleware {
  const calls = new HotCounter(metrics.registry, "bazaar_action_calls_total", "action calls handled on this node, by outcome (ok, refused: 4xx, failed: other)", [
    "action",
    "outcome",
  ]);
  const duration = new HotHistogram(
    metrics.registry,
    "bazaar_action_duration_seconds",
    "action handling time on this node",
    ["action"],
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
  );
  return {
    name: "ActionMetrics",
    localAction(next: (ctx: Context) => Promise<unknown>, action: { name: string }) {
      const ok = calls.labels(action.name, "ok");
      const refused = calls.labels(action.name, "refused");
      const failed = calls.labels(action.name, "failed");
      const time = duration.labels(action.name);
      return (ctx: Context) => {
        const started = performance.now();
        return next(ctx).then(
          (result) => {
            ok.inc();
            time.observe((performance.now() - started) / 1000);
            return result;
          },
          (err: { code?: unknown }) => {
            (typeof err?.code === "number" && err.code >= 400 && err.code < 500 ? refused : failed).inc();
            time.observe((performance.now() - started) / 1000);
            throw err;
          },
        );
      };
    },
  } as unknown as Middleware;
}

/** The broker's view of the cluster, read at scrape time. */
export function registerBrokerGauges(metrics: Metrics, broker: ServiceBroker): void {
  new Gauge({
    name: "bazaar_broker_nodes",
    help: "nodes this broker sees, by availability",
    labelNames: ["available"],
    registers: [metrics.registry],
    collect() {
      const nodes = broker.registry.nodes.list({ onlyAvailable: false, withServices: false }) as { available: boolean }[];
      const up = nodes.filter((n) => n.available).length;
      this.set({ available: "true" }, up);
      this.set({ available: "false" }, nodes.length - up);
    },
  });
  new Gauge({
    name: "bazaar_broker_local_services",
    help: "services running on this node",
    registers: [metrics.registry],
    collect() {
      this.set(broker.services.length);
    },
  });
}
