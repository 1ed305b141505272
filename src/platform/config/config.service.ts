import type { ServiceBroker, ServiceSchema } from "moleculer";
import { z } from "zod";
import { iso } from "../clock/clock";
import { routesWithSchemas } from "../gateway/routes";
import { type AuthUser, action, requireRole } from "../runtime/action";
import { badRequest, conflict, notFound } from "../runtime/errors";
import type { Platform } from "../runtime/platform";
import { CONFIG_CHANGED, ConfigContract as C, type ConfigChanged, configRoutes, type Resolved } from "./config.contract";
import { diff, type Publication, promote, publish, versionFor } from "./config.domain";
import { EtcdConfigStore } from "./config.etcd.store";
import { type Address, type ConfigStore, configMigrations, type ConfigTables, NO_ENTRY, SqlConfigStore, type StoredVersion } from "./config.store";

/**
 * The config centre (the Nacos config / Apollo role): versioned JSON values per namespace, group and
 * key, checked against the schema the owning service registered, pushed to every node on change
 * (a broadcast; nodes then ask for their own version, gray or released), with history and rollback.
 */
export function configService(platform: Platform): ServiceSchema {
  const { clock, config } = platform;
  const store: ConfigStore =
    config.configStore === "etcd" ? new EtcdConfigStore(config.etcdUrl!, config.namespace) : new SqlConfigStore(platform.host<ConfigTables>("config", configMigrations));
  const validators = new Map<string, { text: string; schema: z.ZodType }>();
  let broker: ServiceBroker;

  async function validate(a: Address, value: unknown): Promise<void> {
    const text = await store.schema(a.group, a.key);
    if (text === undefined) throw notFound("CONFIG_KEY_UNKNOWN", `no service has registered ${a.group}/${a.key}`);
    const id = `${a.group}/${a.key}`;
    let cached = validators.get(id);
    if (cached?.text !== text) {
      cached = { text, schema: z.fromJSONSchema(JSON.parse(text)) };
      validators.set(id, cached);
    }
    const parsed = cached.schema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const path = issue.path.map(String).join(".");
      throw badRequest("CONFIG_VALUE_INVALID", `value${path ? `.${path}` : ""}: ${issue.message}`, path ? `value.${path}` : "value");
    }
  }

  /** Writes a new version and publishes it; answers its number. Versions count from 1 per key. */
  function write(a: Address, value: unknown, author: AuthUser, how: Publication, action: string, rollbackOf: number | null): Promise<number> {
    const draft = {
      value: JSON.stringify(value),
      authorId: author.id,
      author: author.username,
      action,
      grayTags: how.kind === "gray" ? how.tags : null,
      rollbackOf,
      createdAt: clock.now(),
    };
    return store.append(a, draft, (state, version) => publish(state, version, how));
  }

  function announce(a: Address) {
    const changed: ConfigChanged = { namespace: a.namespace, group: a.group, key: a.key };
    broker.broadcast(CONFIG_CHANGED, changed);
  }

  const describe = (v: StoredVersion) => ({
    version: v.version,
    value: JSON.parse(v.value) as unknown,
    action: v.action,
    grayTags: v.grayTags,
    rollbackOf: v.rollbackOf,
    author: { id: v.authorId, username: v.author },
    at: iso(v.createdAt),
  });

  async function view(a: Address) {
    const entry = await store.entry(a);
    if (!entry) throw notFound("CONFIG_NOT_FOUND", `no value for ${a.namespace}/${a.group}/${a.key}`);
    const { state } = entry;
    const released = state.releasedVersion === null ? undefined : await store.version(a, state.releasedVersion);
    const gray = state.grayVersion === null ? undefined : await store.version(a, state.grayVersion);
    return {
      ...a,
      released: released ? describe(released) : null,
      gray: gray ? { ...describe(gray), tags: state.grayTags } : null,
      updatedAt: iso(entry.updatedAt),
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
        const rows = await store.history(a, limit + 1);
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
        const target = await store.version(a, version);
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
        const state = (await store.entry(a))?.state ?? NO_ENTRY;
        if (!promote(state)) throw conflict("CONFIG_NO_GRAY", `${a.group}/${a.key} has no gray version to promote`);
        const gray = await store.version(a, state.grayVersion!);
        await write(a, JSON.parse(gray!.value), author, { kind: "release" }, "PROMOTE", null);
        announce(a);
        return view(a);
      }),

      resolve: action(C.resolve, async (ctx): Promise<Resolved | null> => {
        const { tags, ...a } = ctx.params;
        const chosen = versionFor((await store.entry(a))?.state ?? NO_ENTRY, tags);
        if (!chosen) return null;
        const row = await store.version(a, chosen.version);
        return { version: chosen.version, value: JSON.parse(row!.value), gray: chosen.gray };
      }),

      registerSchema: action(C.registerSchema, async (ctx) => {
        const { group, key, owner, schema } = ctx.params;
        await store.registerSchema(group, key, owner, JSON.stringify(schema), clock.now());
        return { group, key };
      }),
    },
    async started() {
      broker = this.broker;
      await store.start();
    },
    async stopped() {
      await store.stop();
    },
  };
}
