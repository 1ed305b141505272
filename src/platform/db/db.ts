import { mkdirSync } from "node:fs";
import path from "node:path";
import SqliteDatabase from "better-sqlite3";
import { performance } from "node:perf_hooks";
import {
  type ColumnDefinitionBuilder,
  type CompiledQuery,
  type DialectAdapter,
  type CreateTableBuilder,
  type InsertQueryBuilder,
  Kysely,
  type KyselyPlugin,
  type Migration,
  type MigrationProvider,
  Migrator,
  MysqlAdapter,
  MysqlDialect,
  PostgresAdapter,
  PostgresDialect,
  SqliteDialect,
  sql,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  type QueryResult,
  type RawBuilder,
  type RootOperationNode,
  type SelectQueryBuilder,
  type SqlBool,
  type Transaction,
} from "kysely";
import { createConnection, createPool } from "mysql2";
import pg from "pg";
import { AUTOCHECKPOINT_BACKSTOP_PAGES, checkpointInBackground } from "./checkpointer";
import { TenantGuard, TenantScope } from "./tenant";

// int8 (bigint, count(*)) and numeric arrive as strings from pg; our integers are safe integers.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (v) => Number(v));

export type DialectName = "sqlite" | "mysql" | "postgres";

/** A service's own database: nothing else reads or writes it. */
export interface ServiceDb<T> {
  readonly db: Kysely<T>;
  readonly dialect: DialectName;
  readonly name: string;
  /** Row lock for read-modify-write in a transaction (SQLite serialises writers, so it needs none). */
  forUpdate<QB extends SelectQueryBuilder<any, any, any>>(qb: QB): QB;
  /** Runs an insert of one row and answers its generated `id` (MySQL reports it; the others return it). */
  insertId(qb: InsertQueryBuilder<any, any, any>): Promise<number>;
  /** The insert made to answer its generated `id` (as `insertId` runs it), for a prepared insert. */
  returningId(qb: InsertQueryBuilder<any, any, any>): InsertQueryBuilder<any, any, any>;
  /**
   * Inserts the row unless its key is taken, and answers whether it did. Unlike catching the
   * duplicate-key error, this leaves the transaction usable on PostgreSQL, and a concurrent inserter
   * of the same key waits for the first to commit or roll back.
   */
  insertIfAbsent(qb: InsertQueryBuilder<any, any, any>): Promise<boolean>;
  /** The insert, with rows whose `key` exists already updated instead: their `columns` take the new values. */
  upsert<QB extends InsertQueryBuilder<any, any, any>>(qb: QB, key: readonly string[], columns: readonly string[]): QB;
  /** The database seen by one tenant: the only handle that may touch the service's tenant tables (see tenant.ts). */
  forTenant(tenantId: string | number): Kysely<T>;
  /**
   * Every tenant's rows at once: for system jobs that sweep over all tenants (expiry, reconciliation),
   * never for work done on a request's behalf. Named so that each use is deliberate and easy to find.
   */
  acrossTenants(): Kysely<T>;
  close(): Promise<void>;
}

export type Tx<T> = Transaction<T>;

export interface DbOptions {
  dataDir: string;
  namespace: string;
  dbUrl?: string;
  /** Connections of the service's pool on a server engine (default 10). */
  dbPool?: number;
}

/** Opens the service's database (SQLite file, or a MySQL database created if missing) and applies its migrations. */
export async function openServiceDb<T>(
  options: DbOptions,
  service: string,
  migrations: Record<string, Migration>,
  tenantTables: readonly string[] = [],
): Promise<ServiceDb<T>> {
  const name = `bazaar_${options.namespace}_${service}`;
  let db: Kysely<T>;
  let dialect: DialectName;
  /** What closing the database also lets go of (the embedded file's claim and its checkpointer). */
  let release = () => {};
  const url = options.dbUrl ? new URL(options.dbUrl) : undefined;
  if (url && (url.protocol === "postgres:" || url.protocol === "postgresql:")) {
    const connection = serverOf(url, 5432, "postgres");
    await createPostgresDatabaseIfMissing(connection, name);
    const pool = new pg.Pool({ ...connection, database: name, max: options.dbPool ?? 10 });
    // An idle connection the server ends (a restart, a dropped database) is the pool's to replace; without
    // a listener its error would crash the process.
    pool.on("error", () => undefined);
    db = new Kysely<T>({ dialect: new PostgresDialect({ pool }) });
    dialect = "postgres";
  } else if (url) {
    if (url.protocol !== "mysql:" && url.protocol !== "mariadb:")
      throw new Error(`BAZAAR_DB_URL: unsupported scheme ${url.protocol} (use mysql:// or postgres://)`);
    const connection = serverOf(url, 3306, "root");
    await createMysqlDatabaseIfMissing(connection, name);
    db = new Kysely<T>({
      dialect: new MysqlDialect({
        pool: createPool({ ...connection, database: name, connectionLimit: options.dbPool ?? 10, charset: "utf8mb4", supportBigNumbers: true }),
      }),
    });
    dialect = "mysql";
  } else {
    mkdirSync(options.dataDir, { recursive: true });
    const filename = path.join(options.dataDir, `${name}.sqlite`);
    let claim: SqliteDatabase.Database;
    try {
      claim = claimFile(filename);
    } catch (err) {
      throw heldElsewhere(err, name);
    }
    let file: SqliteDatabase.Database;
    try {
      file = new SqliteDatabase(filename);
      configureSqlite(file);
    } catch (err) {
      claim.close();
      throw err;
    }
    const forget = checkpointInBackground(filename);
    release = () => {
      forget();
      claim.close();
    };
    const statements = withStatementCache(file);
    db = new Kysely<T>({ dialect: new SqliteDialect({ database: statements }), plugins: [yieldToEventLoop] });
    embedded.set(db.getExecutor().adapter, statements);
    dialect = "sqlite";
  }
  try {
    await migrate(db, migrations);
  } catch (err) {
    await db.destroy();
    release();
    throw err;
  }
  const base = db;
  // The ordinary handle refuses tenant tables; forTenant is the only way in.
  if (tenantTables.length > 0) db = base.withPlugin(passingResults(new TenantGuard(tenantTables)));
  return {
    db,
    dialect,
    name,
    forTenant: (tenantId) => base.withPlugin(passingResults(new TenantScope(tenantTables, tenantId))),
    acrossTenants: () => base,
    forUpdate: (qb) => forUpdateOn(db, qb),
    async insertId(qb) {
      if (dialect === "mysql") return Number((await qb.executeTakeFirstOrThrow()).insertId);
      const row = (await qb.returning("id").executeTakeFirstOrThrow()) as { id: number };
      return Number(row.id);
    },
    returningId: (qb) => (dialect === "mysql" ? qb : qb.returning("id")),
    async insertIfAbsent(qb) {
      const result = await skippingTaken(db, qb).executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
    },
    upsert: (qb, key, columns) => upsertOn(db, qb, key, columns),
    async close() {
      await base.destroy();
      release();
    },
  };
}

/** How every embedded SQLite file the platform writes is opened: the services' stores and the stream log. */
export function configureSqlite(file: SqliteDatabase.Database): void {
  // WAL + NORMAL survives a killed process (only power loss can drop the last commits).
  file.pragma("journal_mode = WAL");
  file.pragma("synchronous = NORMAL");
  file.pragma("busy_timeout = 5000");
  // An open savepoint's undo pages (group commit wraps members in one after a failure) spill to a temporary file
  // past 64 KB: from then on a write into the kernel a page, and an open and an unlink a transaction.
  // In memory they cost a copy. Nothing durable lives there: the WAL still carries every commit.
  file.pragma("temp_store = MEMORY");
  // Checkpoints run on the checkpointer's thread; this connection's own are the backstop.
  file.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_BACKSTOP_PAGES}`);
}

/**
 * One process owns a service's file: a second process running the same service on the same data dir
 * fails at start instead of racing the first. The claim is an exclusive lock on a file beside it, held
 * while the database is open (the database itself is shared with the checkpointer's connection).
 */
export function claimFile(filename: string): SqliteDatabase.Database {
  const claim = new SqliteDatabase(`${filename}.owner`);
  try {
    claim.pragma("locking_mode = EXCLUSIVE");
    claim.exec("BEGIN EXCLUSIVE");
  } catch (err) {
    claim.close();
    throw err;
  }
  return claim;
}

function heldElsewhere(err: unknown, name: string): unknown {
  return (err as Error)?.message?.includes("database is locked")
    ? new Error(`${name}: its SQLite file is held by another process; run each service in one process per data dir`)
    : err;
}

let lastYield = performance.now();

/**
 * better-sqlite3 answers synchronously and Kysely resolves at once, so a long transaction would run
 * start to end in microtasks and hold HTTP requests and timers behind it. After 2 ms of that, the
 * next query result waits for one turn of the event loop.
 */
function resolveYieldingIfLong<T>(value: T): Promise<T> {
  if (performance.now() - lastYield <= 2) return Promise.resolve(value);
  return new Promise<T>((resolve) =>
    setImmediate(() => {
      lastYield = performance.now();
      resolve(value);
    }),
  );
}

const yieldToEventLoop: KyselyPlugin = {
  transformQuery: (args: PluginTransformQueryArgs): RootOperationNode => args.node,
  transformResult: (args: PluginTransformResultArgs): Promise<QueryResult<any>> => resolveYieldingIfLong(args.result),
};

/** Plugins whose results are the driver's own (they change queries only, or yield): the direct path may skip them. */
const resultsPassed = new WeakSet<KyselyPlugin>([yieldToEventLoop]);

function passingResults<P extends KyselyPlugin>(plugin: P): P {
  resultsPassed.add(plugin);
  return plugin;
}

/** The statement cache of each embedded SQLite file, by its Kysely adapter (shared by its transactions and plugin handles). */
const embedded = new WeakMap<DialectAdapter, StatementCache>();

/**
 * Runs a compiled query straight on the SQLite file when `db` is a transaction there, or when no
 * transaction is open on the file: a transaction already holds the file's one connection, and with
 * none open a statement runs whole before anything else can (it is synchronous) and sees only what
 * is committed. Kysely's connection provider, mutex and result plugins (ours pass results through)
 * add only promise hops — about as much again as running a small statement. The same result Kysely's
 * SQLite driver gives; anywhere else — outside a transaction while one is open (its uncommitted rows
 * must not be seen), or with a plugin that changes results — Kysely runs it, after the transaction.
 */
export function executeCompiled<R>(db: Kysely<any>, query: CompiledQuery<R>): Promise<QueryResult<R>> {
  const executor = db.getExecutor();
  const statements = embedded.get(executor.adapter);
  const onTheFile = statements !== undefined && (db.isTransaction || !statements.inTransaction()) && executor.plugins.every((p) => resultsPassed.has(p));
  if (!onTheFile) return db.executeQuery(query);
  // Not an async function: on this path a statement costs a couple of microseconds, and each promise
  // an async frame adds is a good part of that. A statement's error still arrives as a rejection.
  let result: QueryResult<R>;
  try {
    const statement = statements.prepare(query.sql);
    if (statement.reader) result = { rows: statement.all(query.parameters) as R[] };
    else {
      const { changes, lastInsertRowid } = statement.run(query.parameters);
      result = { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] };
    }
  } catch (err) {
    return Promise.reject(err);
  }
  return resolveYieldingIfLong(result);
}

/** Whether a transaction is open on `db`'s embedded SQLite file; undefined for a server engine. */
export function fileInTransaction(db: Kysely<any>): boolean | undefined {
  return embedded.get(db.getExecutor().adapter)?.inTransaction();
}

type StatementCache = ReturnType<typeof withStatementCache>;

/** What Kysely's SQLite driver and `executeCompiled` use of a prepared statement. */
interface CachedStatement {
  readonly reader: boolean;
  all(parameters: readonly unknown[]): unknown[];
  run(parameters: readonly unknown[]): SqliteDatabase.RunResult;
  iterate(parameters: readonly unknown[]): IterableIterator<unknown>;
}

/**
 * A reading statement answers raw arrays, made into rows here: better-sqlite3 builds each row object
 * property by property through V8's C++ API, which costs about as much as running the query (a
 * 40-row, 12-column read took 126 µs that way, 70 µs this way). Rows keep the driver's shape: one
 * property per result column, in order, a later column of the same name winning.
 */
function cachedStatement(statement: SqliteDatabase.Statement): CachedStatement {
  if (!statement.reader) return statement as unknown as CachedStatement;
  statement.raw(true);
  const toRow = rowBuilder(statement.columns().map((c) => c.name));
  return {
    reader: true,
    all: (parameters) => (statement.all(parameters) as unknown[][]).map(toRow),
    run: (parameters) => statement.run(parameters),
    *iterate(parameters) {
      for (const values of statement.iterate(parameters) as IterableIterator<unknown[]>) yield toRow(values);
    },
  };
}

/** A function making a row object of fixed shape from a raw array: a literal V8 gives one hidden class. */
function rowBuilder(columns: readonly string[]): (values: unknown[]) => Record<string, unknown> {
  const fields = columns.map((name, i) => `${JSON.stringify(name)}: values[${i}]`).join(", ");
  return new Function("values", `return { ${fields} };`) as (values: unknown[]) => Record<string, unknown>;
}

/**
 * Kysely prepares every query anew, and preparing costs more than running a small statement;
 * reusing prepared statements by SQL text roughly doubles throughput. Bounded, because `IN (…)`
 * lists of varying length make distinct texts.
 */
function withStatementCache(file: SqliteDatabase.Database) {
  const cache = new Map<string, CachedStatement>();
  return {
    prepare(sql: string) {
      let statement = cache.get(sql);
      if (!statement) {
        if (cache.size >= 1000) cache.clear();
        statement = cachedStatement(file.prepare(sql));
        cache.set(sql, statement);
      }
      return statement;
    },
    inTransaction: () => file.inTransaction,
    close: () => file.close(),
  };
}

interface Server {
  host: string;
  port: number;
  user: string;
  password: string;
}

function serverOf(url: URL, defaultPort: number, defaultUser: string): Server {
  return {
    host: url.hostname,
    port: Number(url.port || defaultPort),
    user: decodeURIComponent(url.username || defaultUser),
    password: decodeURIComponent(url.password),
  };
}

async function createMysqlDatabaseIfMissing(
  connection: Server,
  name: string,
): Promise<void> {
  const conn = createConnection(connection).promise();
  try {
    await conn.query(`CREATE DATABASE IF NOT EXISTS \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  } finally {
    await conn.end();
  }
}

async function createPostgresDatabaseIfMissing(
  connection: Server,
  name: string,
): Promise<void> {
  const client = new pg.Client({ ...connection, database: "postgres" });
  await client.connect();
  try {
    const found = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [name]);
    if (found.rowCount === 0) {
      // 42P04: another process created it between our look and our create.
      await client.query(`CREATE DATABASE "${name}"`).catch((err: { code?: string }) => {
        if (err.code !== "42P04") throw err;
      });
    }
  } finally {
    await client.end();
  }
}

/** Which engine a handle runs on, for code that has the handle but not its ServiceDb (migrations, prepared queries). */
export function dialectOf(db: Kysely<any>): DialectName {
  const adapter = db.getExecutor().adapter;
  return adapter instanceof MysqlAdapter ? "mysql" : adapter instanceof PostgresAdapter ? "postgres" : "sqlite";
}

/** The select made to lock its rows for a read-modify-write on `db` (SQLite serialises writers, so it needs none): `ServiceDb.forUpdate`, for a prepared query. */
export function forUpdateOn<QB extends SelectQueryBuilder<any, any, any>>(db: Kysely<any>, qb: QB): QB {
  return (dialectOf(db) === "sqlite" ? qb : qb.forUpdate()) as QB;
}

/** The insert made to skip rows whose key is taken (as `insertIfAbsent` runs it), for a prepared insert on `db`. */
export function skippingTaken<QB extends InsertQueryBuilder<any, any, any>>(db: Kysely<any>, qb: QB): QB {
  return (dialectOf(db) === "mysql" ? qb.ignore() : qb.onConflict((oc) => oc.doNothing())) as QB;
}

/** The insert made to overwrite `columns` of a row whose `key` is taken (`ServiceDb.upsert`), for a prepared insert on `db`. */
export function upsertOn<QB extends InsertQueryBuilder<any, any, any>>(db: Kysely<any>, qb: QB, key: readonly string[], columns: readonly string[]): QB {
  if (dialectOf(db) === "mysql") return qb.onDuplicateKeyUpdate(Object.fromEntries(columns.map((c) => [c, sql`values(${sql.ref(c)})`]))) as QB;
  return qb.onConflict((oc) => oc.columns(key as string[]).doUpdateSet(Object.fromEntries(columns.map((c) => [c, sql.ref(`excluded.${c}`)])))) as QB;
}

/** Drops index `name` of `table` in a migration (MySQL names the table; the others must not). */
export async function dropIndex(db: Kysely<any>, name: string, table: string): Promise<void> {
  const drop = db.schema.dropIndex(name);
  await (dialectOf(db) === "mysql" ? drop.on(table) : drop).execute();
}

/**
 * Which rows a partial index keeps: those whose `column` is one of `values`, is above `above`, or is
 * not null. `partialTerm` writes it as SQL with literals, for the index and for the queries that use it.
 */
export type PartialCondition = { column: string } & ({ values: readonly string[] } | { above: number } | { notNull: true });

/**
 * A partial index's condition as SQL, with literals: a query uses the index only when its WHERE holds
 * this very term (SQLite compares the expressions; a bound parameter is not the literal it carries).
 */
export function partialTerm(where: PartialCondition): RawBuilder<SqlBool> {
  const column = sql.ref(where.column);
  if ("notNull" in where) return sql<SqlBool>`${column} is not null`;
  if ("above" in where) return sql<SqlBool>`${column} > ${sql.lit(where.above)}`;
  if (where.values.length === 1) return sql<SqlBool>`${column} = ${sql.lit(where.values[0])}`;
  return sql<SqlBool>`${column} in (${sql.join(where.values.map((v) => sql.lit(v)))})`;
}

/**
 * Creates index `name` on `table` (`columns`) over only the rows `where` keeps: a partial index where
 * the engine has them (SQLite, PostgreSQL), so that an index over the few live rows of a growing table
 * stays a few hot pages instead of spreading every write over the table's history. MySQL has none:
 * there the condition's column leads a full index. Queries name the condition with `partialTerm`.
 */
export async function createPartialIndex(db: Kysely<any>, name: string, table: string, columns: string[], where: PartialCondition): Promise<void> {
  const create = db.schema.createIndex(name).on(table);
  const full = [where.column, ...columns.filter((c) => c !== where.column)];
  await (dialectOf(db) === "mysql" ? create.columns(full) : create.columns(columns).where(partialTerm(where))).execute();
}

/** Adds an auto-numbered primary key `column`: `serial` on PostgreSQL, AUTOINCREMENT elsewhere. */
export function withAutoId<TB extends string, C extends string>(
  db: Kysely<any>,
  table: CreateTableBuilder<TB, never>,
  column: C,
): CreateTableBuilder<TB, C> {
  return dialectOf(db) === "postgres"
    ? table.addColumn(column, "bigserial", (c) => c.primaryKey())
    : table.addColumn(column, "integer", (c: ColumnDefinitionBuilder) => c.primaryKey().autoIncrement());
}

async function migrate<T>(db: Kysely<T>, migrations: Record<string, Migration>): Promise<void> {
  const provider: MigrationProvider = { getMigrations: async () => migrations };
  // Unordered: a platform migration added later sorts before a service's own, already applied ones.
  const { error, results } = await new Migrator({ db, provider, allowUnorderedMigrations: true }).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName;
    throw new Error(`migration ${failed ?? "?"} failed: ${(error as Error).message}`);
  }
}

/** A duplicate key on insert: the natural idempotency signal on every engine. */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY" || code === "ER_DUP_ENTRY" || code === "23505";
}

/** A transaction the engine rolled back to break a deadlock or a serialisation conflict. */
export function isDeadlock(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return code === "ER_LOCK_DEADLOCK" || code === "40P01" || code === "40001";
}

/**
 * Runs `work` again when it lost a race on a unique key (two first writers of one natural key); the
 * retry reads what the winner wrote.
 */
export async function retryOnUniqueViolation<R>(work: () => Promise<R>, attempts = 3): Promise<R> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      if (!isUniqueViolation(err) || attempt >= attempts) throw err;
    }
  }
}
