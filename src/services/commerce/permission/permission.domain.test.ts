import { describe, expect, it } from "vitest";
import { isBuiltIn, permissionProblem, tenantPolicy } from "./permission.domain";

describe("permissions", () => {
  it("reads resource:action, with * for all", () => {
    expect(permissionProblem("orders:refund")).toBeNull();
    expect(permissionProblem("*:*")).toBeNull();
    expect(permissionProblem("orders:*")).toBeNull();
    expect(permissionProblem("orders")).toMatch(/not resource:action/);
    expect(permissionProblem("orders:read:now")).toMatch(/not resource:action/);
    expect(permissionProblem("cars:read")).toMatch(/unknown resource cars/);
    expect(permissionProblem("orders:fly")).toMatch(/unknown action fly/);
    expect(isBuiltIn("STAFF")).toBe(true);
    expect(isBuiltIn("viewer")).toBe(false);
    expect(isBuiltIn("toString")).toBe(false);
  });
});

describe("a tenant's policy", () => {
  const custom = [{ name: "viewer", permissions: ["orders:read"] }];
  it("gives each member its membership role unless custom roles replace it; owners keep OWNER", () => {
    const { groupings } = tenantPolicy(
      "t",
      custom,
      [
        { userId: 1, role: "OWNER" },
        { userId: 2, role: "STAFF" },
        { userId: 3, role: "STAFF" },
      ],
      [
        { userId: 1, role: "viewer" },
        { userId: 2, role: "viewer" },
        { userId: 3, role: "gone" },
        { userId: 9, role: "viewer" },
      ],
    );
    expect(groupings).toEqual([
      ["user:1", "role:OWNER", "t"],
      ["user:1", "role:viewer", "t"],
      ["user:2", "role:viewer", "t"],
      ["user:3", "role:STAFF", "t"],
    ]);
  });

  it("turns every role's permissions into rules of the tenant", () => {
    const { policies } = tenantPolicy("t", custom, [], []);
    expect(policies).toContainEqual(["role:OWNER", "t", "*", "*"]);
    expect(policies).toContainEqual(["role:STAFF", "t", "orders", "*"]);
    expect(policies).toContainEqual(["role:viewer", "t", "orders", "read"]);
    expect(policies.every((p) => p[1] === "t")).toBe(true);
  });
});
