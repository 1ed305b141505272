import type { ServiceBroker, ServiceSchema } from "moleculer";
import { z } from "zod";
import { iso } from "../clock/clock";
import { retryOnUniqueViolation } from "../db/db";
import { routesWithSchemas } from "../gateway/routes";
import { type AuthUser, action, requireRole } from "../runtime/action";
import { badRequest, conflict, notFound } from "../runtime/errors";
import type { Platform } from "../runtime/platform";
import { CONFIG_CHANGED, ConfigContract as C, type ConfigChanged, configRoutes, type Resolved } from "./config.contract";
import { diff, type EntryState, type Publication, promote, publish, versionFor } from "./config.domain";
import { type ConfigDb, configMigrations, type ConfigTables, type EntryRow, type VersionRow } from "./config.store";

interface Address {
  namespace: string;
  group: string;
  key: string;
}

/**
 * The config centre (the Nacos config / Apollo role): versioned JSON values per namespace, group and
 * key, checked against the schema the owning service registered, pushed to every node on change
 * (a broadcast; nodes then ask for their own version, gray or released), with history and rollback.
 */
export function configService(platform: Platform): ServiceSchema {
  const host = platform.host<ConfigTables>("config", configMigrations);
  const { clock } = platform;
  const validators = new Map<string, { text: string; schema: z.ZodType }>();
  let broker: ServiceBroker;

  const where = <Q extends { where: (...args: any[]) => Q }>(q: Q, a: Address): Q =>
    q.where("namespace", "=", a.namespace).where("grp", "=", a.group).where("key", "=", a.key);

  async function validate(a: Address, value: unknown): Promise<void> {
    const row = await host.db.selectFrom("schemas").select(["schema"]).where("grp", "=", a.group).where("key", "=", a.key).executeTakeFirst();
    if (!row) throw notFound("CONFIG_KEY_UNKNOWN", `no service has registered ${a.group}/${a.key}`);
    const id = `${a.group}/${a.key}`;
    let cached = validators.get(id);
    if (cached?.text !== row.schema) {
      cached = { text: row.schema, schema: z.fromJSONSchema(JSON.parse(row.schema)) };
      validators.set(id, cached);
    }
    const parsed = cached.schema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const path = issue.path.map(String).join(".");
      throw badRequest("CONFIG_VALUE_INVALID", `value${path ? `.${path}` : ""}: ${issue.message}`, path ? `value.${path}` : "value");
    }
  }

  const stateOf = (e: EntryRow | undefined): EntryState =>
    e ? { releasedVersion: e.released_version, grayVersion: e.gray_version, grayTags: JSON.parse(e.gray_tags) } : { releasedVersion: null, grayVersion: null, grayTags: [] };

  /** Writes a new version and publishes it; answers its number. Versions count from 1 per key. */
  function write(a: Address, value: unknown, author: AuthUser, how: Publication, action: string, rollbackOf: number | null): Promise<number> {
    return retryOnUniqueViolation(() =>
      host.tx(async (trx) => {
        const now = clock.now();
        const entry = await host.store.forUpdate(where(trx.selectFrom("entries").selectAll(), a)).executeTakeFirst();
        const last = await where(trx.selectFrom("versions").select((eb) => eb.fn.max("version").as("v")), a).executeTakeFirst();
        const version = Number(last?.v ?? 0) + 1;
        await trx
          .insertInto("versions")
          .values({
            namespace: a.namespace,
            grp: a.group,
            key: a.key,
            version,
            value: JSON.stringify(value),
            author_id: author.id,
            author: author.username,
            action,
            gray_tags: how.kind === "gray" ? JSON.stringify(how.tags) : null,
            rollback_of: rollbackOf,
            created_at: now,
          })
          .execute();
        await saveEntry(trx, a, entry, publish(stateOf(entry), version, how), now);
        return version;
      }),
    );
  }

  async function saveEntry(trx: ConfigDb, a: Address, existing: EntryRow | undefined, next: EntryState, now: number) {
    const row = { released_version: next.releasedVersion, gray_version: next.grayVersion, gray_tags: JSON.stringify(next.grayTags), updated_at: now };
    if (existing) await where(trx.updateTable("entries").set(row), a).execute();
    else await trx.insertInto("entries").values({ namespace: a.namespace, grp: a.group, key: a.key, ...row }).execute();
  }

  function announce(a: Address) {
    const changed: ConfigChanged = { namespace: a.namespace, group: a.group, key: a.key };
    broker.broadcast(CONFIG_CHANGED, changed);
  }

  const versionRow = (a: Address, version: number) => where(host.db.selectFrom("versions").selectAll(), a).where("version", "=", version).executeTakeFirst();

  const describe = (v: VersionRow) => ({
    version: v.version,
    value: JSON.parse(v.value) as unknown,
    action: v.action,
    grayTags: v.gray_tags === null ? null : (JSON.parse(v.gray_tags) as string[]),
    rollbackOf: v.rollback_of,
    author: { id: Number(v.author_id), username: v.author },
    at: iso(v.created_at),
  });

  async function view(a: Address) {
    const entry = await where(host.db.selectFrom("entries").selectAll(), a).executeTakeFirst();
    if (!entry) throw notFound("CONFIG_NOT_FOUND", `no value for ${a.namespace}/${a.group}/${a.key}`);
    const state = stateOf(entry);
    const released = state.releasedVersion === null ? undefined : await versionRow(a, state.releasedVersion);
    const gray = state.grayVersion === null ? undefined : await versionRow(a, state.grayVersion);
    return {
      ...a,
      released: released ? describe(released) : null,
      gray: gray ? { ...describe(gray), tags: state.grayTags } : null,
      updatedAt: iso(entry.updated_at),
    };
  }

  return {
    name: "config",
    settings: { routes: routesWithSchemas(configRoutes, C) },
    actions: {
      get: action(C.get, async (ctx) => {
        requireRole(ctx, "operator");
        return view(ctx.params);
      }),

      put: action(C.put, async (ctx) => {
        const author = requireRole(ctx, "operator");
        const { namespace, group, key, value, grayTags } = ctx.params;
        const a = { namespace, group, key };
        await validate(a, value);
        await write(a, value, author, grayTags ? { kind: "gray", tags: grayTags } : { kind: "release" }, grayTags ? "GRAY" : "RELEASE", null);
        announce(a);
        return view(a);
      }),

      history: action(C.history, async (ctx) => {
        requireRole(ctx, "operator");
        const { limit, ...a } = ctx.params;
        // One row more than asked: the oldest shown still gets its diff against the version before it.
        const rows = await where(host.db.selectFrom("versions").selectAll(), a).orderBy("version", "desc").limit(limit + 1).execute();
        if (rows.length === 0) throw notFound("CONFIG_NOT_FOUND", `no value for ${a.namespace}/${a.group}/${a.key}`);
        return {
          ...a,
          items: rows.slice(0, limit).map((v, i) => ({
            ...describe(v),
            changes: diff(rows[i + 1] ? JSON.parse(rows[i + 1].value) : undefined, JSON.parse(v.value)),
          })),
        };
      }),

      rollback: action(C.rollback, async (ctx) => {
        const author = requireRole(ctx, "operator");
        const { version, ...a } = ctx.params;
        const target = await versionRow(a, version);
        if (!target) throw notFound("CONFIG_VERSION_NOT_FOUND", `${a.group}/${a.key} has no version ${version}`);
        const value = JSON.parse(target.value) as unknown;
        // The schema may have moved on since: an old value that no longer fits is refused, not pushed.
        await validate(a, value);
        await write(a, value, author, { kind: "release" }, "ROLLBACK", version);
        announce(a);
        return view(a);
      }),

      promote: action(C.promote, async (ctx) => {
        const author = requireRole(ctx, "operator");
        const a = ctx.params;
        const entry = await where(host.db.selectFrom("entries").selectAll(), a).executeTakeFirst();
        const state = stateOf(entry);
        if (!promote(state)) throw conflict("CONFIG_NO_GRAY", `${a.group}/${a.key} has no gray version to promote`);
        const gray = await versionRow(a, state.grayVersion!);
        await write(a, JSON.parse(gray!.value), author, { kind: "release" }, "PROMOTE", null);
        announce(a);
        return view(a);
      }),

      resolve: action(C.resolve, async (ctx): Promise<Resolved | null> => {
        const { tags, ...a } = ctx.params;
        const entry = await where(host.db.selectFrom("entries").selectAll(), a).executeTakeFirst();
        const chosen = versionFor(stateOf(entry), tags);
        if (!chosen) return null;
        const row = await versionRow(a, chosen.version);
        return { version: chosen.version, value: JSON.parse(row!.value), gray: chosen.gray };
      }),

      registerSchema: action(C.registerSchema, async (ctx) => {
        const { group, key, owner, schema } = ctx.params;
        const text = JSON.stringify(schema);
        const now = clock.now();
        await retryOnUniqueViolation(() =>
          host.tx(async (trx) => {
            const found = await trx.selectFrom("schemas").select("schema").where("grp", "=", group).where("key", "=", key).executeTakeFirst();
            if (!found) await trx.insertInto("schemas").values({ grp: group, key, owner, schema: text, updated_at: now }).execute();
            else if (found.schema !== text) await trx.updateTable("schemas").set({ owner, schema: text, updated_at: now }).where("grp", "=", group).where("key", "=", key).execute();
          }),
        );
        return { group, key };
      }),
    },
    async started() {
      broker = this.broker;
      await host.start();
    },
    async stopped() {
      await host.stop();
    },
  };
}
