/**
 * Grafana dashboards as code, typed against @grafana/schema: `npm run build:dashboards` writes
 * deploy/monitoring/dashboards/*.json, which Grafana provisions (dashboards/provider.yml). A test checks
 * the committed JSON is what this emits, that every expression parses (promtool) and names only metrics
 * the system exports.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Dashboard as GrafanaDashboard, DataSourceRef, Panel as GrafanaPanel, VariableModel } from "@grafana/schema";

interface Panel {
  title: string;
  /** PromQL, one per series group; `legend` is Grafana's legend template. */
  targets: { expr: string; legend: string }[];
  unit?: "reqps" | "ops" | "s" | "percentunit" | "short";
}

interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  /** A `service` variable (the action prefix): one dashboard serves every service. */
  perService?: boolean;
  /** A `tenant` variable: one dashboard serves every tenant. */
  perTenant?: boolean;
}

const rate = (metric: string, by?: string, window = "1m") => (by ? `sum by (${by}) (rate(${metric}[${window}]))` : `sum(rate(${metric}[${window}]))`);
const p99 = (histogram: string, by: string) => `histogram_quantile(0.99, sum by (le, ${by}) (rate(${histogram}_bucket[5m])))`;

export const DASHBOARDS: Dashboard[] = [
  {
    uid: "bazaar-overview",
    title: "bazaar: overview",
    panels: [
      { title: "HTTP requests by route", unit: "reqps", targets: [{ expr: rate("bazaar_http_requests_total", "route"), legend: "{{route}}" }] },
      {
        title: "HTTP 5xx ratio",
        unit: "percentunit",
        targets: [{ expr: `${rate('bazaar_http_requests_total{status=~"5.."}', undefined, "5m")} / ${rate("bazaar_http_requests_total", undefined, "5m")}`, legend: "5xx" }],
      },
      { title: "HTTP P99 by route", unit: "s", targets: [{ expr: p99("bazaar_http_request_duration_seconds", "route"), legend: "{{route}}" }] },
      { title: "Action calls", unit: "ops", targets: [{ expr: rate("bazaar_action_calls_total", "action"), legend: "{{action}}" }] },
      { title: "Action P99", unit: "s", targets: [{ expr: p99("bazaar_action_duration_seconds", "action"), legend: "{{action}}" }] },
      { title: "Requests refused by flow control", unit: "ops", targets: [{ expr: rate("bazaar_guard_blocked_total"), legend: "blocked" }] },
      { title: "Nodes up", unit: "short", targets: [{ expr: 'sum(up{job="bazaar"})', legend: "up" }, { expr: "max(bazaar_broker_nodes)", legend: "in the registry" }] },
      { title: "Event-loop lag P99", unit: "s", targets: [{ expr: "max by (instance) (bazaar_nodejs_eventloop_lag_p99_seconds)", legend: "{{instance}}" }] },
    ],
  },
  {
    uid: "bazaar-platform",
    title: "bazaar: transactions and push",
    panels: [
      {
        title: "Distributed transactions",
        unit: "ops",
        targets: [
          { expr: rate("bazaar_tx_started_total"), legend: "started" },
          { expr: rate("bazaar_tx_committed_total"), legend: "committed" },
          { expr: rate("bazaar_tx_compensated_total"), legend: "compensated" },
        ],
      },
      { title: "Stuck transactions (15 min)", unit: "short", targets: [{ expr: "sum(increase(bazaar_tx_stuck_total[15m]))", legend: "stuck" }] },
      { title: "Transaction P99", unit: "s", targets: [{ expr: "histogram_quantile(0.99, sum by (le) (rate(bazaar_tx_duration_seconds_bucket[5m])))", legend: "p99" }] },
      {
        title: "WebSocket push",
        unit: "short",
        targets: [
          { expr: "sum(bazaar_push_clients)", legend: "clients" },
          { expr: rate("bazaar_push_messages_total"), legend: "messages/s" },
          { expr: rate("bazaar_push_dropped_clients_total", undefined, "5m"), legend: "dropped/s" },
        ],
      },
    ],
  },
  {
    uid: "bazaar-business",
    title: "bazaar: business",
    panels: [
      { title: "Orders placed", unit: "ops", targets: [{ expr: rate('bazaar_http_requests_total{route="/api/commerce/orders",method="POST",status="201"}'), legend: "orders/s" }] },
      {
        title: "Payment notifications",
        unit: "ops",
        targets: [{ expr: rate('bazaar_http_requests_total{route="/api/payments/callback/sandbox"}', "status"), legend: "{{status}}" }],
      },
      { title: "Flash-sale attempts", unit: "reqps", targets: [{ expr: rate('bazaar_http_requests_total{route="/api/flash/campaigns/:id/attempts"}', "status"), legend: "{{status}}" }] },
      { title: "Exchange orders", unit: "reqps", targets: [{ expr: rate('bazaar_http_requests_total{route="/api/exchange/orders",method="POST"}', "status"), legend: "{{status}}" }] },
      { title: "Matching leader", unit: "short", targets: [{ expr: "sum(bazaar_matching_leading)", legend: "engines leading" }] },
      {
        title: "Wallet",
        unit: "short",
        targets: [
          { expr: rate("bazaar_wallet_deposits_credited_total", "asset", "5m"), legend: "deposits credited/s {{asset}}" },
          { expr: "max(bazaar_wallet_withdrawal_queue_age_seconds)", legend: "oldest withdrawal waiting (s)" },
        ],
      },
    ],
  },
  {
    uid: "bazaar-service",
    title: "bazaar: per service",
    perService: true,
    panels: [
      { title: "Calls by outcome", unit: "ops", targets: [{ expr: 'sum by (outcome) (rate(bazaar_action_calls_total{action=~"$service[.].*"}[1m]))', legend: "{{outcome}}" }] },
      { title: "Calls by action", unit: "ops", targets: [{ expr: 'sum by (action) (rate(bazaar_action_calls_total{action=~"$service[.].*"}[1m]))', legend: "{{action}}" }] },
      { title: "P99 by action", unit: "s", targets: [{ expr: 'histogram_quantile(0.99, sum by (le, action) (rate(bazaar_action_duration_seconds_bucket{action=~"$service[.].*"}[5m])))', legend: "{{action}}" }] },
      { title: "Refused and failed", unit: "ops", targets: [{ expr: 'sum by (action) (rate(bazaar_action_calls_total{action=~"$service[.].*",outcome!="ok"}[5m]))', legend: "{{action}}" }] },
    ],
  },
  {
    uid: "bazaar-tenant",
    title: "bazaar: per tenant",
    perTenant: true,
    panels: [
      { title: "Requests by outcome", unit: "reqps", targets: [{ expr: 'sum by (outcome) (rate(bazaar_tenant_requests_total{tenant=~"$tenant"}[1m]))', legend: "{{outcome}}" }] },
      {
        title: "Refused and failed share",
        unit: "percentunit",
        targets: [{ expr: 'sum(rate(bazaar_tenant_requests_total{tenant=~"$tenant",outcome!="ok"}[5m])) / sum(rate(bazaar_tenant_requests_total{tenant=~"$tenant"}[5m]))', legend: "not ok" }],
      },
      { title: "Busiest tenants", unit: "reqps", targets: [{ expr: "topk(10, sum by (tenant) (rate(bazaar_tenant_requests_total[5m])))", legend: "{{tenant}}" }] },
    ],
  },
  {
    uid: "bazaar-infrastructure",
    title: "bazaar: infrastructure",
    panels: [
      { title: "Scrape targets up", unit: "short", targets: [{ expr: "sum by (job) (up)", legend: "{{job}}" }] },
      { title: "Nodes in the service registry", unit: "short", targets: [{ expr: "max(bazaar_broker_nodes)", legend: "nodes" }] },
      { title: "Resident memory", unit: "short", targets: [{ expr: "max by (instance) (bazaar_process_resident_memory_bytes)", legend: "{{instance}}" }] },
      { title: "CPU", unit: "short", targets: [{ expr: "sum by (instance) (rate(bazaar_process_cpu_seconds_total[1m]))", legend: "{{instance}}" }] },
      { title: "etcd leader changes", unit: "short", targets: [{ expr: "sum(increase(etcd_server_leader_changes_seen_total[1h]))", legend: "changes/h" }] },
      {
        title: "MySQL connections and replica lag",
        unit: "short",
        targets: [
          { expr: "max by (instance) (mysql_global_status_threads_connected)", legend: "{{instance}} connections" },
          { expr: "max by (instance) (mysql_slave_status_seconds_behind_master)", legend: "{{instance}} lag (s)" },
        ],
      },
      { title: "MySQL queries", unit: "ops", targets: [{ expr: "sum by (instance) (rate(mysql_global_status_queries[1m]))", legend: "{{instance}}" }] },
      {
        title: "Redis memory and clients",
        unit: "short",
        targets: [
          { expr: "max(redis_memory_used_bytes)", legend: "used bytes" },
          { expr: "max(redis_connected_clients)", legend: "clients" },
        ],
      },
      { title: "NATS messages", unit: "ops", targets: [{ expr: "sum by (instance) (rate(gnatsd_varz_in_msgs[1m]))", legend: "{{instance}} in" }] },
      { title: "Stream consumers' backlog", unit: "short", targets: [{ expr: "max by (consumer_name) (jetstream_consumer_num_pending)", legend: "{{consumer_name}}" }] },
    ],
  },
  {
    uid: "bazaar-governance",
    title: "bazaar: governance",
    panels: [
      {
        title: "Cases",
        unit: "ops",
        targets: [
          { expr: rate("bazaar_governance_cases_opened_total"), legend: "opened" },
          { expr: rate("bazaar_governance_cases_decided_total", "verdict"), legend: "decided {{verdict}}" },
        ],
      },
      { title: "Votes", unit: "ops", targets: [{ expr: rate("bazaar_governance_votes_total"), legend: "votes" }, { expr: rate("bazaar_governance_seats_retired_total"), legend: "seats retired" }] },
      {
        title: "Coins",
        unit: "ops",
        targets: [
          { expr: rate("bazaar_reward_coins_granted_total", undefined, "5m"), legend: "granted/s" },
          { expr: rate("bazaar_reward_redemptions_total", undefined, "5m"), legend: "redemptions/s" },
        ],
      },
    ],
  },
];

const PROMETHEUS: DataSourceRef = { type: "prometheus", uid: "prometheus" };

const TENANT_VARIABLE = {
  name: "tenant",
  label: "tenant",
  type: "query",
  datasource: PROMETHEUS,
  query: "label_values(bazaar_tenant_requests_total, tenant)",
  includeAll: true,
  multi: true,
  refresh: 2,
  sort: 1,
} as VariableModel;

const SERVICE_VARIABLE = {
  name: "service",
  label: "service",
  type: "query",
  datasource: PROMETHEUS,
  query: "label_values(bazaar_action_calls_total, action)",
  // Action names are `service.action`: the variable offers the services.
  regex: "/^([^.]+)\\./",
  refresh: 2,
  sort: 1,
} as VariableModel;

/** Grafana's JSON model: time series panels on a 12-column-wide grid, the Prometheus datasource. */
export function dashboardJson(d: Dashboard): GrafanaDashboard {
  const panels: GrafanaPanel[] = d.panels.map((p, i) => ({
    id: i + 1,
    type: "timeseries",
    title: p.title,
    datasource: PROMETHEUS,
    gridPos: { h: 8, w: 12, x: (i % 2) * 12, y: Math.floor(i / 2) * 8 },
    fieldConfig: { defaults: { unit: p.unit ?? "short" }, overrides: [] },
    targets: p.targets.map((t, j) => ({ refId: String.fromCharCode(65 + j), expr: t.expr, legendFormat: t.legend, datasource: PROMETHEUS })),
  }));
  return {
    uid: d.uid,
    title: d.title,
    tags: ["bazaar"],
    timezone: "utc",
    schemaVersion: 39,
    version: 1,
    refresh: "30s",
    time: { from: "now-6h", to: "now" },
    templating: { list: [...(d.perService ? [SERVICE_VARIABLE] : []), ...(d.perTenant ? [TENANT_VARIABLE] : [])] },
    panels,
  };
}

export const DASHBOARD_DIR = path.join(__dirname, "dashboards");

export function renderDashboards(): Map<string, string> {
  return new Map(DASHBOARDS.map((d) => [`${d.uid}.json`, `${JSON.stringify(dashboardJson(d), null, 2)}\n`]));
}

if (require.main === module) {
  mkdirSync(DASHBOARD_DIR, { recursive: true });
  for (const [file, text] of renderDashboards()) writeFileSync(path.join(DASHBOARD_DIR, file), text);
  process.stdout.write(`wrote ${DASHBOARDS.length} dashboards to ${path.relative(process.cwd(), DASHBOARD_DIR)}\n`);
}
