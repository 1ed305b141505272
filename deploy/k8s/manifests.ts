/**
 * The Kubernetes manifests, written as typed objects (kubernetes-types) and emitted as YAML for
 * kustomize: `npm run build:k8s` rewrites deploy/k8s/{base,overlays}; a test checks the committed files
 * are what this emits, validates every object against the Kubernetes schemas (kubernetes-models) and
 * renders each overlay with `kubectl kustomize`.
 *
 * Layout: `base/app` (every service group, in the environment's namespace), `base/wallet` (the wallet in
 * a namespace of its own behind NetworkPolicies), and `overlays/{dev,test,prod}` that name the
 * namespaces, image tag, replicas and the chain node. Secrets are referenced, never written here.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Deployment, StatefulSet } from "kubernetes-types/apps/v1";
import type { HorizontalPodAutoscaler } from "kubernetes-types/autoscaling/v2";
import type { ConfigMap, Container, EnvVar, PodSpec, Service } from "kubernetes-types/core/v1";
import type { ObjectMeta } from "kubernetes-types/meta/v1";
import type { Ingress, NetworkPolicy, NetworkPolicyPeer } from "kubernetes-types/networking/v1";
import type { PodDisruptionBudget } from "kubernetes-types/policy/v1";
import { stringify } from "yaml";

export type Manifest = { apiVersion?: string; kind?: string; metadata?: ObjectMeta };

const IMAGE = "bazaar";
const PART_OF = { "app.kubernetes.io/part-of": "bazaar" };
const HTTP_PORT = 8080;
/** Where the infrastructure charts put their services, in the environment's namespace. */
const INFRA = { nats: 4222, mysql: 3306, redis: 6379, etcd: 2379 } as const;

interface Group {
  name: string;
  services: string;
  replicas: number;
  cpu: [request: string, limit: string];
  memory: [request: string, limit: string];
  /** HPA bounds; none: a fixed number of replicas. */
  autoscale?: { min: number; max: number; requestsPerSecond?: number };
}

/** The service groups, as in the Compose stack: one image, `BAZAAR_SERVICES` picks what a pod runs. */
export const GROUPS: Group[] = [
  { name: "gateway", services: "gateway,identity,tenant,permission,profile,config,release", replicas: 2, cpu: ["250m", "1"], memory: ["256Mi", "512Mi"], autoscale: { min: 2, max: 10, requestsPerSecond: 500 } },
  { name: "governance", services: "report,reviewer,reward", replicas: 2, cpu: ["200m", "1"], memory: ["256Mi", "512Mi"], autoscale: { min: 2, max: 6 } },
  { name: "commerce", services: "tx,inventory,order,payment,callback,sandbox,reconciliation", replicas: 2, cpu: ["200m", "1"], memory: ["256Mi", "512Mi"], autoscale: { min: 2, max: 6 } },
  { name: "flash", services: "flash", replicas: 2, cpu: ["500m", "2"], memory: ["256Mi", "512Mi"], autoscale: { min: 2, max: 20, requestsPerSecond: 2000 } },
  { name: "exchange", services: "account,trading,market", replicas: 2, cpu: ["250m", "1"], memory: ["256Mi", "512Mi"], autoscale: { min: 2, max: 8 } },
];

const labels = (component: string) => ({ "app.kubernetes.io/name": component, ...PART_OF });
const selector = (component: string) => ({ "app.kubernetes.io/name": component });

/** Settings every pod of an environment shares; overlays replace the namespace-specific ones. */
function appConfig(): ConfigMap {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "bazaar-config", labels: { ...PART_OF } },
    data: {
      BAZAAR_NAMESPACE: "dev",
      BAZAAR_HOST: "0.0.0.0",
      BAZAAR_PORT: String(HTTP_PORT),
      // Pods without the gateway answer probes and scrapes on the same port.
      BAZAAR_OPS_PORT: String(HTTP_PORT),
      BAZAAR_DATA_DIR: "/data",
      BAZAAR_DEMO: "0",
      BAZAAR_LOG_LEVEL: "info",
      BAZAAR_NATS_URL: `nats://nats:${INFRA.nats}`,
      // The platform's JetStream cluster has three servers: the stream keeps a copy on each.
      BAZAAR_STREAM_REPLICAS: "3",
      BAZAAR_REDIS_URL: `redis://redis:${INFRA.redis}`,
      BAZAAR_ETCD_URL: `http://etcd:${INFRA.etcd}`,
      BAZAAR_TRACING_URL: "http://jaeger-collector:9411",
      BAZAAR_SHUTDOWN_GRACE_MS: "25000",
    },
  };
}

/** Secrets come from `bazaar-secrets`, created by the operator (or an external-secrets controller). */
const secretEnv = (name: string, key: string): EnvVar => ({ name, valueFrom: { secretKeyRef: { name: "bazaar-secrets", key } } });

function container(group: { services: string; cpu: [string, string]; memory: [string, string] }, extraEnv: EnvVar[] = []): Container {
  const probe = (pathName: string, periodSeconds: number, failureThreshold: number) => ({ httpGet: { path: pathName, port: "http" }, periodSeconds, failureThreshold, timeoutSeconds: 2 });
  return {
    name: "bazaar",
    image: IMAGE,
    ports: [{ name: "http", containerPort: HTTP_PORT }],
    envFrom: [{ configMapRef: { name: "bazaar-config" } }],
    env: [
      { name: "BAZAAR_SERVICES", value: group.services },
      { name: "BAZAAR_NODE_ID", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
      secretEnv("BAZAAR_DB_URL", "db-url"),
      secretEnv("BAZAAR_JWT_SECRET", "jwt-secret"),
      secretEnv("BAZAAR_ADMIN_PASSWORD", "admin-password"),
      secretEnv("BAZAAR_SANDBOX_SECRET", "sandbox-secret"),
      ...extraEnv,
    ],
    resources: { requests: { cpu: group.cpu[0], memory: group.memory[0] }, limits: { cpu: group.cpu[1], memory: group.memory[1] } },
    // Started: /health answers; ready: /ready (503 while starting and while draining on SIGTERM).
    startupProbe: probe("/health", 2, 60),
    livenessProbe: probe("/health", 10, 3),
    readinessProbe: probe("/ready", 5, 2),
    securityContext: { runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
    volumeMounts: [
      { name: "data", mountPath: "/data" },
      { name: "tmp", mountPath: "/tmp" },
    ],
  };
}

function podSpec(component: string, c: Container, extra: Partial<PodSpec> = {}): PodSpec {
  return {
    containers: [c],
    // The process drains within BAZAAR_SHUTDOWN_GRACE_MS (25 s); Kubernetes waits a little longer.
    terminationGracePeriodSeconds: 30,
    securityContext: { runAsNonRoot: true, runAsUser: 1000, fsGroup: 1000, seccompProfile: { type: "RuntimeDefault" } },
    affinity: {
      podAntiAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: selector(component) } } }],
      },
    },
    volumes: [
      { name: "data", emptyDir: {} },
      { name: "tmp", emptyDir: {} },
    ],
    ...extra,
  };
}

const podAnnotations = { "prometheus.io/scrape": "true", "prometheus.io/port": String(HTTP_PORT), "prometheus.io/path": "/metrics" };

/**
 * A group's pods, on a track: `stable`, or `canary` (the next version, a replica per group, serving the
 * release lane gray routing sends it). Services select by name only, so both tracks take traffic.
 */
function deployment(g: Group, track: "stable" | "canary" = "stable"): Deployment {
  const podLabels = { ...labels(g.name), "bazaar/track": track };
  const canaryEnv: EnvVar[] = track === "canary" ? [{ name: "BAZAAR_NODE_VERSION", value: "canary" }] : [];
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: track === "stable" ? g.name : `${g.name}-canary`, labels: podLabels },
    spec: {
      replicas: track === "stable" ? g.replicas : 1,
      selector: { matchLabels: { ...selector(g.name), "bazaar/track": track } },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: { metadata: { labels: podLabels, annotations: podAnnotations }, spec: podSpec(g.name, container(g, canaryEnv)) },
    },
  };
}

function autoscaler(g: Group): HorizontalPodAutoscaler {
  const a = g.autoscale!;
  return {
    apiVersion: "autoscaling/v2",
    kind: "HorizontalPodAutoscaler",
    metadata: { name: g.name, labels: labels(g.name) },
    spec: {
      scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: g.name },
      minReplicas: a.min,
      maxReplicas: a.max,
      metrics: [
        { type: "Resource", resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 70 } } },
        // Served by prometheus-adapter from the gateway's request counter (see docs/operations.md).
        ...(a.requestsPerSecond
          ? [{ type: "Pods" as const, pods: { metric: { name: "bazaar_http_requests_per_second" }, target: { type: "AverageValue" as const, averageValue: String(a.requestsPerSecond) } } }]
          : []),
      ],
    },
  };
}

function disruptionBudget(component: string): PodDisruptionBudget {
  return { apiVersion: "policy/v1", kind: "PodDisruptionBudget", metadata: { name: component, labels: labels(component) }, spec: { maxUnavailable: 1, selector: { matchLabels: selector(component) } } };
}

function service(component: string, headless = false): Service {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: component, labels: labels(component) },
    spec: { ...(headless ? { clusterIP: "None" } : {}), selector: selector(component), ports: [{ name: "http", port: HTTP_PORT, targetPort: "http" }] },
  };
}

/** Two engines following the command log; the etcd election picks the one that publishes. */
function matching(): StatefulSet {
  const c = container({ services: "matching", cpu: ["500m", "2"], memory: ["512Mi", "1Gi"] }, [
    // The pod's ordinal (0, 1): its own database and its own durable place on the log.
    { name: "BAZAAR_REPLICA", valueFrom: { fieldRef: { fieldPath: "metadata.labels['apps.kubernetes.io/pod-index']" } } },
  ]);
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: { name: "matching", labels: labels("matching") },
    spec: {
      serviceName: "matching",
      replicas: 2,
      podManagementPolicy: "Parallel",
      selector: { matchLabels: selector("matching") },
      template: {
        metadata: { labels: labels("matching"), annotations: podAnnotations },
        spec: podSpec("matching", c, {
          affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: selector("matching") } }] } },
        }),
      },
    },
  };
}

function ingress(): Ingress {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "Ingress",
    metadata: { name: "bazaar", labels: { ...PART_OF }, annotations: { "nginx.ingress.kubernetes.io/proxy-read-timeout": "3600" } },
    spec: {
      ingressClassName: "nginx",
      // The certificate is a Secret in the namespace (cert-manager or the operator puts it there).
      tls: [{ hosts: ["bazaar.example.com"], secretName: "bazaar-tls" }],
      rules: [{ host: "bazaar.example.com", http: { paths: [{ path: "/", pathType: "Prefix", backend: { service: { name: "gateway", port: { name: "http" } } } }] } }],
    },
  };
}

const byName = (namespace: string): NetworkPolicyPeer => ({ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } } });

/** The infrastructure the services dial (their charts run it in the environment's namespace). */
const INFRA_NAMES = ["nats", "mysql", "redis", "etcd", "jaeger-collector"];

/**
 * The app namespace: nothing comes in but the ingress controller (to gateways) and Prometheus (metrics);
 * the infrastructure takes this namespace's pods and the environment's wallet.
 */
function appPolicies(): NetworkPolicy[] {
  return [
    { apiVersion: "networking.k8s.io/v1", kind: "NetworkPolicy", metadata: { name: "default-deny-ingress", labels: { ...PART_OF } }, spec: { podSelector: {}, policyTypes: ["Ingress"] } },
    {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: "gateway-from-ingress", labels: { ...PART_OF } },
      spec: { podSelector: { matchLabels: selector("gateway") }, policyTypes: ["Ingress"], ingress: [{ from: [byName("ingress-nginx")], ports: [{ port: HTTP_PORT }] }] },
    },
    {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: "metrics-from-monitoring", labels: { ...PART_OF } },
      spec: { podSelector: { matchLabels: { ...PART_OF } }, policyTypes: ["Ingress"], ingress: [{ from: [byName("monitoring")], ports: [{ port: HTTP_PORT }] }] },
    },
    {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: "infra-from-bazaar", labels: { ...PART_OF } },
      spec: {
        podSelector: { matchExpressions: [{ key: "app.kubernetes.io/name", operator: "In", values: INFRA_NAMES }] },
        policyTypes: ["Ingress"],
        ingress: [{ from: [{ podSelector: {} }, { namespaceSelector: { matchLabels: { "bazaar/zone": "wallet", "bazaar/environment": "dev" } } }] }],
      },
    },
  ];
}

// ---- the wallet's zone -------------------------------------------------------------------------

function wallet(): Deployment {
  const c = container({ services: "wallet", cpu: ["250m", "1"], memory: ["512Mi", "1Gi"] }, [
    { name: "BAZAAR_WALLET_SEED", value: "file:/run/secrets/wallet/seed" },
    { name: "BAZAAR_WALLET_HOT_KEY", value: "file:/run/secrets/wallet/hot-key" },
    { name: "BAZAAR_CHAIN_URL", value: "http://chain:8545" },
  ]);
  c.envFrom = [{ configMapRef: { name: "bazaar-wallet-config" } }];
  c.volumeMounts!.push({ name: "keys", mountPath: "/run/secrets/wallet", readOnly: true });
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "wallet", labels: labels("wallet") },
    spec: {
      // One signer: withdrawals take nonces in order, so never two pods at once.
      replicas: 1,
      strategy: { type: "Recreate" },
      selector: { matchLabels: selector("wallet") },
      template: {
        metadata: { labels: labels("wallet"), annotations: podAnnotations },
        spec: podSpec("wallet", c, {
          volumes: [
            { name: "data", emptyDir: {} },
            { name: "tmp", emptyDir: {} },
            { name: "keys", secret: { secretName: "bazaar-wallet-keys", defaultMode: 0o400 } },
          ],
        }),
      },
    },
  };
}

/** The wallet's copy of the shared settings: it lives in another namespace, so infrastructure is named in full. */
function walletConfig(appNamespace: string): ConfigMap {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "bazaar-wallet-config", labels: { ...PART_OF } },
    data: { ...appConfig().data, ...walletInfra(appNamespace) },
  };
}

/** The infrastructure of the app namespace, as the wallet (in another namespace) names it. */
function walletInfra(appNamespace: string): Record<string, string> {
  const inApp = (host: string) => `${host}.${appNamespace}.svc.cluster.local`;
  return {
    BAZAAR_NATS_URL: `nats://${inApp("nats")}:${INFRA.nats}`,
    BAZAAR_REDIS_URL: `redis://${inApp("redis")}:${INFRA.redis}`,
    BAZAAR_ETCD_URL: `http://${inApp("etcd")}:${INFRA.etcd}`,
    BAZAAR_TRACING_URL: `http://${inApp("jaeger-collector")}:9411`,
  };
}

/**
 * The isolated RPC zone: nothing reaches the wallet but Prometheus (calls come to it over NATS, which it
 * dials); it reaches only DNS, the app namespace's NATS and database (its broker and its store), and the
 * chain node (in its namespace, or outside the cluster where an overlay says so).
 */
function walletPolicies(appNamespace: string): NetworkPolicy[] {
  const infra = (name: string, port: number) => ({ to: [{ ...byName(appNamespace), podSelector: { matchLabels: { "app.kubernetes.io/name": name } } }], ports: [{ port }] });
  return [
    {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: "wallet-zone", labels: { ...PART_OF } },
      spec: {
        podSelector: { matchLabels: selector("wallet") },
        policyTypes: ["Ingress", "Egress"],
        ingress: [{ from: [byName("monitoring")], ports: [{ port: HTTP_PORT }] }],
        egress: [
          { to: [{ ...byName("kube-system"), podSelector: { matchLabels: { "k8s-app": "kube-dns" } } }], ports: [{ port: 53, protocol: "UDP" }, { port: 53, protocol: "TCP" }] },
          infra("nats", INFRA.nats),
          infra("mysql", INFRA.mysql),
          infra("redis", INFRA.redis),
          { to: [{ podSelector: { matchLabels: selector("chain") } }], ports: [{ port: 8545 }] },
        ],
      },
    },
    {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: "chain-from-wallet", labels: { ...PART_OF } },
      spec: { podSelector: { matchLabels: selector("chain") }, policyTypes: ["Ingress"], ingress: [{ from: [{ podSelector: { matchLabels: selector("wallet") } }], ports: [{ port: 8545 }] }] },
    },
  ];
}

/** A development chain node (geth --dev) for dev and test; production names the operator's node instead. */
function devChain(): Manifest[] {
  const node: Deployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "chain", labels: labels("chain") },
    spec: {
      replicas: 1,
      selector: { matchLabels: selector("chain") },
      template: {
        metadata: { labels: labels("chain") },
        spec: {
          containers: [
            {
              name: "geth",
              image: "ethereum/client-go:v1.14.12",
              args: ["--dev", "--dev.period", "2", "--http", "--http.addr", "0.0.0.0", "--http.api", "eth,net,web3", "--http.vhosts", "*"],
              ports: [{ name: "rpc", containerPort: 8545 }],
              resources: { requests: { cpu: "100m", memory: "256Mi" }, limits: { cpu: "1", memory: "1Gi" } },
              startupProbe: { tcpSocket: { port: "rpc" }, periodSeconds: 2, failureThreshold: 30 },
              livenessProbe: { tcpSocket: { port: "rpc" }, periodSeconds: 10 },
              readinessProbe: { tcpSocket: { port: "rpc" }, periodSeconds: 5 },
            },
          ],
        },
      },
    },
  };
  const svc: Service = { apiVersion: "v1", kind: "Service", metadata: { name: "chain", labels: labels("chain") }, spec: { selector: selector("chain"), ports: [{ name: "rpc", port: 8545, targetPort: "rpc" }] } };
  return [node, svc];
}

// ---- kustomize ---------------------------------------------------------------------------------

interface Overlay {
  env: "dev" | "test" | "prod";
  tag: string;
  host: string;
  /** Replicas per group (HPA minimum where it scales). */
  scale: number;
  /** Production's chain node: outside the cluster, reached by CIDR. */
  externalChain?: { host: string; cidr: string };
  /** Copies of the JetStream stream: at most the environment's JetStream servers (dev runs one). */
  streamReplicas: number;
}

export const OVERLAYS: Overlay[] = [
  { env: "dev", tag: "dev", host: "dev.bazaar.example.com", scale: 1, streamReplicas: 1 },
  { env: "test", tag: "test", host: "test.bazaar.example.com", scale: 2, streamReplicas: 3 },
  { env: "prod", tag: "0.1.0", host: "bazaar.example.com", scale: 3, streamReplicas: 3, externalChain: { host: "eth-node.chain.example.internal", cidr: "10.20.0.0/16" } },
];

const kustomization = (body: Record<string, unknown>) => ({ apiVersion: "kustomize.config.k8s.io/v1beta1", kind: "Kustomization", ...body });

/** Every file under deploy/k8s, by path: objects for the base, kustomizations and patches for overlays. */
export function files(): Map<string, Manifest[] | object> {
  const out = new Map<string, Manifest[] | object>();
  const app: Manifest[] = [appConfig()];
  for (const g of GROUPS) {
    app.push(deployment(g), disruptionBudget(g.name));
    if (g.autoscale) app.push(autoscaler(g));
  }
  app.push(service("gateway"), matching(), service("matching", true), disruptionBudget("matching"), ingress(), ...appPolicies());
  out.set("base/app/resources.yaml", app);
  out.set("base/app/kustomization.yaml", kustomization({ resources: ["resources.yaml"] }));
  // The wallet base names the app namespace it talks to as `bazaar-app`; overlays replace it.
  out.set("base/wallet/resources.yaml", [walletConfig("bazaar-app"), wallet(), disruptionBudget("wallet"), ...walletPolicies("bazaar-app")]);
  out.set("base/wallet/kustomization.yaml", kustomization({ resources: ["resources.yaml"] }));

  for (const o of OVERLAYS) {
    const appNs = `bazaar-${o.env}`;
    const walletNs = `bazaar-${o.env}-wallet`;
    const dir = `overlays/${o.env}`;
    const namespace = (name: string, zone: string) => ({ apiVersion: "v1", kind: "Namespace", metadata: { name, labels: { ...PART_OF, "bazaar/environment": o.env, "bazaar/zone": zone } } });
    const images = [{ name: IMAGE, newName: "registry.example.com/bazaar", newTag: o.tag }];
    const scalePatches = GROUPS.map((g) => ({
      target: { kind: g.autoscale ? "HorizontalPodAutoscaler" : "Deployment", name: g.name },
      patch: stringify([{ op: "replace", path: g.autoscale ? "/spec/minReplicas" : "/spec/replicas", value: o.scale }]),
    }));
    out.set(`${dir}/app/namespace.yaml`, [namespace(appNs, "app")]);
    out.set(
      `${dir}/app/kustomization.yaml`,
      kustomization({
        namespace: appNs,
        resources: ["../../../base/app", "namespace.yaml"],
        images,
        patches: [
          ...scalePatches,
          ...GROUPS.map((g) => ({ target: { kind: "Deployment", name: g.name }, patch: stringify([{ op: "replace", path: "/spec/replicas", value: o.scale }]) })),
          {
            target: { kind: "ConfigMap", name: "bazaar-config" },
            patch: stringify([
              { op: "replace", path: "/data/BAZAAR_NAMESPACE", value: o.env },
              { op: "replace", path: "/data/BAZAAR_STREAM_REPLICAS", value: String(o.streamReplicas) },
            ]),
          },
          {
            target: { kind: "NetworkPolicy", name: "infra-from-bazaar" },
            patch: stringify([{ op: "replace", path: "/spec/ingress/0/from/1/namespaceSelector/matchLabels/bazaar~1environment", value: o.env }]),
          },
          {
            target: { kind: "Ingress", name: "bazaar" },
            patch: stringify([
              { op: "replace", path: "/spec/tls/0/hosts/0", value: o.host },
              { op: "replace", path: "/spec/rules/0/host", value: o.host },
            ]),
          },
        ],
      }),
    );
    const walletResources: Manifest[] = [namespace(walletNs, "wallet")];
    if (o.externalChain) {
      walletResources.push({ apiVersion: "v1", kind: "Service", metadata: { name: "chain", labels: labels("chain") }, spec: { type: "ExternalName", externalName: o.externalChain.host } } as Service);
    } else walletResources.push(...devChain());
    out.set(`${dir}/wallet/resources.yaml`, walletResources);
    out.set(
      `${dir}/wallet/kustomization.yaml`,
      kustomization({
        namespace: walletNs,
        resources: ["../../../base/wallet", "resources.yaml"],
        images,
        patches: [
          {
            target: { kind: "ConfigMap", name: "bazaar-wallet-config" },
            patch: stringify([
              { op: "replace", path: "/data/BAZAAR_NAMESPACE", value: o.env },
              { op: "replace", path: "/data/BAZAAR_STREAM_REPLICAS", value: String(o.streamReplicas) },
              ...Object.entries(walletInfra(appNs)).map(([key, value]) => ({ op: "replace", path: `/data/${key}`, value })),
            ]),
          },
          {
            target: { kind: "NetworkPolicy", name: "wallet-zone" },
            patch: stringify([
              ...[1, 2, 3].map((i) => ({ op: "replace", path: `/spec/egress/${i}/to/0/namespaceSelector/matchLabels/kubernetes.io~1metadata.name`, value: appNs })),
              ...(o.externalChain ? [{ op: "replace", path: "/spec/egress/4/to/0", value: { ipBlock: { cidr: o.externalChain.cidr } } }] : []),
            ]),
          },
        ],
      }),
    );
    out.set(`${dir}/kustomization.yaml`, kustomization({ resources: ["app", "wallet"] }));
  }

  // The canary of a production release: the delivery pipeline sets its image and version, then shifts
  // a share of traffic to its lane (config centre release/routing) and watches the alerts.
  out.set("overlays/prod-canary/resources.yaml", GROUPS.map((g) => deployment(g, "canary")));
  out.set(
    "overlays/prod-canary/kustomization.yaml",
    kustomization({ namespace: "bazaar-prod", resources: ["resources.yaml"], images: [{ name: IMAGE, newName: "registry.example.com/bazaar", newTag: "canary" }] }),
  );
  return out;
}

const HEADER = "# Generated by deploy/k8s/manifests.ts (npm run build:k8s); edit that file, not this one.\n";

/** The YAML text of each file. */
export function render(): Map<string, string> {
  const out = new Map<string, string>();
  for (const [file, content] of files()) {
    const text = Array.isArray(content) ? content.map((m) => stringify(m, { lineWidth: 0 })).join("---\n") : stringify(content, { lineWidth: 0 });
    out.set(file, HEADER + text);
  }
  return out;
}

export const K8S_DIR = __dirname;

if (require.main === module) {
  for (const dir of ["base", "overlays"]) rmSync(path.join(K8S_DIR, dir), { recursive: true, force: true });
  for (const [file, text] of render()) {
    mkdirSync(path.dirname(path.join(K8S_DIR, file)), { recursive: true });
    writeFileSync(path.join(K8S_DIR, file), text);
  }
  process.stdout.write(`wrote ${render().size} files under deploy/k8s\n`);
}
