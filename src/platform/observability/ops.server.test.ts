import { afterAll, describe, expect, it } from "vitest";
import { cleanEngines, testConfig } from "../../../test/support/harness";
import { catalogue } from "../../services/catalog";
import { type RunningNode, startNode } from "../runtime/system";

let node: RunningNode | undefined;
const config = testConfig({ opsPort: 0 });
afterAll(async () => {
  await node?.stop();
  await cleanEngines(config);
});

describe("a node without the gateway", () => {
  it("answers probes and scrapes on BAZAAR_OPS_PORT: healthy at once, ready once bootstrapped, not ready while stopping", async () => {
    node = await startNode(config, { catalogue, services: ["account"], processMetrics: false });
    expect(node.url).toBeUndefined();
    const get = (path: string) => fetch(`${node!.opsUrl}${path}`);
    expect((await get("/health")).status).toBe(200);
    expect((await get("/ready")).status).toBe(503);
    node.platform.readiness.ready = true;
    expect(await (await get("/ready")).json()).toMatchObject({ status: "ready", node: node.platform.nodeId });
    const metrics = await get("/metrics");
    expect(metrics.headers.get("content-type")).toContain("text/plain");
    expect(await metrics.text()).toContain("# TYPE");
    const url = node.opsUrl!;
    await node.stop();
    node = undefined;
    await expect(fetch(`${url}/health`)).rejects.toThrow();
  });
});
