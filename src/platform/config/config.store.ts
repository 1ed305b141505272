import type { Kysely, Migration, Selectable } from "kysely";

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
