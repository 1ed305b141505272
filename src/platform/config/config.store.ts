import type { Kysely, Migration, Selectable } from "kysely";
import { retryOnUniqueViolation } from "../db/db";
import type { ServiceHost } from "../runtime/service-host";
import type { EntryState } from "./config.domain";

export interface Address {
  namespace: string;
  group: string;
  key: string;
}

/** One version of a value as written, with how it was published. */
export interface StoredVersion {
  version: number;
  /** The value as JSON text. */
  value: string;
  authorId: number;
  author: string;
  /** RELEASE, GRAY (with its tags), PROMOTE (of a gray one), ROLLBACK (to an earlier one). */
  action: string;
  grayTags: string[] | null;
  rollbackOf: number | null;
  createdAt: number;
}

/**
 * Where the config centre keeps its values: its own SQL database (SQLite, MySQL, PostgreSQL) or etcd.
 * Every write is one atomic step: the next version number, the version, and what each node should run.
 */
export interface ConfigStore {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The JSON Schema text registered for group/key. */
  schema(group: string, key: string): Promise<string | undefined>;
  registerSchema(group: string, key: string, owner: string, schema: string, now: number): Promise<void>;
  entry(a: Address): Promise<{ state: EntryState; updatedAt: number } | undefined>;
  version(a: Address, version: number): Promise<StoredVersion | undefined>;
  /** Newest first. */
  history(a: Address, limit: number): Promise<StoredVersion[]>;
  /** Writes the next version and the state `next` makes of the entry with it; answers the version. */
  append(a: Address, draft: Omit<StoredVersion, "version">, next: (state: EntryState, version: number) => EntryState): Promise<number>;
}

export const NO_ENTRY: EntryState = { releasedVersion: null, grayVersion: null, grayTags: [] };

/** The config centre's own database: what each node should run, every version ever written, and the owners' schemas. */
export interface ConfigTables {
  entries: {
    namespace: string;
    grp: string;
    key: string;
    released_version: number | null;
    gray_version: number | null;
    /** JSON array of node tags the gray version goes to. */
    gray_tags: string;
    updated_at: number;
  };
  versions: {
    namespace: string;
    grp: string;
    key: string;
    version: number;
    value: string;
    author_id: number;
    author: string;
    /** How it was published: RELEASE, GRAY (with its tags), PROMOTE (of a gray one), ROLLBACK (to an earlier one). */
    action: string;
    gray_tags: string | null;
    rollback_of: number | null;
    created_at: number;
  };
  /** What the owning service registered for a group/key: who owns it and the JSON Schema its values must meet. */
  schemas: {
    grp: string;
    key: string;
    owner: string;
    schema: string;
    updated_at: number;
  };
}

export type ConfigDb = Kysely<ConfigTables>;
export type EntryRow = Selectable<ConfigTables["entries"]>;
export type VersionRow = Selectable<ConfigTables["versions"]>;

export const configMigrations: Record<string, Migration> = {
  "0001_platform_config": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("entries")
        .addColumn("namespace", "varchar(32)", (c) => c.notNull())
        .addColumn("grp", "varchar(64)", (c) => c.notNull())
        .addColumn("key", "varchar(64)", (c) => c.notNull())
        .addColumn("released_version", "integer")
        .addColumn("gray_version", "integer")
        .addColumn("gray_tags", "text", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("entries_pk", ["namespace", "grp", "key"])
        .execute();
      await db.schema
        .createTable("versions")
        .addColumn("namespace", "varchar(32)", (c) => c.notNull())
        .addColumn("grp", "varchar(64)", (c) => c.notNull())
        .addColumn("key", "varchar(64)", (c) => c.notNull())
        .addColumn("version", "integer", (c) => c.notNull())
        .addColumn("value", "text", (c) => c.notNull())
        .addColumn("author_id", "bigint", (c) => c.notNull())
        .addColumn("author", "varchar(64)", (c) => c.notNull())
        .addColumn("action", "varchar(16)", (c) => c.notNull())
        .addColumn("gray_tags", "text")
        .addColumn("rollback_of", "integer")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("versions_pk", ["namespace", "grp", "key", "version"])
        .execute();
      await db.schema
        .createTable("schemas")
        .addColumn("grp", "varchar(64)", (c) => c.notNull())
        .addColumn("key", "varchar(64)", (c) => c.notNull())
        .addColumn("owner", "varchar(64)", (c) => c.notNull())
        .addColumn("schema", "text", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("schemas_pk", ["grp", "key"])
        .execute();
    },
  },
};

/** The config centre's own SQL database. */
export class SqlConfigStore implements ConfigStore {
  constructor(private readonly host: ServiceHost<ConfigTables>) {}

  start = () => this.host.start();
  stop = () => this.host.stop();

  private where<Q extends { where: (...args: any[]) => Q }>(q: Q, a: Address): Q {
    return q.where("namespace", "=", a.namespace).where("grp", "=", a.group).where("key", "=", a.key);
  }

  async schema(group: string, key: string) {
    const row = await this.host.db.selectFrom("schemas").select(["schema"]).where("grp", "=", group).where("key", "=", key).executeTakeFirst();
    return row?.schema;
  }

  async registerSchema(group: string, key: string, owner: string, schema: string, now: number) {
    await retryOnUniqueViolation(() =>
      this.host.tx(async (trx) => {
        const found = await trx.selectFrom("schemas").select("schema").where("grp", "=", group).where("key", "=", key).executeTakeFirst();
        if (!found) await trx.insertInto("schemas").values({ grp: group, key, owner, schema, updated_at: now }).execute();
        else if (found.schema !== schema) await trx.updateTable("schemas").set({ owner, schema, updated_at: now }).where("grp", "=", group).where("key", "=", key).execute();
      }),
    );
  }

  async entry(a: Address) {
    const e = await this.where(this.host.db.selectFrom("entries").selectAll(), a).executeTakeFirst();
    return e && { state: stateOf(e), updatedAt: Number(e.updated_at) };
  }

  async version(a: Address, version: number) {
    const row = await this.where(this.host.db.selectFrom("versions").selectAll(), a).where("version", "=", version).executeTakeFirst();
    return row && storedOf(row);
  }

  async history(a: Address, limit: number) {
    const rows = await this.where(this.host.db.selectFrom("versions").selectAll(), a).orderBy("version", "desc").limit(limit).execute();
    return rows.map(storedOf);
  }

  append(a: Address, draft: Omit<StoredVersion, "version">, next: (state: EntryState, version: number) => EntryState): Promise<number> {
    return retryOnUniqueViolation(() =>
      this.host.tx(async (trx) => {
        const entry = await this.host.store.forUpdate(this.where(trx.selectFrom("entries").selectAll(), a)).executeTakeFirst();
        const last = await this.where(trx.selectFrom("versions").select((eb) => eb.fn.max("version").as("v")), a).executeTakeFirst();
        const version = Number(last?.v ?? 0) + 1;
        await trx
          .insertInto("versions")
          .values({
            namespace: a.namespace,
            grp: a.group,
            key: a.key,
            version,
            value: draft.value,
            author_id: draft.authorId,
            author: draft.author,
            action: draft.action,
            gray_tags: draft.grayTags === null ? null : JSON.stringify(draft.grayTags),
            rollback_of: draft.rollbackOf,
            created_at: draft.createdAt,
          })
          .execute();
        const state = next(entry ? stateOf(entry) : NO_ENTRY, version);
        const row = { released_version: state.releasedVersion, gray_version: state.grayVersion, gray_tags: JSON.stringify(state.grayTags), updated_at: draft.createdAt };
        if (entry) await this.where(trx.updateTable("entries").set(row), a).execute();
        else await trx.insertInto("entries").values({ namespace: a.namespace, grp: a.group, key: a.key, ...row }).execute();
        return version;
      }),
    );
  }
}

const stateOf = (e: EntryRow): EntryState => ({ releasedVersion: e.released_version, grayVersion: e.gray_version, grayTags: JSON.parse(e.gray_tags) });

const storedOf = (v: VersionRow): StoredVersion => ({
  version: Number(v.version),
  value: v.value,
  authorId: Number(v.author_id),
  author: v.author,
  action: v.action,
  grayTags: v.gray_tags === null ? null : (JSON.parse(v.gray_tags) as string[]),
  rollbackOf: v.rollback_of === null ? null : Number(v.rollback_of),
  createdAt: Number(v.created_at),
});
