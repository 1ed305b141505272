import type { Kysely, Migration, Selectable } from "kysely";
import type { BranchState, TxKind, TxState } from "./tx.domain";

/** The coordinator's durable log: a global transaction and its branches, in its own database. */
export interface TxTables {
  transactions: {
    gid: string;
    kind: TxKind;
    state: TxState;
    /** For STUCK: the phase it stopped in, where an operator's retry resumes. */
    stuck_in: TxState | null;
    /** TCC: the service asked "did you commit?" when the transaction outlives its timeout. */
    initiator: string | null;
    timeout_at: number | null;
    /** Failed calls of the current step; reset when a step succeeds. */
    attempts: number;
    next_attempt_at: number;
    last_error: string | null;
    /** Which coordinator drives it, until when (several coordinator nodes share one database). */
    lease_owner: string | null;
    lease_until: number | null;
    created_at: number;
    updated_at: number;
    finished_at: number | null;
  };
  branches: {
    gid: string;
    branch_id: string;
    action: string;
    confirm: string | null;
    compensate: string;
    payload: string;
    state: BranchState;
    /** Forward calls made: a step attempted without an answer may have acted, so it is compensated. */
    attempts: number;
    result: string | null;
    last_error: string | null;
    created_at: number;
    /** When the forward call succeeded, and when the branch reached its final state. */
    done_at: number | null;
    finished_at: number | null;
  };
}

export type TxDb = Kysely<TxTables>;
export type TransactionRow = Selectable<TxTables["transactions"]>;
export type BranchRow = Selectable<TxTables["branches"]>;

export const txMigrations: Record<string, Migration> = {
  "0001_platform_tx": {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable("transactions")
        .addColumn("gid", "varchar(128)", (c) => c.primaryKey())
        .addColumn("kind", "varchar(8)", (c) => c.notNull())
        .addColumn("state", "varchar(16)", (c) => c.notNull())
        .addColumn("stuck_in", "varchar(16)")
        .addColumn("initiator", "varchar(64)")
        .addColumn("timeout_at", "bigint")
        .addColumn("attempts", "integer", (c) => c.notNull())
        .addColumn("next_attempt_at", "bigint", (c) => c.notNull())
        .addColumn("last_error", "text")
        .addColumn("lease_owner", "varchar(128)")
        .addColumn("lease_until", "bigint")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("updated_at", "bigint", (c) => c.notNull())
        .addColumn("finished_at", "bigint")
        .execute();
      await db.schema.createIndex("transactions_due").on("transactions").columns(["state", "next_attempt_at"]).execute();
      await db.schema.createIndex("transactions_created").on("transactions").columns(["created_at"]).execute();
      await db.schema
        .createTable("branches")
        .addColumn("gid", "varchar(128)", (c) => c.notNull())
        .addColumn("branch_id", "varchar(16)", (c) => c.notNull())
        .addColumn("action", "varchar(128)", (c) => c.notNull())
        .addColumn("confirm", "varchar(128)")
        .addColumn("compensate", "varchar(128)", (c) => c.notNull())
        .addColumn("payload", "text", (c) => c.notNull())
        .addColumn("state", "varchar(16)", (c) => c.notNull())
        .addColumn("attempts", "integer", (c) => c.notNull())
        .addColumn("result", "text")
        .addColumn("last_error", "text")
        .addColumn("created_at", "bigint", (c) => c.notNull())
        .addColumn("done_at", "bigint")
        .addColumn("finished_at", "bigint")
        .addPrimaryKeyConstraint("branches_pk", ["gid", "branch_id"])
        .execute();
    },
  },
};
