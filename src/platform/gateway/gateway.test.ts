import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestSystem, type TestSystem } from "../../../test/support/harness";
import type { StreamMessage } from "../stream/stream";

let sys: TestSystem;
beforeAll(async () => {
  sys = await startTestSystem({ config: { bodyLimit: 1024 } });
});
afterAll(() => sys?.stop());

describe("gateway", () => {
  it("answers health, readiness and Prometheus metrics with ours and the broker's", async () => {
    expect((await sys.api.get("/health")).body).toMatchObject({ status: "ok" });
    expect((await sys.api.get("/ready")).status).toBe(200);
    // Not ready until the node says its bootstrap is done (the CLI sets it after the admin and demo data).
    sys.node.platform.readiness.ready = false;
    expect((await sys.api.get("/ready")).status).toBe(503);
    sys.node.platform.readiness.ready = true;
    await sys.api.get("/api/governance/policies", sys.admin.token);
    const metrics = await sys.api.get("/metrics");
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('bazaar_http_requests_total{method="GET",route="/api/governance/policies",status="200"}');
    expect(metrics.body).toMatch(/bazaar_action_calls_total\{action="report.listPolicies",outcome="ok"\} [1-9]/);
    expect(metrics.body).toMatch(/bazaar_broker_nodes\{available="true"\} 1/);
  });

  it("publishes an OpenAPI document built from the contracts", async () => {
    const doc = (await sys.api.get("/api/openapi.json")).body;
    expect(doc.openapi).toBe("3.1.0");
    const vote = doc.paths["/api/governance/cases/{id}/votes"].post;
    expect(vote.operationId).toBe("report.vote");
    expect(vote.parameters).toEqual([expect.objectContaining({ name: "id", in: "path", required: true })]);
    expect(vote.requestBody.content["application/json"].schema.properties.decision.enum).toEqual(["VIOLATION", "NO_VIOLATION"]);
    expect(vote.security).toEqual([{ bearer: [] }]);
    const list = doc.paths["/api/governance/cases"].get;
    expect(list.parameters.map((p: { name: string }) => p.name)).toContain("reporterId");
    expect(doc.paths["/api/auth/login"].post.security).toBeUndefined();
    expect(doc.paths["/api/governance/policies/{reportType}"].put.description).toMatch(/operator/);
    // Swagger UI at /api/docs renders the same document.
    const page = await fetch(`${sys.node.url}/api/docs/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("swagger-ui");
    const served = (await (await fetch(`${sys.node.url}/api/docs/json`)).json()) as { paths: Record<string, unknown> };
    expect(Object.keys(served.paths)).toEqual(Object.keys(doc.paths));
  });

  it("echoes a caller's request id and makes one otherwise", async () => {
    const mine = await sys.api.request("GET", "/health", { headers: { "x-request-id": "trace-abc.1" } });
    expect(mine.status).toBe(200);
    const res = await fetch(`${sys.node.url}/health`, { headers: { "x-request-id": "trace-abc.1" } });
    expect(res.headers.get("x-request-id")).toBe("trace-abc.1");
    const made = await fetch(`${sys.node.url}/health`, { headers: { "x-request-id": "bad id with spaces" } });
    expect(made.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("observes API answers, refusals before a handler ran and unknown paths alike: id echoed, counted by route and status", async () => {
    const count = async (series: string) => Number(new RegExp(`^${series.replace(/[{}*.]/g, "\\$&")} (\\d+)$`, "m").exec((await sys.api.get("/metrics")).body)?.[1] ?? 0);
    const api = 'bazaar_http_requests_total{method="GET",route="/api/governance/policies",status="200"}';
    const unparsable = 'bazaar_http_requests_total{method="POST",route="/api/*",status="400"}';
    const unknown = 'bazaar_http_requests_total{method="GET",route="unmatched",status="404"}';
    const before = { api: await count(api), unparsable: await count(unparsable), unknown: await count(unknown) };
    const answered = await fetch(`${sys.node.url}/api/governance/policies`, { headers: { authorization: `Bearer ${sys.admin.token}`, "x-request-id": "api-1" } });
    expect(answered.headers.get("x-request-id")).toBe("api-1");
    const broken = await fetch(`${sys.node.url}/api/auth/login`, { method: "POST", body: "{not json", headers: { "content-type": "application/json", "x-request-id": "api-2" } });
    expect(broken.status).toBe(400);
    expect(broken.headers.get("x-request-id")).toBe("api-2");
    const lost = await fetch(`${sys.node.url}/elsewhere`, { headers: { "x-request-id": "api-3" } });
    expect(lost.status).toBe(404);
    expect(lost.headers.get("x-request-id")).toBe("api-3");
    expect({ api: await count(api), unparsable: await count(unparsable), unknown: await count(unknown) }).toEqual({
      api: before.api + 1,
      unparsable: before.unparsable + 1,
      unknown: before.unknown + 1,
    });
  });

  it("refuses unknown routes, bad tokens, missing roles and malformed bodies with 4xx codes", async () => {
    expect((await sys.api.get("/api/nowhere")).body.error.code).toBe("ROUTE_NOT_FOUND");
    expect((await sys.api.get("/elsewhere")).status).toBe(404);
    expect((await sys.api.get("/api/me")).body.error.code).toBe("UNAUTHENTICATED");
    expect((await sys.api.get("/api/me", "not.a.token")).body.error.code).toBe("INVALID_TOKEN");
    const basic = await sys.api.request("GET", "/api/me", { headers: { authorization: "Basic abc" } });
    expect(basic.status).toBe(401);
    const user = await sys.user();
    const forbidden = await sys.api.put("/api/governance/policies/SPAM", {}, user.token);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error.code).toBe("FORBIDDEN");
    const big = await sys.api.post("/api/auth/login", { username: "x", password: "y".repeat(2000) });
    expect(big.status).toBe(413);
    expect(big.body.error.code).toBe("BODY_TOO_LARGE");
    const broken = await sys.api.request("POST", "/api/auth/login", { body: "{not json", headers: { "content-type": "application/json" } });
    expect(broken.status).toBe(400);
    expect(broken.body.error.code).toBe("INVALID_BODY");
    const array = await sys.api.post("/api/auth/login", [1, 2]);
    expect(array.body.error.code).toBe("INVALID_BODY");
    const text = await sys.api.request("POST", "/api/auth/login", { body: "hello", headers: { "content-type": "text/plain" } });
    expect(text.status).toBe(415);
    expect(text.body.error.code).toBe("UNSUPPORTED_MEDIA_TYPE");
  });

  it("expires tokens by the injected clock", async () => {
    const user = await sys.user();
    expect((await sys.api.get("/api/me", user.token)).status).toBe(200);
    sys.clock.advance(3601_000);
    const expired = await sys.api.get("/api/me", user.token);
    expect(expired.status).toBe(401);
    expect(expired.body.error.code).toBe("TOKEN_EXPIRED");
  });

  it("records an authenticated user as active, once per window, as a stream event", async () => {
    const user = await sys.user();
    const seen: StreamMessage[] = [];
    const sub = await sys.node.platform.stream.consume({
      durable: `probe${Date.now()}`,
      subject: "identity.user.active",
      handler: async (m) => {
        seen.push(m);
      },
    });
    for (let i = 0; i < 5; i++) await sys.api.get("/api/me", user.token);
    for (let i = 0; i < 200 && !seen.some((m) => (m.data as { userId: number }).userId === user.id); i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 100));
    await sub.stop();
    expect(seen.filter((m) => (m.data as { userId: number }).userId === user.id)).toHaveLength(1);
  });
});
