import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { ServiceBroker, ServiceSchema } from "moleculer";
import type { Logger } from "pino";
import { z } from "zod";
import { CONFIG_CHANGED, type ConfigChanged, type Resolved } from "./config.contract";

/** How often a node asks again for every value it uses, whatever the broadcasts said. */
const RESYNC_MS = 60_000;

/** A value a service reads from the config centre; `value` is always current and valid. */
export interface ConfigHandle<T> {
  readonly value: T;
  /** The config centre's version in use; null while on the built-in default. */
  readonly version: number | null;
  /** Called with each new value once it has been applied (not for the first one). */
  onChange(listener: (value: T) => void): void;
}

class Watched<T> implements ConfigHandle<T> {
  registered = false;
  private readonly listeners: ((value: T) => void)[] = [];

  constructor(
    readonly owner: string,
    readonly group: string,
    readonly key: string,
    readonly schema: z.ZodType<T>,
    readonly fallback: T,
    public value: T,
    public version: number | null,
  ) {}

  onChange(listener: (value: T) => void): void {
    this.listeners.push(listener);
  }

  set(value: T, version: number | null, logger: Logger): void {
    this.value = value;
    this.version = version;
    for (const listener of this.listeners) {
      try {
        listener(value);
      } catch (err) {
        logger.error({ err, group: this.group, key: this.key }, "applying a config change failed");
      }
    }
  }
}

/**
 * The node's side of the config centre: services `watch` a group/key with their zod schema and a
 * default; the agent registers the schema with the centre, fetches the value this node should run
 * (gray or released), applies every pushed change without a restart, and keeps the last value it had
 * on disk, so a node starting while the centre is down runs on what it ran before.
 */
export class ConfigAgent {
  private readonly handles = new Map<string, Watched<any>>();
  private broker?: ServiceBroker;
  private retry?: NodeJS.Timeout;
  private resync?: NodeJS.Timeout;
  private failures = 0;
  /** Whether the centre is known to be out of reach: said once per outage, not once per key and retry. */
  private unreachable = false;

  constructor(
    private readonly dataDir: string,
    readonly namespace: string,
    readonly tags: string[],
    private readonly logger: Logger,
  ) {}

  watch<T>(owner: string, group: string, key: string, schema: z.ZodType<T>, fallback: T): ConfigHandle<T> {
    const id = `${group}/${key}`;
    const existing = this.handles.get(id);
    if (existing) return existing as Watched<T>;
    const cached = this.readCache(group, key, schema);
    const handle = new Watched(owner, group, key, schema, fallback, cached?.value ?? fallback, cached?.version ?? null);
    this.handles.set(id, handle);
    if (this.broker) void this.sync(handle);
    return handle;
  }

  /** Starts talking to the centre (once it is up) through `broker`. */
  attach(broker: ServiceBroker): void {
    this.broker = broker;
    void broker
      .waitForServices(["config"], 5000)
      .catch(() => undefined)
      .then(() => this.syncAll());
    // A change broadcast this node missed (a transporter hiccup) is picked up at the next look.
    this.resync = setInterval(() => void this.syncAll(), RESYNC_MS);
    this.resync.unref();
  }

  detach(): void {
    clearTimeout(this.retry);
    clearInterval(this.resync);
    this.broker = undefined;
  }

  /** A push from the centre: fetch what changed, if this node uses it. */
  async changed(event: ConfigChanged): Promise<void> {
    if (event.namespace !== this.namespace) return;
    const handle = this.handles.get(`${event.group}/${event.key}`);
    if (handle && !(await this.sync(handle))) this.scheduleRetry();
  }

  private async syncAll(): Promise<void> {
    clearTimeout(this.retry);
    let ok = true;
    for (const handle of this.handles.values()) if (!(await this.sync(handle))) ok = false;
    if (ok) this.failures = 0;
    else this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (!this.broker) return;
    clearTimeout(this.retry);
    // 1 s doubling to a minute while the centre is unreachable.
    this.retry = setTimeout(() => void this.syncAll(), Math.min(60_000, 1000 * 2 ** this.failures++));
    this.retry.unref();
  }

  private async sync<T>(handle: Watched<T>): Promise<boolean> {
    const broker = this.broker;
    if (!broker) return false;
    const address = { namespace: this.namespace, group: handle.group, key: handle.key };
    // No node runs the centre: not worth a call (and Moleculer's own warning) per key and retry.
    if (!broker.registry.actions.isAvailable("config.resolve")) return this.outOfReach("no node runs the config service");
    try {
      if (!handle.registered) {
        await broker.call("config.registerSchema", {
          group: handle.group,
          key: handle.key,
          owner: handle.owner,
          schema: z.toJSONSchema(handle.schema, { io: "input", unrepresentable: "any" }),
        });
        handle.registered = true;
      }
      const resolved = await broker.call<Resolved | null, object>("config.resolve", { ...address, tags: this.tags });
      this.apply(handle, resolved);
      if (this.unreachable) this.logger.info({ namespace: this.namespace }, "config centre reachable again");
      this.unreachable = false;
      return true;
    } catch (err) {
      const type = (err as { type?: string }).type;
      if (type === "SERVICE_NOT_FOUND" || type === "SERVICE_NOT_AVAILABLE" || type === "REQUEST_TIMEOUT") return this.outOfReach((err as Error).message);
      this.logger.warn({ err: (err as Error).message, ...address }, "config centre refused this node's request; running on the last known value");
      return false;
    }
  }

  private outOfReach(reason: string): false {
    if (!this.unreachable) this.logger.warn({ err: reason, namespace: this.namespace }, "config centre not reachable; running on the last known values until it is");
    this.unreachable = true;
    return false;
  }

  private apply<T>(handle: Watched<T>, resolved: Resolved | null): void {
    if (!resolved) {
      if (handle.version !== null) handle.set(handle.fallback, null, this.logger);
      return;
    }
    if (resolved.version === handle.version) return;
    const parsed = handle.schema.safeParse(resolved.value);
    if (!parsed.success) {
      // The centre checked it against the registered schema; a node on another schema version keeps what it has.
      this.logger.error({ group: handle.group, key: handle.key, version: resolved.version, issues: parsed.error.issues }, "config value refused by this node's schema");
      return;
    }
    handle.set(parsed.data, resolved.version, this.logger);
    this.writeCache(handle.group, handle.key, { version: resolved.version, value: resolved.value });
    this.logger.info({ group: handle.group, key: handle.key, version: resolved.version, gray: resolved.gray }, "config applied");
  }

  private cacheFile(group: string, key: string): string {
    return path.join(this.dataDir, "config-cache", this.namespace, `${group}.${key}.json`);
  }

  private readCache<T>(group: string, key: string, schema: z.ZodType<T>): { version: number; value: T } | undefined {
    try {
      const cached = JSON.parse(readFileSync(this.cacheFile(group, key), "utf8")) as { version: number; value: unknown };
      const parsed = schema.safeParse(cached.value);
      return parsed.success ? { version: cached.version, value: parsed.data } : undefined;
    } catch {
      return undefined;
    }
  }

  private writeCache(group: string, key: string, entry: { version: number; value: unknown }): void {
    const file = this.cacheFile(group, key);
    try {
      mkdirSync(path.dirname(file), { recursive: true });
      // Written aside and renamed, so a crash never leaves half a file to start from.
      const temp = `${file}.${process.pid}.tmp`;
      writeFileSync(temp, JSON.stringify(entry));
      renameSync(temp, file);
    } catch (err) {
      this.logger.warn({ err, file }, "could not cache a config value on disk");
    }
  }
}

/** Every node runs this: it hears the centre's change broadcasts for the node's agent. */
export function configAgentService(agent: ConfigAgent): ServiceSchema {
  return {
    name: "config-agent",
    events: {
      [CONFIG_CHANGED]: {
        handler(ctx: { params: ConfigChanged }) {
          return agent.changed(ctx.params);
        },
      },
    },
    started() {
      agent.attach(this.broker);
    },
    stopped() {
      agent.detach();
    },
  };
}
