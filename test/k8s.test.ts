import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { StatefulSet, Deployment } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { Ingress, NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ConfigMap, Namespace, Service } from "kubernetes-models/v1";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { K8S_DIR, OVERLAYS, render } from "../deploy/k8s/manifests";

/**
 * The Kubernetes manifests: the committed YAML is what deploy/k8s/manifests.ts emits; every object is
 * valid against the Kubernetes schemas; each overlay renders with `kubectl kustomize` (where kubectl is
 * installed) into objects whose selectors, autoscalers, budgets, services and probes hang together.
 */
type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec?: any; data?: any };

const MODELS: Record<string, new (o: any) => { validate(): void }> = {
  "v1/Namespace": Namespace,
  "v1/ConfigMap": ConfigMap,
  "v1/Service": Service,
  "apps/v1/Deployment": Deployment,
  "apps/v1/StatefulSet": StatefulSet,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "networking.k8s.io/v1/Ingress": Ingress,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
};

function committedFiles(dir = K8S_DIR, prefix = ""): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) return committedFiles(full, `${prefix}${entry}/`);
    return entry.endsWith(".yaml") ? [`${prefix}${entry}`] : [];
  });
}

const parse = (text: string): Obj[] => parseAllDocuments(text).map((d) => d.toJS() as Obj).filter(Boolean);
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) => Object.entries(selector).every(([k, v]) => labels[k] === v);

const kubectl = (() => {
  try {
    execFileSync("kubectl", ["version", "--client"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

describe("Kubernetes manifests", () => {
  const rendered = render();

  it("are committed exactly as deploy/k8s/manifests.ts emits them (npm run build:k8s)", () => {
    expect(committedFiles().sort()).toEqual([...rendered.keys()].sort());
    for (const [file, text] of rendered) expect(readFileSync(path.join(K8S_DIR, file), "utf8"), file).toBe(text);
  });

  it("hold only valid Kubernetes objects, and never a Secret", () => {
    const objects = [...rendered].filter(([file]) => !file.endsWith("kustomization.yaml")).flatMap(([, text]) => parse(text));
    expect(objects.length).toBeGreaterThan(20);
    for (const o of objects) {
      const Model = MODELS[`${o.apiVersion}/${o.kind}`];
      expect(Model, `${o.apiVersion}/${o.kind}`).toBeDefined();
      expect(() => new Model(o).validate(), `${o.kind}/${o.metadata.name}`).not.toThrow();
    }
    expect(objects.some((o) => o.kind === "Secret")).toBe(false);
  });

  it.runIf(kubectl)("render a production canary: one pod per group on its own track, beside the stable ones", () => {
    const canary = parse(execFileSync("kubectl", ["kustomize", path.join(K8S_DIR, "overlays", "prod-canary")], { encoding: "utf8" }));
    expect(canary.map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`).sort()).toEqual(
      ["commerce", "exchange", "flash", "gateway", "governance"].map((g) => `Deployment/bazaar-prod/${g}-canary`),
    );
    for (const d of canary) {
      expect(d.spec.replicas).toBe(1);
      expect(d.spec.selector.matchLabels["bazaar/track"]).toBe("canary");
      expect(matches(d.spec.selector.matchLabels, d.spec.template.metadata.labels)).toBe(true);
    }
  });

  describe.runIf(kubectl).each(OVERLAYS.map((o) => o.env))("overlay %s, rendered by kubectl kustomize", (env) => {
    const objects = () => parse(execFileSync("kubectl", ["kustomize", path.join(K8S_DIR, "overlays", env)], { encoding: "utf8" }));

    it("validates, keeps the app and the wallet in their own namespaces, and wires every reference", () => {
      const all = objects();
      for (const o of all) expect(() => new MODELS[`${o.apiVersion}/${o.kind}`](o).validate(), `${o.kind}/${o.metadata.name}`).not.toThrow();
      const namespaces = all.filter((o) => o.kind === "Namespace").map((o) => o.metadata.name);
      expect(namespaces.sort()).toEqual([`bazaar-${env}`, `bazaar-${env}-wallet`]);
      for (const o of all.filter((x) => x.kind !== "Namespace")) expect(namespaces, `${o.kind}/${o.metadata.name}`).toContain(o.metadata.namespace);
      expect(all.find((o) => o.kind === "Deployment" && o.metadata.name === "wallet")!.metadata.namespace).toBe(`bazaar-${env}-wallet`);
      expect(all.find((o) => o.kind === "ConfigMap" && o.metadata.name === "bazaar-config")!.data.BAZAAR_NAMESPACE).toBe(env);

      const workloads = all.filter((o) => o.kind === "Deployment" || o.kind === "StatefulSet");
      const podsOf = (ns: string | undefined) => workloads.filter((w) => w.metadata.namespace === ns).map((w) => w.spec.template.metadata.labels);
      for (const w of workloads) {
        const where = `${w.kind}/${w.metadata.name}`;
        expect(matches(w.spec.selector.matchLabels, w.spec.template.metadata.labels), `${where} selector`).toBe(true);
        for (const c of w.spec.template.spec.containers) {
          for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) expect(c[probe], `${where} ${probe}`).toBeDefined();
          for (const r of ["cpu", "memory"]) {
            expect(c.resources?.requests?.[r], `${where} requests.${r}`).toBeDefined();
            expect(c.resources?.limits?.[r], `${where} limits.${r}`).toBeDefined();
          }
          expect(c.image, where).toMatch(/^registry\.example\.com\/bazaar:|^ethereum\/client-go:/);
        }
      }
      for (const hpa of all.filter((o) => o.kind === "HorizontalPodAutoscaler")) {
        const target = hpa.spec.scaleTargetRef;
        expect(workloads.some((w) => w.kind === target.kind && w.metadata.name === target.name && w.metadata.namespace === hpa.metadata.namespace), `HPA ${hpa.metadata.name}`).toBe(true);
        expect(hpa.spec.minReplicas).toBeLessThanOrEqual(hpa.spec.maxReplicas);
      }
      for (const pdb of all.filter((o) => o.kind === "PodDisruptionBudget"))
        expect(podsOf(pdb.metadata.namespace).some((labels) => matches(pdb.spec.selector.matchLabels, labels)), `PDB ${pdb.metadata.name}`).toBe(true);
      for (const svc of all.filter((o) => o.kind === "Service" && o.spec.type !== "ExternalName"))
        expect(podsOf(svc.metadata.namespace).some((labels) => matches(svc.spec.selector, labels)), `Service ${svc.metadata.name}`).toBe(true);
      const ingress = all.find((o) => o.kind === "Ingress")!;
      const backend = ingress.spec.rules[0].http.paths[0].backend.service.name;
      expect(all.some((o) => o.kind === "Service" && o.metadata.name === backend && o.metadata.namespace === ingress.metadata.namespace)).toBe(true);
      expect(ingress.spec.tls[0].hosts[0]).toBe(ingress.spec.rules[0].host);

      // Two engines with leader election; one signer.
      const matching = all.find((o) => o.kind === "StatefulSet" && o.metadata.name === "matching")!;
      expect(matching.spec.replicas).toBe(2);
      expect(matching.spec.template.spec.containers[0].env.map((e: { name: string }) => e.name)).toContain("BAZAAR_REPLICA");
      expect(all.find((o) => o.metadata.name === "wallet" && o.kind === "Deployment")!.spec.replicas).toBe(1);

      // The wallet's zone: only Prometheus comes in; out it reaches DNS, the environment's NATS and stores, and the chain.
      const zone = all.find((o) => o.kind === "NetworkPolicy" && o.metadata.name === "wallet-zone")!;
      expect(zone.spec.policyTypes).toEqual(["Ingress", "Egress"]);
      expect(zone.spec.ingress).toHaveLength(1);
      for (const rule of zone.spec.egress.slice(1, 4)) expect(rule.to[0].namespaceSelector.matchLabels["kubernetes.io/metadata.name"]).toBe(`bazaar-${env}`);
      const chainRule = zone.spec.egress[4];
      expect(chainRule.ports).toEqual([{ port: 8545 }]);
      if (env === "prod") expect(chainRule.to[0].ipBlock.cidr).toBeDefined();
      else expect(chainRule.to[0].podSelector.matchLabels["app.kubernetes.io/name"]).toBe("chain");
    });
  });
});
