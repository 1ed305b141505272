import type { Generated, Kysely } from "kysely";
import { withAutoId } from "./db";

/** An operator's or owner's change, kept for good: who, what, about what, before and after (JSON). */
export interface AuditTable {
  seq: Generated<number>;
  /** Present on tenant-scoped audit logs only. */
  tenant_id?: string;
  actor_id: number;
  action: string;
  subject: string;
  detail: string;
  at: number;
}

/** The `audit` table of a service's database; `tenantScoped` adds `tenant_id` (then list it as a tenant table). */
export async function createAuditTable(db: Kysely<any>, tenantScoped: boolean): Promise<void> {
  let table = withAutoId(db, db.schema.createTable("audit"), "seq");
  if (tenantScoped) table = table.addColumn("tenant_id", "varchar(40)", (c) => c.notNull());
  await table
    .addColumn("actor_id", "bigint", (c) => c.notNull())
    .addColumn("action", "varchar(40)", (c) => c.notNull())
    .addColumn("subject", "varchar(100)", (c) => c.notNull())
    .addColumn("detail", "text", (c) => c.notNull())
    .addColumn("at", "bigint", (c) => c.notNull())
    .execute();
  if (tenantScoped) await db.schema.createIndex("audit_tenant").on("audit").columns(["tenant_id", "seq"]).execute();
}

/** Writes an audit row in the caller's transaction: the record exists exactly when the change does. */
export async function writeAudit(
  trx: Kysely<any>,
  entry: { tenantId?: string; actorId: number; action: string; subject: string; detail: unknown; at: number },
): Promise<void> {
  await trx
    .insertInto("audit")
    .values({
      ...(entry.tenantId === undefined ? {} : { tenant_id: entry.tenantId }),
      actor_id: entry.actorId,
      action: entry.action,
      subject: entry.subject,
      detail: JSON.stringify(entry.detail),
      at: entry.at,
    })
    .execute();
}
