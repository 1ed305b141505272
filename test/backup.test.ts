import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { backup, restore } from "../src/platform/db/backup";
import { cleanEngines, startTestSystem, type TestSystem } from "./support/harness";

/** A loaded system backed up, wiped and restored, on whichever engine this run uses. */
const backupDir = mkdtempSync(path.join(tmpdir(), "bazaar-backup-"));
let sys: TestSystem | undefined;

afterAll(async () => {
  await sys?.stop();
  rmSync(backupDir, { recursive: true, force: true });
});

describe("backup and restore", () => {
  it("finds every row again after a wipe", async () => {
    sys = await startTestSystem({ services: ["gateway", "identity", "tenant", "permission", "inventory"] });
    const config = sys.config;
    const owner = await sys.user("backup-owner");
    const tid = (await sys.api.post("/api/commerce/tenants", { name: "Kept", ownerId: owner.id }, sys.admin.token)).body.id;
    await sys.api.post(`/api/commerce/tenants/${tid}/products`, { sku: "kept", name: "Kept", price: 42 }, owner.token);
    await sys.api.put(`/api/commerce/tenants/${tid}/stock/kept`, { quantity: 7 }, owner.token);
    // The embedded store is backed up stopped; a server engine online.
    if (!config.dbUrl) await expect(backup(config, path.join(backupDir, "online"), Date.now())).rejects.toThrow(/held by a running node/);
    await sys.node.stop();

    const main = path.join(backupDir, "main");
    const manifest = await backup(config, main, Date.now());
    // A database per service (and the embedded log), and the token secret.
    expect(manifest.files.filter((f) => f.includes("_inventory.")).length).toBe(1);
    expect(manifest.files).toContain("jwt.secret");
    await expect(backup(config, main, Date.now())).rejects.toThrow(/not empty/);
    await expect(restore(config, main)).rejects.toThrow(/already holds|exists/);
    await cleanEngines(config);

    await restore(config, main);
    sys = await startTestSystem({ services: ["gateway", "identity", "tenant", "permission", "inventory"], config: { namespace: config.namespace, dataDir: config.dataDir } });
    const again = await sys.api.login("backup-owner", "password-123");
    const product = (await sys.api.get(`/api/commerce/tenants/${tid}/products/kept`, again.token)).body;
    expect(product).toMatchObject({ sku: "kept", price: 42, stock: { onHand: 7 } });
    expect((await sys.api.get(`/api/commerce/tenants/${tid}/stock/kept/movements`, again.token)).body.items).toHaveLength(1);

    // The same round trip from the command line, the nodes stopped, replacing what is there.
    await sys.node.stop();
    const cliDir = path.join(backupDir, "cli");
    const cli = (...args: string[]) => promisify(execFile)(process.execPath, [path.resolve("bin/bazaar.js"), ...args], { env: envOf(config) });
    expect(JSON.parse((await cli("backup", "--to", cliDir)).stdout).files).toEqual(manifest.files);
    expect(JSON.parse((await cli("restore", "--from", cliDir, "--force")).stdout).namespace).toBe(config.namespace);
    sys = await startTestSystem({ services: ["gateway", "identity", "tenant", "permission", "inventory"], config: { namespace: config.namespace, dataDir: config.dataDir } });
    const third = await sys.api.login("backup-owner", "password-123");
    expect((await sys.api.get(`/api/commerce/tenants/${tid}/products/kept`, third.token)).body.price).toBe(42);
  }, 120_000);
});

function envOf(config: { namespace: string; dataDir: string; dbUrl?: string }) {
  return { ...process.env, BAZAAR_NAMESPACE: config.namespace, BAZAAR_DATA_DIR: config.dataDir, ...(config.dbUrl ? { BAZAAR_DB_URL: config.dbUrl } : {}) };
}
