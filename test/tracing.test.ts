import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Platform } from "../src/platform/runtime/platform";
import { eventually, startTestSystem, type TestSystem } from "./support/harness";

/** A stand-in for the tracing backend (Jaeger's Zipkin endpoint): it keeps every span it is sent. */
interface ZipkinSpan {
  tags?: Record<string, string>;
  traceId: string;
  id: string;
  parentId?: string;
  name: string;
  localEndpoint?: { serviceName?: string };
}
const spans: ZipkinSpan[] = [];
let collector: Server;
let sys: TestSystem;
/** Every line the node logged. */
const lines: string[] = [];

/**
 * A consumer that only logs what it handles: its line must name the trace of the request behind the
 * message; and an action that only logs: its line must name the request's trace and its user.
 */
function cancellationWatcher(platform: Platform) {
  const host = platform.host("cancellation-watcher", {});
  return {
    name: "cancellation-watcher",
    settings: { routes: [{ method: "POST", path: "/api/test/notes", action: "cancellation-watcher.note", auth: "user" }] },
    actions: { note: { handler: () => void host.logger.info("noted") } },
    created() {
      host.consume("commerce.order.cancelled", async (_trx, message) => void host.logger.info({ event: message.id }, "saw a cancellation"));
    },
    started: () => host.start(),
    stopped: () => host.stop(),
  };
}

beforeAll(async () => {
  collector = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      if (req.url === "/api/v2/spans") spans.push(...(JSON.parse(body) as ZipkinSpan[]));
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((r) => collector.listen(0, "127.0.0.1", r));
  const { port } = collector.address() as AddressInfo;
  sys = await startTestSystem({
    services: ["gateway", "identity", "tenant", "permission", "inventory", "order", "tx"],
    config: { tracingUrl: `http://127.0.0.1:${port}`, logLevel: "info" },
    extra: { "cancellation-watcher": cancellationWatcher },
    logTo: new Writable({
      write(chunk, _encoding, done) {
        lines.push(...String(chunk).split("\n").filter(Boolean));
        done();
      },
    }),
  });
});
afterAll(async () => {
  await sys?.stop();
  await new Promise((r) => collector.close(r));
});

describe("tracing", () => {
  it("gives one HTTP request that crosses several services one trace, named by its request id", async () => {
    const owner = await sys.user();
    const tid = (await sys.api.post("/api/commerce/tenants", { name: "Traced", ownerId: owner.id }, sys.admin.token)).body.id;
    await sys.api.post(`/api/commerce/tenants/${tid}/products`, { sku: "t", name: "T", price: 5 }, owner.token);
    await sys.api.put(`/api/commerce/tenants/${tid}/stock/t`, { quantity: 3 }, owner.token);
    const requestId = randomUUID();
    const placed = await sys.api.request("POST", "/api/commerce/orders", {
      token: owner.token,
      idempotencyKey: randomUUID(),
      headers: { "x-request-id": requestId },
      body: JSON.stringify({ tenantId: tid, items: [{ sku: "t", quantity: 1 }], address: { name: "A", line1: "1", city: "C", postcode: "1", country: "US" } }),
    });
    expect(placed.status).toBe(201);
    // Zipkin's 64-bit trace id: the request id's first 16 hex digits.
    const traceId = requestId.replace(/-/g, "").slice(0, 16);
    const trace = await eventually(async () => {
      const mine = spans.filter((s) => s.traceId === traceId);
      // The root finishes last (spans go out in batches as they finish): wait for it and the deepest call.
      return mine.some((s) => s.name === "HTTP POST /api/commerce/orders") && mine.some((s) => s.name === "action 'inventory.reserve'") && mine;
    });
    const services = new Set(trace.map((s) => s.name.match(/'(\w+)\./)?.[1]));
    for (const service of ["order", "tenant", "tx", "inventory"]) expect(services).toContain(service);
    // One tree: every span but the root hangs under another span of the same trace.
    const ids = new Set(trace.map((s) => s.id));
    expect(trace.filter((s) => !s.parentId || !ids.has(s.parentId))).toHaveLength(1);
    expect(trace.find((s) => !s.parentId || !ids.has(s.parentId))!.name).toBe("HTTP POST /api/commerce/orders");
    // What callers sent never reaches the tracing backend (passwords, tokens, personal data).
    expect(JSON.stringify(spans)).not.toContain("password-123");
    expect(spans.some((s) => JSON.stringify(s).includes('"params.'))).toBe(false);
  });

  it("continues the trace across a stream message: the consumer's span hangs under the action that emitted it", async () => {
    const owner = await sys.user();
    const tid = (await sys.api.post("/api/commerce/tenants", { name: "Traced events", ownerId: owner.id }, sys.admin.token)).body.id;
    await sys.api.post(`/api/commerce/tenants/${tid}/products`, { sku: "e", name: "E", price: 5 }, owner.token);
    await sys.api.put(`/api/commerce/tenants/${tid}/stock/e`, { quantity: 3 }, owner.token);
    const address = { name: "A", line1: "1", city: "C", postcode: "1", country: "US" };
    const order = (await sys.api.post("/api/commerce/orders", { tenantId: tid, items: [{ sku: "e", quantity: 1 }], address }, owner.token, randomUUID())).body;
    const requestId = randomUUID();
    const cancelled = await sys.api.request("POST", `/api/commerce/orders/${order.id}/cancel`, { token: owner.token, headers: { "x-request-id": requestId }, body: "{}" });
    expect(cancelled.status).toBe(200);
    const traceId = requestId.replace(/-/g, "").slice(0, 16);
    // The order service emits commerce.order.cancelled; the inventory service releases the hold on it.
    const trace = await eventually(async () => {
      const mine = spans.filter((s) => s.traceId === traceId);
      return mine.some((s) => s.name === "stream commerce.order.cancelled") && mine.some((s) => s.name === "HTTP POST /api/commerce/orders/:id/cancel") && mine;
    });
    const consumer = trace.find((s) => s.name === "stream commerce.order.cancelled")!;
    const emitter = trace.find((s) => s.id === consumer.parentId);
    expect(emitter?.name).toBe("action 'order.cancel'");
    const ids = new Set(trace.map((s) => s.id));
    expect(trace.filter((s) => !s.parentId || !ids.has(s.parentId)).map((s) => s.name)).toEqual(["HTTP POST /api/commerce/orders/:id/cancel"]);

    // The log lines: the access line and the consumer's line both name the request's trace, once each.
    const seen = await eventually(async () => lines.find((l) => l.includes("saw a cancellation")));
    expect(JSON.parse(seen)).toMatchObject({ svc: "cancellation-watcher", traceId: requestId });
    const access = lines.map((l) => JSON.parse(l)).find((l) => l.msg === "http" && l.route === "/api/commerce/orders/:id/cancel");
    expect(access).toMatchObject({ traceId: requestId, user: owner.id });
    for (const l of lines) expect(l.split('"traceId"').length, l).toBeLessThanOrEqual(2);

    const noteId = randomUUID();
    await sys.api.request("POST", "/api/test/notes", { token: owner.token, headers: { "x-request-id": noteId }, body: "{}" });
    const noted = await eventually(async () => lines.find((l) => l.includes('"msg":"noted"')));
    expect(JSON.parse(noted)).toMatchObject({ svc: "cancellation-watcher", traceId: noteId, user: owner.id });
  });
});
