import { describe, expect, it } from "vitest";
import { accessOf, DEFAULT_QUOTAS, quotaRefusal, suspendedRefusal } from "./tenant.domain";

describe("tenant rules", () => {
  it("refuses what would pass a quota, naming it", () => {
    const quotas = { ...DEFAULT_QUOTAS, maxUsers: 2 };
    expect(quotaRefusal(quotas, "maxUsers", 1)).toBeNull();
    expect(quotaRefusal(quotas, "maxUsers", 2)).toEqual({ code: "TENANT_QUOTA_EXCEEDED", message: "quota maxUsers is 2; 2 used" });
    expect(quotaRefusal(quotas, "maxProducts", 9_999, 2)?.code).toBe("TENANT_QUOTA_EXCEEDED");
  });

  it("lets owners and administrators manage, members read, strangers nothing", () => {
    expect(accessOf({ userId: 1, admin: true })).toBe("MANAGER");
    expect(accessOf({ userId: 1, admin: false, role: "OWNER" })).toBe("MANAGER");
    expect(accessOf({ userId: 1, admin: false, role: "STAFF" })).toBe("MEMBER");
    expect(accessOf({ userId: 1, admin: false })).toBe("NONE");
  });

  it("freezes a suspended tenant's writes, not its reads", () => {
    expect(suspendedRefusal("SUSPENDED", true)?.code).toBe("TENANT_SUSPENDED");
    expect(suspendedRefusal("SUSPENDED", false)).toBeNull();
    expect(suspendedRefusal("ACTIVE", true)).toBeNull();
  });
});
