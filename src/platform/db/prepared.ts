import type { Compilable, CompiledQuery, DialectAdapter, Kysely } from "kysely";
import { executeCompiled } from "./db";

/** Stands for a value while the query is built; compiled into the position it lands in. */
class Slot {
  constructor(
    readonly name: string,
    /** For a list parameter: the element. */
    readonly index?: number,
    /** For a list of rows: the element's field. */
    readonly field?: string,
  ) {}

  get key(): string {
    return `${this.name}${this.index === undefined ? "" : `[${this.index}]`}${this.field === undefined ? "" : `.${this.field}`}`;
  }
}

interface Compiled {
  readonly query: CompiledQuery;
  /** Per position of the compiled parameters: where its value comes from, or undefined for a constant of the query. */
  readonly slots: readonly (Slot | undefined)[];
}

const NO_PLUGIN = {};
/** Shapes (list lengths) kept per statement and handle; past this many the oldest are compiled again when met. */
const MAX_SHAPES = 64;

/**
 * A query built and compiled once per shape, run many times with new values. Building and compiling
 * a Kysely query costs several times what running a small statement on SQLite does (~10 µs against
 * ~2 µs), so statements on a hot path are prepared. `build` receives stand-ins for the values: `$.id`
 * for a value, `$.ids` for a list (of stand-ins, as long as the list given), `$.row` for a plain object
 * whose fields are the columns (`values($.row)`, `set($.row)`), `$.rows` for a list of them
 * (`values($.rows)`; the rows of one list share the first one's columns; or read fields by name,
 * `$.rows.map((r) => ({ ref: r.ref }))`). Use each where Kysely binds a value (comparisons, `in`,
 * `set`, `values`, `limit`), never as SQL text. A list of another length, or rows with other columns,
 * is another shape, compiled once when first met.
 *
 * The compiled forms are kept per database and per plugin chain: a transaction shares its database's;
 * a tenant-scoped handle (whose plugin bakes its tenant into the query) gets its own each time, so it
 * is correct there but gains nothing.
 */
export class Prepared<DB, P extends object, R> {
  private readonly compiled = new WeakMap<DialectAdapter, WeakMap<object, Map<string, Compiled>>>();
  /**
   * The database and plugin chain of the last run, their compiled forms, and the last shape met with
   * its compiled form: nearly every run is on the same handle and of the same shape as the one before,
   * and checking that allocates nothing (the shape's key is a string built per run).
   */
  private last?: { adapter: DialectAdapter; chain: object; shapes: Map<string, Compiled>; shape?: Shape; compiled?: Compiled };

  constructor(private readonly build: (db: Kysely<DB>, $: P) => Compilable<R>) {}

  /** Every row the query answers. */
  async all(db: Kysely<DB>, values: P): Promise<R[]> {
    return (await executeCompiled(db, this.bind(db, values))).rows as R[];
  }

  /** The first row, or undefined. */
  async first(db: Kysely<DB>, values: P): Promise<R | undefined> {
    return (await executeCompiled(db, this.bind(db, values))).rows[0] as R | undefined;
  }

  /** Runs an insert, update or delete; answers the number of rows it affected. */
  async run(db: Kysely<DB>, values: P): Promise<number> {
    return Number((await executeCompiled(db, this.bind(db, values))).numAffectedRows ?? 0);
  }

  /** Runs an insert built with the store's `returningId`; answers the generated id. */
  async insertId(db: Kysely<DB>, values: P): Promise<number> {
    const result = await executeCompiled(db, this.bind(db, values));
    return Number(result.insertId ?? (result.rows[0] as { id: number | string }).id);
  }

  private bind(db: Kysely<DB>, values: P): CompiledQuery {
    const c = this.compiledFor(db, values);
    const given = values as Record<string, unknown>;
    const constants = c.query.parameters;
    const parameters = new Array<unknown>(c.slots.length);
    for (let i = 0; i < parameters.length; i++) {
      const slot = c.slots[i];
      if (slot === undefined) {
        parameters[i] = constants[i];
        continue;
      }
      let value = given[slot.name];
      if (slot.index !== undefined) value = (value as unknown[])[slot.index];
      if (slot.field !== undefined) value = (value as Record<string, unknown>)[slot.field];
      // Engines differ on undefined (an error, or a silent NULL): none is bound.
      if (value === undefined) throw new Error(`prepared query: no value for $.${slot.key}${slot.index !== undefined && slot.field !== undefined ? " (the rows of one list share the first one's columns)" : ""}`);
      parameters[i] = value;
    }
    return { query: c.query.query, queryId: c.query.queryId, sql: c.query.sql, parameters };
  }

  private compiledFor(db: Kysely<DB>, values: P): Compiled {
    const executor = db.getExecutor();
    const plugins = executor.plugins;
    const chain: object = plugins.length > 0 ? plugins[plugins.length - 1] : NO_PLUGIN;
    let shapes = this.last?.adapter === executor.adapter && this.last.chain === chain ? this.last.shapes : undefined;
    if (!shapes) {
      let byChain = this.compiled.get(executor.adapter);
      if (!byChain) this.compiled.set(executor.adapter, (byChain = new WeakMap()));
      shapes = byChain.get(chain);
      if (!shapes) byChain.set(chain, (shapes = new Map()));
      this.last = { adapter: executor.adapter, chain, shapes };
    }
    const last = this.last!;
    if (last.shape && hasShape(values, last.shape)) return last.compiled!;
    const shape = shapeOf(values);
    let c = shapes.get(shape.key);
    if (!c) {
      if (shapes.size >= MAX_SHAPES) shapes.delete(shapes.keys().next().value!);
      shapes.set(shape.key, (c = this.compile(db, values)));
    }
    last.shape = shape;
    last.compiled = c;
    return c;
  }

  private compile(db: Kysely<DB>, values: P): Compiled {
    const used = new Set<string>();
    const slot = (name: string, index?: number, field?: string) => {
      const s = new Slot(name, index, field);
      used.add(s.key);
      return s;
    };
    const given = values as Record<string, unknown>;
    const stand = new Proxy({} as P, {
      get(_target, name) {
        if (typeof name !== "string") throw new Error("prepared query: values are named by strings");
        const value = given[name];
        // Kysely lists a row's columns by its keys: the given row's, each a stand-in.
        const row = (fields: string[], index?: number) =>
          new Proxy({}, {
            get: (_row, field) => (typeof field === "string" ? slot(name, index, field) : undefined),
            ownKeys: () => fields,
            getOwnPropertyDescriptor: (_row, field) =>
              typeof field === "string" && fields.includes(field) ? { value: slot(name, index, field), enumerable: true, configurable: true, writable: true } : undefined,
          });
        if (isRow(value)) return row(fieldsOf(value));
        if (!Array.isArray(value)) return slot(name);
        // The rows of one list share their columns: the first row's.
        const columns = isRow(value[0]) ? fieldsOf(value[0]) : [];
        return value.map((element, index) => (isRow(element) ? row(columns, index) : slot(name, index)));
      },
    });
    const query = this.build(db, stand).compile();
    const slots = query.parameters.map((p) => (p instanceof Slot ? p : undefined));
    const placed = new Set(slots.map((s) => s?.key));
    for (const key of used) if (!placed.has(key)) throw new Error(`prepared query: $.${key} did not become a bound parameter (${query.sql})`);
    return { query, slots };
  }
}

/** A plain object given as a value: a row, its fields bound one by one (`values($.row)`, `set($.row)`). */
function isRow(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && Object.getPrototypeOf(value) === Object.prototype;
}

/** A row's columns: its keys, but for those left undefined (as Kysely leaves them out). */
function fieldsOf(row: Record<string, unknown>): string[] {
  return Object.keys(row).filter((key) => row[key] !== undefined);
}

/**
 * The lengths of the list values and the columns of the rows: what makes one compiled form differ from
 * another. `key` names it; `parts` lists, in the values' order, each list or row value's name, its
 * length (-1 for a row), and the columns of its rows (null for a list of plain values).
 */
interface Shape {
  readonly key: string;
  readonly parts: readonly { readonly name: string; readonly length: number; readonly columns: readonly string[] | null }[];
}

function shapeOf(values: object): Shape {
  let key = "";
  const parts: Shape["parts"][number][] = [];
  for (const name in values) {
    const value = (values as Record<string, unknown>)[name];
    if (Array.isArray(value)) {
      const columns = isRow(value[0]) ? fieldsOf(value[0]) : null;
      key += columns ? `${name}:${value.length}{${columns.join()}},` : `${name}:${value.length},`;
      parts.push({ name, length: value.length, columns });
    } else if (isRow(value)) {
      const columns = fieldsOf(value);
      key += `${name}{${columns.join()}},`;
      parts.push({ name, length: -1, columns });
    }
  }
  return { key, parts };
}

/** Whether `values` are of `shape`, without building its key. */
function hasShape(values: object, shape: Shape): boolean {
  let part = 0;
  for (const name in values) {
    const value = (values as Record<string, unknown>)[name];
    let length: number;
    let row: unknown;
    if (Array.isArray(value)) {
      length = value.length;
      row = value[0];
    } else if (isRow(value)) {
      length = -1;
      row = value;
    } else continue;
    const expected = shape.parts[part++];
    if (expected === undefined || expected.name !== name || expected.length !== length) return false;
    if (isRow(row) ? expected.columns === null || !hasColumns(row, expected.columns) : expected.columns !== null) return false;
  }
  return part === shape.parts.length;
}

/** Whether a row's columns (its keys but those left undefined) are `columns`, in order. */
function hasColumns(row: Record<string, unknown>, columns: readonly string[]): boolean {
  let i = 0;
  for (const key in row) {
    if (row[key] === undefined) continue;
    if (columns[i++] !== key) return false;
  }
  return i === columns.length;
}

/** Prepares a query for `Kysely<DB>` handles; annotate `$` with the values' names and types. */
export function prepare<DB, P extends object, R>(build: (db: Kysely<DB>, $: P) => Compilable<R>): Prepared<DB, P, R> {
  return new Prepared(build);
}
