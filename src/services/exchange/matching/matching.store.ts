import type { Kysely, Migration } from "kysely";

export interface MatchingTables {
  /** Every command an engine applied, in order: with the last snapshot, what rebuilds its book. */
  journal: { symbol: string; seq: number; command: string };
  /** A symbol's book every so many commands: the resting orders in price-time order. */
  snapshots: { symbol: string; seq: number; book: string; at: number };
  /** Where each symbol's engine stands: commands applied, events published. */
  engines: { symbol: string; command_seq: number; event_seq: number };
}

export type MatchingDb = Kysely<MatchingTables>;

export const matchingMigrations: Record<string, Migration> = {
  "0001_exchange_matching": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("journal")
        .addColumn("symbol", "varchar(40)", (c) => c.notNull())
        .addColumn("seq", "bigint", (c) => c.notNull())
        .addColumn("command", "text", (c) => c.notNull())
        .addPrimaryKeyConstraint("journal_pk", ["symbol", "seq"])
        .execute();
      await db.schema
        .createTable("snapshots")
        .addColumn("symbol", "varchar(40)", (c) => c.notNull())
        .addColumn("seq", "bigint", (c) => c.notNull())
        .addColumn("book", "text", (c) => c.notNull())
        .addColumn("at", "bigint", (c) => c.notNull())
        .addPrimaryKeyConstraint("snapshots_pk", ["symbol", "seq"])
        .execute();
      await db.schema
        .createTable("engines")
        .addColumn("symbol", "varchar(40)", (c) => c.primaryKey())
        .addColumn("command_seq", "bigint", (c) => c.notNull())
        .addColumn("event_seq", "bigint", (c) => c.notNull())
        .execute();
    },
  },
};
