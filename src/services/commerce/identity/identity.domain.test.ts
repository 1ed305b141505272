import { describe, expect, it } from "vitest";
import { decodeRoles, encodeRoles, normaliseRoles, withRole } from "./identity.domain";

describe("roles", () => {
  it("always include user, drop unknown names and keep a fixed order", () => {
    expect(normaliseRoles([])).toEqual(["user"]);
    expect(normaliseRoles(["admin", "bogus", "reviewer", "admin"])).toEqual(["user", "reviewer", "admin"]);
    expect(encodeRoles(["operator"])).toBe("user,operator");
    expect(decodeRoles("user,operator,nonsense")).toEqual(["user", "operator"]);
  });
  it("grants a role idempotently", () => {
    expect(withRole("user", "reviewer")).toBe("user,reviewer");
    expect(withRole("user,reviewer", "reviewer")).toBe("user,reviewer");
  });
});
