import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestSystem, type TestSystem } from "../../test/support/harness";
import { DEMO_ITEMS, DEMO_PASSWORD, DEMO_POLICIES, DEMO_USERS, loadDemoData } from "./bootstrap";

const quiet = pino({ level: "silent" });
let sys: TestSystem;
beforeAll(async () => {
  sys = await startTestSystem();
});
afterAll(() => sys?.stop());

describe("demo data", () => {
  it("finishes a load that was cut short, and is never loaded twice", async () => {
    // What a start killed right after its first step leaves behind.
    await sys.api.put(`/api/governance/policies/${DEMO_POLICIES[0].reportType}`, DEMO_POLICIES[0], sys.admin.token);
    expect(await loadDemoData(sys.node.broker, quiet, sys.clock)).toBe(true);
    expect((await sys.api.get("/api/governance/policies", sys.admin.token)).body).toHaveLength(DEMO_POLICIES.length);
    expect((await sys.api.get("/api/rewards/items", sys.admin.token)).body).toHaveLength(DEMO_ITEMS.length);
    expect(await sys.call("reviewer.stats")).toEqual({ ACTIVE: DEMO_USERS });
    expect((await sys.api.post("/api/auth/login", { username: "demo-user-200", password: DEMO_PASSWORD })).status).toBe(200);

    expect(await loadDemoData(sys.node.broker, quiet, sys.clock)).toBe(false);
    expect((await sys.api.get("/api/rewards/items", sys.admin.token)).body).toHaveLength(DEMO_ITEMS.length);
  });

  it("leaves a store with anything of its own alone", async () => {
    const other = await startTestSystem();
    try {
      await other.api.put("/api/governance/policies/CUSTOM", { ...DEMO_POLICIES[0], reportType: "CUSTOM" }, other.admin.token);
      expect(await loadDemoData(other.node.broker, quiet, other.clock)).toBe(false);
      expect((await other.api.get("/api/rewards/items", other.admin.token)).body).toEqual([]);
      expect(await other.call("identity.count")).toBe(1);
    } finally {
      await other.stop();
    }
  });
});
