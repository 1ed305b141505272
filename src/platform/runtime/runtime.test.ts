import { Errors } from "moleculer";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { hasRole, requireIdempotencyKey, requireRole, validationError } from "./action";
import { loadConfig } from "./config";
import { AppError, toHttpError } from "./errors";
import { newId } from "./ids";

describe("config layering", () => {
  it("takes defaults, then the file, then env, then flags", () => {
    const base = loadConfig({}, {});
    expect(base).toMatchObject({ port: 8080, namespace: "dev", demo: true, host: "127.0.0.1" });
    const env = loadConfig({}, { BAZAAR_PORT: "9000", BAZAAR_DEMO: "0", BAZAAR_NAMESPACE: "prod" });
    expect(env).toMatchObject({ port: 9000, demo: false, namespace: "prod" });
    const flags = loadConfig({ port: "9100", dataDir: "/tmp/x" }, { BAZAAR_PORT: "9000" });
    expect(flags).toMatchObject({ port: 9100, dataDir: "/tmp/x" });
  });
  it("rejects malformed values with the variable's name", () => {
    expect(() => loadConfig({}, { BAZAAR_PORT: "http" })).toThrow(/BAZAAR_PORT/);
    expect(() => loadConfig({}, { BAZAAR_DEMO: "maybe" })).toThrow(/BAZAAR_DEMO/);
    expect(() => loadConfig({}, { BAZAAR_NAMESPACE: "Prod Env" })).toThrow(/BAZAAR_NAMESPACE/);
    expect(() => loadConfig({}, { BAZAAR_STREAM_REPLICAS: "0" })).toThrow(/BAZAAR_STREAM_REPLICAS: expected 1 to 5/);
    expect(loadConfig({}, { BAZAAR_STREAM_REPLICAS: "3" }).streamReplicas).toBe(3);
    expect(() => loadConfig({}, { BAZAAR_CONFIG_STORE: "zookeeper" })).toThrow(/BAZAAR_CONFIG_STORE: expected sql or etcd/);
    expect(() => loadConfig({}, { BAZAAR_CONFIG_STORE: "etcd" })).toThrow(/needs BAZAAR_ETCD_URL/);
    expect(loadConfig({}, { BAZAAR_CONFIG_STORE: "etcd", BAZAAR_ETCD_URL: "http://etcd:2379" }).configStore).toBe("etcd");
    expect(loadConfig({}, {}).configStore).toBe("sql");
  });
});

describe("errors to HTTP", () => {
  it("keeps 4xx codes and fields, hides internals, maps unavailable services to 503", () => {
    expect(toHttpError(new AppError(409, "X", "m", "f"))).toEqual({ status: 409, body: { error: { code: "X", message: "m", field: "f" } } });
    expect(toHttpError(new Error("secret detail")).body.error).toEqual({ code: "INTERNAL", message: "internal error" });
    expect(toHttpError(new Errors.ServiceNotFoundError({ action: "a.b" })).status).toBe(503);
    expect(toHttpError(new Errors.RequestTimeoutError({ action: "a.b" })).status).toBe(504);
    expect(toHttpError(new Errors.MoleculerError("busy", 503, "BUSY")).status).toBe(503);
    expect(toHttpError({ code: 400, type: "REMOTE", message: "from another node" }).body.error.code).toBe("REMOTE");
  });
  it("names the first failing field of a contract", () => {
    const parsed = z.object({ a: z.object({ b: z.number() }) }).safeParse({ a: { b: "x" } });
    const err = validationError(parsed.error!);
    expect(err.code).toBe(400);
    expect(err.data).toEqual({ field: "a.b" });
  });
});

describe("request guards", () => {
  const ctx = (meta: object) => ({ meta }) as never;
  it("checks roles, with admin passing every check", () => {
    const user = { id: 1, username: "u", roles: ["user" as const] };
    expect(hasRole(user, "operator")).toBe(false);
    expect(hasRole({ ...user, roles: ["admin"] }, "operator")).toBe(true);
    expect(() => requireRole(ctx({ user }), "operator")).toThrow(/operator/);
    expect(() => requireRole(ctx({}), "operator")).toThrow(/authentication/);
  });
  it("validates idempotency keys", () => {
    expect(requireIdempotencyKey(ctx({ idempotencyKey: "abc-1" }))).toBe("abc-1");
    expect(() => requireIdempotencyKey(ctx({}))).toThrow(/required/);
    expect(() => requireIdempotencyKey(ctx({ idempotencyKey: "x".repeat(65) }))).toThrow(/1-64/);
  });
});

describe("ids", () => {
  it("sort by time", () => {
    const a = newId(1000);
    const b = newId(2000);
    expect(a < b).toBe(true);
    expect(a).toMatch(/^[0-9a-z]{25}$/);
  });
});
