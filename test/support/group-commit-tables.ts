import type { Kysely, Migration } from "kysely";

export interface GroupCommitTables {
  pairs: { id: string; half: number };
}

export const groupCommitMigrations: Record<string, Migration> = {
  "0001_pairs": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("pairs")
        .addColumn("id", "varchar(16)", (c) => c.notNull())
        .addColumn("half", "integer", (c) => c.notNull())
        .addPrimaryKeyConstraint("pairs_pk", ["id", "half"])
        .execute();
    },
  },
};
