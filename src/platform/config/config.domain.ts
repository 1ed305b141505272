/**
 * The config centre's pure rules: which version a node gets (released, or gray for tagged nodes),
 * what a change changed, and what names are acceptable. No I/O.
 */

export interface EntryState {
  /** The version every node gets. */
  releasedVersion: number | null;
  /** A version published ahead to nodes carrying one of `grayTags`. */
  grayVersion: number | null;
  grayTags: string[];
}

/** The version a node with `nodeTags` should run: the gray one if it carries a gray tag, else the released one. */
export function versionFor(entry: EntryState, nodeTags: readonly string[]): { version: number; gray: boolean } | null {
  if (entry.grayVersion !== null && entry.grayTags.some((t) => nodeTags.includes(t))) return { version: entry.grayVersion, gray: true };
  return entry.releasedVersion === null ? null : { version: entry.releasedVersion, gray: false };
}

export type Publication = { kind: "release" } | { kind: "gray"; tags: string[] };

/** The entry after publishing `version`: a release replaces what everyone gets and ends any gray; a gray one adds a preview. */
export function publish(entry: EntryState, version: number, how: Publication): EntryState {
  if (how.kind === "release") return { releasedVersion: version, grayVersion: null, grayTags: [] };
  return { ...entry, grayVersion: version, grayTags: [...new Set(how.tags)].sort() };
}

/** Promoting the gray version makes it the released one for everyone. */
export function promote(entry: EntryState): EntryState | null {
  if (entry.grayVersion === null) return null;
  return { releasedVersion: entry.grayVersion, grayVersion: null, grayTags: [] };
}

export interface Change {
  /** JSON path of what changed, `$` for the root. */
  path: string;
  from?: unknown;
  to?: unknown;
}

/** The leaf-level differences between two JSON values, in a stable order. */
export function diff(before: unknown, after: unknown, path = "$"): Change[] {
  if (Object.is(before, after)) return [];
  const bothObjects = isObject(before) && isObject(after);
  const bothArrays = Array.isArray(before) && Array.isArray(after);
  if (bothArrays) {
    const changes: Change[] = [];
    for (let i = 0; i < Math.max(before.length, after.length); i++) {
      if (i >= before.length) changes.push({ path: `${path}[${i}]`, to: after[i] });
      else if (i >= after.length) changes.push({ path: `${path}[${i}]`, from: before[i] });
      else changes.push(...diff(before[i], after[i], `${path}[${i}]`));
    }
    return changes;
  }
  if (bothObjects) {
    const changes: Change[] = [];
    for (const key of [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()) {
      const at = `${path}.${key}`;
      if (!(key in after)) changes.push({ path: at, from: before[key] });
      else if (!(key in before)) changes.push({ path: at, to: after[key] });
      else changes.push(...diff(before[key], after[key], at));
    }
    return changes;
  }
  if (before === undefined) return [{ path, to: after }];
  if (after === undefined) return [{ path, from: before }];
  return [{ path, from: before, to: after }];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Namespaces follow BAZAAR_NAMESPACE; groups and keys are short lower-case names. */
export const NAMESPACE_PATTERN = /^[a-z0-9_]{1,32}$/;
export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** Node tags come from BAZAAR_NODE_TAGS: comma-separated names. */
export function parseTags(raw: string | undefined): string[] {
  return [...new Set((raw ?? "").split(",").map((t) => t.trim()).filter(Boolean))].sort();
}
