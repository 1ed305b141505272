import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

/**
 * A secret: the configured value, or `file:<path>` to read it from a mounted file; when nothing is
 * configured, one generated once into the data dir (mode 0600), so processes sharing it agree. Never log it.
 */
export function loadSecret(configured: string | undefined, dataDir: string, name: string, generate: () => string): string {
  if (configured?.startsWith("file:")) return readFileSync(configured.slice("file:".length), "utf8").trim();
  if (configured) return configured;
  const file = path.join(dataDir, name);
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    try {
      writeFileSync(file, generate(), { mode: 0o600, flag: "wx" });
    } catch (err) {
      // Another process on this data dir wrote it first; use theirs.
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
  return readFileSync(file, "utf8").trim();
}
