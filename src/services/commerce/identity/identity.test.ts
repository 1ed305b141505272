import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestSystem, type TestSystem } from "../../../../test/support/harness";

let sys: TestSystem;
beforeAll(async () => {
  sys = await startTestSystem({ services: ["gateway", "identity", "tenant"] });
});
afterAll(() => sys?.stop());

describe("identity", () => {
  it("registers, logs in and answers /api/me", async () => {
    const reg = await sys.api.post("/api/auth/register", { username: "alice", password: "correct horse" });
    expect(reg.status).toBe(201);
    expect(reg.body).toEqual({ id: expect.any(Number), username: "alice" });
    const login = await sys.api.post("/api/auth/login", { username: "alice", password: "correct horse" });
    expect(login.body).toMatchObject({ expiresIn: 3600, user: { id: reg.body.id, username: "alice", roles: ["user"] } });
    const me = await sys.api.get("/api/me", login.body.accessToken);
    expect(me.body).toMatchObject({ id: reg.body.id, username: "alice", roles: ["user"] });
  });

  it("refuses taken names, weak passwords and bad names, writing nothing", async () => {
    const before = await sys.call<number>("identity.count");
    const taken = await sys.api.post("/api/auth/register", { username: "alice", password: "another one" });
    expect(taken.status).toBe(409);
    expect(taken.body.error).toMatchObject({ code: "USERNAME_TAKEN", field: "username" });
    const weak = await sys.api.post("/api/auth/register", { username: "bob", password: "short" });
    expect(weak.body.error).toMatchObject({ code: "VALIDATION_FAILED", field: "password" });
    const bad = await sys.api.post("/api/auth/register", { username: "Bob Smith", password: "long enough" });
    expect(bad.body.error.field).toBe("username");
    expect(await sys.call<number>("identity.count")).toBe(before);
  });

  it("answers a wrong password and an unknown user alike, and rate-limits an account", async () => {
    await sys.user("carol");
    const wrong = await sys.api.post("/api/auth/login", { username: "carol", password: "wrong-password" });
    const unknown = await sys.api.post("/api/auth/login", { username: "nobody", password: "wrong-password" });
    expect(wrong.status).toBe(401);
    expect(unknown.body).toEqual(wrong.body);
    let last = wrong;
    for (let i = 0; i < 12; i++) last = await sys.api.post("/api/auth/login", { username: "carol", password: "wrong-password" });
    expect(last.status).toBe(429);
    expect(last.body.error.code).toBe("LOGIN_RATE_LIMITED");
  });

  it("lets an admin change roles, which new tokens carry", async () => {
    const dave = await sys.user("dave");
    const denied = await sys.api.put(`/api/admin/users/${dave.id}/roles`, { roles: ["operator"] }, dave.token);
    expect(denied.status).toBe(403);
    const granted = await sys.api.put(`/api/admin/users/${dave.id}/roles`, { roles: ["operator"] }, sys.admin.token);
    expect(granted.body.roles).toEqual(["user", "operator"]);
    const login = await sys.api.post("/api/auth/login", { username: "dave", password: "password-123" });
    expect(login.body.user.roles).toEqual(["user", "operator"]);
    const bogus = await sys.api.put(`/api/admin/users/${dave.id}/roles`, { roles: ["king"] }, sys.admin.token);
    expect(bogus.body.error.field).toBe("roles.0");
    expect((await sys.api.put("/api/admin/users/999999/roles", { roles: ["user"] }, sys.admin.token)).status).toBe(404);
    expect((await sys.api.get("/api/admin/users/999999", sys.admin.token)).status).toBe(404);
  });

  it("keeps an admin's role change made while a role is granted: the two land one after the other", async () => {
    for (let i = 0; i < 20; i++) {
      const u = await sys.user();
      await Promise.all([
        sys.call("identity.grantRole", { userId: u.id, role: "reviewer" }),
        sys.api.put(`/api/admin/users/${u.id}/roles`, { roles: ["operator"] }, sys.admin.token),
      ]);
      // Either order is a right answer (the change replaces the roles); losing the change is not.
      expect((await sys.api.get(`/api/admin/users/${u.id}`, sys.admin.token)).body.roles).toContain("operator");
    }
  });

  it("bootstraps the admin once", async () => {
    expect(await sys.call("identity.ensureAdmin", {})).toEqual({ created: false, username: "admin" });
  });

  it("imports users in bulk with one password", async () => {
    const created = await sys.call<{ username: string }[]>("identity.importUsers", { usernames: ["bulk-1", "bulk-2"], password: "bulk-password" });
    expect(created.map((u) => u.username)).toEqual(["bulk-1", "bulk-2"]);
    expect((await sys.api.post("/api/auth/login", { username: "bulk-2", password: "bulk-password" })).status).toBe(200);
    await expect(sys.call("identity.importUsers", { usernames: ["bulk-1"], password: "bulk-password" })).rejects.toMatchObject({ type: "USERNAME_TAKEN" });
  });
});

describe("sign-in sessions", () => {
  const login = (username: string, password: string, extra: object = {}) => sys.api.post("/api/auth/login", { username, password, ...extra });

  it("rotate the refresh token on every use, and end the session when a spent one comes back", async () => {
    const u = await sys.user();
    const first = (await login(u.username, "password-123", { device: "phone" })).body;
    expect(first.refreshToken).toMatch(/^[0-9a-z]+\.[A-Za-z0-9_-]+$/);
    const second = await sys.api.post("/api/auth/refresh", { refreshToken: first.refreshToken });
    expect(second.status).toBe(200);
    expect(second.body.refreshToken).not.toBe(first.refreshToken);
    expect((await sys.api.get("/api/me", second.body.accessToken)).status).toBe(200);
    // The first refresh token again: a copy is in someone else's hands.
    const reused = await sys.api.post("/api/auth/refresh", { refreshToken: first.refreshToken });
    expect(reused.body.error.code).toBe("REFRESH_TOKEN_REUSED");
    expect((await sys.api.post("/api/auth/refresh", { refreshToken: second.body.refreshToken })).body.error.code).toBe("INVALID_REFRESH_TOKEN");
    expect((await sys.api.get("/api/me", second.body.accessToken)).body.error.code).toBe("TOKEN_REVOKED");
    expect((await sys.api.post("/api/auth/refresh", { refreshToken: "nonsense" })).status).toBe(401);
  });

  it("list per device, and revoke one, or all but this one on a password change", async () => {
    const u = await sys.user();
    const phone = (await login(u.username, "password-123", { device: "phone" })).body;
    const laptop = (await login(u.username, "password-123", { device: "laptop" })).body;
    const sessions = (await sys.api.get("/api/auth/sessions", phone.accessToken)).body;
    expect(sessions.map((s: { device: string }) => s.device)).toEqual(expect.arrayContaining(["phone", "laptop"]));
    expect(sessions.find((s: { device: string }) => s.device === "phone").current).toBe(true);
    const laptopSid = sessions.find((s: { device: string }) => s.device === "laptop").sid;
    expect((await sys.api.request("DELETE", `/api/auth/sessions/${laptopSid}`, { token: phone.accessToken })).body).toEqual({ sid: laptopSid, revoked: true });
    expect((await sys.api.get("/api/me", laptop.accessToken)).body.error.code).toBe("TOKEN_REVOKED");
    const other = await sys.user();
    expect((await sys.api.request("DELETE", `/api/auth/sessions/${laptopSid}`, { token: other.token })).status).toBe(404);

    const tablet = (await login(u.username, "password-123", { device: "tablet" })).body;
    expect((await sys.api.post("/api/auth/password", { currentPassword: "wrong", newPassword: "new-password-1" }, phone.accessToken)).body.error.code).toBe("INVALID_CREDENTIALS");
    const changed = await sys.api.post("/api/auth/password", { currentPassword: "password-123", newPassword: "new-password-1" }, phone.accessToken);
    expect(changed.body).toEqual({ changed: true, sessionsEnded: 2 });
    expect((await sys.api.get("/api/me", tablet.accessToken)).body.error.code).toBe("TOKEN_REVOKED");
    expect((await sys.api.get("/api/me", phone.accessToken)).status).toBe(200);
    expect((await login(u.username, "password-123")).status).toBe(401);
    expect((await login(u.username, "new-password-1")).status).toBe(200);
    expect((await sys.api.post("/api/auth/logout", {}, phone.accessToken)).body).toEqual({ loggedOut: true });
    expect((await sys.api.get("/api/me", phone.accessToken)).body.error.code).toBe("TOKEN_REVOKED");
  });

  it("carry the tenant a user signs in to, only one they belong to", async () => {
    const owner = await sys.user();
    const tenant = (await sys.api.post("/api/commerce/tenants", { name: "Shop", ownerId: owner.id }, sys.admin.token)).body;
    const inTenant = await login(owner.username, "password-123", { tenantId: tenant.id });
    expect(inTenant.body.user.tenant).toEqual({ id: tenant.id, role: "OWNER" });
    const stranger = await sys.user();
    expect((await login(stranger.username, "password-123", { tenantId: tenant.id })).status).toBe(404);
  });
});
