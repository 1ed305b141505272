import { execFile } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import SqliteDatabase from "better-sqlite3";
import { createConnection } from "mysql2/promise";
import pg from "pg";
import type { BazaarConfig } from "../runtime/config";
import { claimFile } from "./db";

const run = promisify(execFile);

/** What a backup holds: every service database of one namespace, and when it was taken. */
export interface BackupManifest {
  format: 1;
  namespace: string;
  engine: "sqlite" | "mysql" | "postgres";
  takenAt: string;
  /** Files in the backup directory, one per database (plus the token secret of an embedded store). */
  files: string[];
}

const MANIFEST = "manifest.json";
/** The token secret a node generates into the data dir when none is configured. */
const SECRET = "jwt.secret";

function engineOf(config: BazaarConfig): BackupManifest["engine"] {
  if (!config.dbUrl) return "sqlite";
  return config.dbUrl.startsWith("postgres") ? "postgres" : "mysql";
}

/** Connection flags for the server's command-line tools. */
function server(config: BazaarConfig, defaultPort: number, defaultUser: string) {
  const url = new URL(config.dbUrl!);
  return { host: url.hostname, port: String(url.port || defaultPort), user: decodeURIComponent(url.username) || defaultUser, password: decodeURIComponent(url.password) };
}

async function databases(config: BazaarConfig): Promise<string[]> {
  const prefix = `bazaar_${config.namespace}_`;
  if (engineOf(config) === "mysql") {
    const s = server(config, 3306, "root");
    const conn = await createConnection({ host: s.host, port: Number(s.port), user: s.user, password: s.password });
    try {
      const [rows] = await conn.query("SHOW DATABASES LIKE ?", [`${prefix.replace(/_/g, "\\_")}%`]);
      return (rows as Record<string, string>[]).map((r) => Object.values(r)[0]).sort();
    } finally {
      await conn.end();
    }
  }
  const s = server(config, 5432, "postgres");
  const client = new pg.Client({ host: s.host, port: Number(s.port), user: s.user, password: s.password, database: "postgres" });
  await client.connect();
  try {
    const found = await client.query("SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY datname", [`${prefix.replace(/_/g, "\\_")}%`]);
    return found.rows.map((r: { datname: string }) => r.datname);
  } finally {
    await client.end();
  }
}

/**
 * Backs up every service database of the configured namespace into `dir`: the embedded SQLite files
 * with SQLite's backup API (the nodes stopped: a running node holds its files' claims), a
 * MySQL/MariaDB database with `mysqldump --single-transaction` and a PostgreSQL one with `pg_dump`
 * (online, each database consistent in itself; for one cut across services drain or stop the nodes
 * first — the outbox and inbox make a later restore safe either way: nothing is applied twice).
 */
export async function backup(config: BazaarConfig, dir: string, now: number): Promise<BackupManifest> {
  mkdirSync(dir, { recursive: true });
  if (readdirSync(dir).length > 0) throw new Error(`${dir} is not empty`);
  const engine = engineOf(config);
  const files: string[] = [];
  if (engine === "sqlite") {
    const prefix = `bazaar_${config.namespace}_`;
    const names = existsSync(config.dataDir) ? readdirSync(config.dataDir).filter((f) => f.startsWith(prefix) && f.endsWith(".sqlite")).sort() : [];
    // The embedded store is backed up stopped: every service file's claim (see db.ts) is taken first, so
    // none is held by a running node and none starts meanwhile. The log has no owner; nodes share it.
    const claims: SqliteDatabase.Database[] = [];
    try {
      for (const name of names) {
        if (!existsSync(path.join(config.dataDir, `${name}.owner`))) continue;
        try {
          claims.push(claimFile(path.join(config.dataDir, name)));
        } catch (err) {
          if ((err as Error).message.includes("locked")) throw new Error(`${name} is held by a running node: stop (or drain and stop) it, then back up`);
          throw err;
        }
      }
      for (const name of names) {
        const db = new SqliteDatabase(path.join(config.dataDir, name), { readonly: true, fileMustExist: true });
        try {
          await db.backup(path.join(dir, name));
        } finally {
          db.close();
        }
        if (!existsSync(path.join(dir, name))) throw new Error(`${name} was not copied`);
        files.push(name);
      }
    } finally {
      for (const claim of claims) claim.close();
    }
  } else if (engine === "mysql") {
    const s = server(config, 3306, "root");
    for (const db of await databases(config)) {
      const file = `${db}.sql`;
      const { stdout } = await run(
        "mysqldump",
        ["--single-transaction", "--skip-lock-tables", "--routines", "--host", s.host, "--port", s.port, "--user", s.user, "--databases", db],
        { env: { ...process.env, MYSQL_PWD: s.password }, maxBuffer: 1 << 30 },
      );
      writeFileSync(path.join(dir, file), stdout);
      files.push(file);
    }
  } else {
    const s = server(config, 5432, "postgres");
    for (const db of await databases(config)) {
      const file = `${db}.dump`;
      await run("pg_dump", ["--format=custom", "--host", s.host, "--port", s.port, "--username", s.user, "--file", path.join(dir, file), db], { env: { ...process.env, PGPASSWORD: s.password } });
      files.push(file);
    }
  }
  // Tokens signed before the backup stay valid after a restore when the generated secret comes along.
  if (existsSync(path.join(config.dataDir, SECRET))) {
    copyFileSync(path.join(config.dataDir, SECRET), path.join(dir, SECRET));
    files.push(SECRET);
  }
  const manifest: BackupManifest = { format: 1, namespace: config.namespace, engine, takenAt: new Date(now).toISOString(), files };
  writeFileSync(path.join(dir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/**
 * Restores a backup into the configured namespace, which must hold none of the backup's databases
 * (or `force`: they are replaced). Start the nodes afterwards; they take it from there.
 */
export async function restore(config: BazaarConfig, dir: string, force = false): Promise<BackupManifest> {
  const manifest = JSON.parse(readFileSync(path.join(dir, MANIFEST), "utf8")) as BackupManifest;
  if (manifest.format !== 1) throw new Error(`unknown backup format ${manifest.format}`);
  if (manifest.engine !== engineOf(config)) throw new Error(`the backup is of a ${manifest.engine} store; this configuration uses ${engineOf(config)}`);
  if (manifest.namespace !== config.namespace) throw new Error(`the backup is of namespace ${manifest.namespace}; this configuration is ${config.namespace}`);
  const databaseFiles = manifest.files.filter((f) => f !== SECRET);
  mkdirSync(config.dataDir, { recursive: true });
  if (manifest.files.includes(SECRET)) copyFileSync(path.join(dir, SECRET), path.join(config.dataDir, SECRET));
  if (manifest.engine === "sqlite") {
    const present = databaseFiles.filter((f) => existsSync(path.join(config.dataDir, f)));
    if (present.length > 0 && !force) throw new Error(`the data directory already holds ${present.join(", ")} (use --force to replace)`);
    for (const f of databaseFiles) {
      for (const side of ["-wal", "-shm"]) rmSync(path.join(config.dataDir, f + side), { force: true });
      copyFileSync(path.join(dir, f), path.join(config.dataDir, f));
    }
    return manifest;
  }
  const existing = new Set(await databases(config));
  if (manifest.engine === "mysql") {
    const s = server(config, 3306, "root");
    for (const f of databaseFiles) {
      const db = f.replace(/\.sql$/, "");
      if (existing.has(db) && !force) throw new Error(`database ${db} exists (use --force to replace)`);
      const args = ["--host", s.host, "--port", s.port, "--user", s.user];
      const env = { ...process.env, MYSQL_PWD: s.password };
      if (existing.has(db)) await run("mysql", [...args, "-e", `DROP DATABASE \`${db}\``], { env });
      await run("sh", ["-c", 'exec mysql "$@" < "$DUMP"', "mysql", ...args], { env: { ...env, DUMP: path.join(dir, f) } });
    }
    return manifest;
  }
  const s = server(config, 5432, "postgres");
  const env = { ...process.env, PGPASSWORD: s.password };
  const args = ["--host", s.host, "--port", s.port, "--username", s.user];
  for (const f of databaseFiles) {
    const db = f.replace(/\.dump$/, "");
    if (existing.has(db) && !force) throw new Error(`database ${db} exists (use --force to replace)`);
    if (existing.has(db)) await run("dropdb", [...args, db], { env });
    await run("createdb", [...args, db], { env });
    await run("pg_restore", [...args, "--dbname", db, "--no-owner", path.join(dir, f)], { env });
  }
  return manifest;
}
