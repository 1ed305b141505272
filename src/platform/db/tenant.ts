import {
  AliasNode,
  BinaryOperationNode,
  ColumnNode,
  type DeleteQueryNode,
  IdentifierNode,
  type InsertQueryNode,
  type KyselyPlugin,
  type OperationNode,
  OperationNodeTransformer,
  OperatorNode,
  type PluginTransformQueryArgs,
  type PluginTransformResultArgs,
  PrimitiveValueListNode,
  type QueryResult,
  QueryNode,
  ReferenceNode,
  type RootOperationNode,
  type SelectQueryNode,
  TableNode,
  type UnknownRow,
  type UpdateQueryNode,
  ValueListNode,
  ValueNode,
  ValuesNode,
} from "kysely";

/**
 * Tenant isolation in the data layer. A service names its tenant tables (each has a `tenant_id`
 * column); its ordinary database handle refuses any query that touches one (`TenantGuard`), and the
 * only way in is a handle scoped to one tenant (`TenantScope`), which adds `tenant_id = <tenant>` to
 * every select, update and delete on a tenant table (joins and subqueries included) and refuses an
 * insert whose rows do not carry that tenant. Forgetting the scope is an error, not a leak.
 */

const TENANT_COLUMN = "tenant_id";

function tableName(node: OperationNode): { table: string; ref: string } | undefined {
  if (TableNode.is(node)) {
    const name = node.table.identifier.name;
    return { table: name, ref: name };
  }
  if (AliasNode.is(node) && TableNode.is(node.node) && IdentifierNode.is(node.alias))
    return { table: node.node.table.identifier.name, ref: node.alias.name };
  return undefined;
}

class Guard extends OperationNodeTransformer {
  constructor(private readonly tables: ReadonlySet<string>) {
    super();
  }

  protected override transformTable(node: TableNode): TableNode {
    const name = node.table.identifier.name;
    if (this.tables.has(name)) throw new Error(`query on tenant table ${name} without a tenant scope: use the service's forTenant(tenantId)`);
    return super.transformTable(node);
  }
}

class Scope extends OperationNodeTransformer {
  constructor(
    private readonly tables: ReadonlySet<string>,
    private readonly tenantId: string | number,
  ) {
    super();
  }

  private scoped<T extends SelectQueryNode | UpdateQueryNode | DeleteQueryNode>(node: T, sources: readonly OperationNode[]): T {
    let out = node;
    for (const source of sources) {
      const named = tableName(source);
      if (!named || !this.tables.has(named.table)) continue;
      const condition = BinaryOperationNode.create(
        ReferenceNode.create(ColumnNode.create(TENANT_COLUMN), TableNode.create(named.ref)),
        OperatorNode.create("="),
        ValueNode.create(this.tenantId),
      );
      out = QueryNode.cloneWithWhere(out, condition) as T;
    }
    return out;
  }

  protected override transformSelectQuery(node: SelectQueryNode): SelectQueryNode {
    const inner = super.transformSelectQuery(node);
    return this.scoped(inner, [...(inner.from?.froms ?? []), ...(inner.joins ?? []).map((j) => j.table)]);
  }

  protected override transformUpdateQuery(node: UpdateQueryNode): UpdateQueryNode {
    const inner = super.transformUpdateQuery(node);
    return this.scoped(inner, [...(inner.table ? [inner.table] : []), ...(inner.from?.froms ?? []), ...(inner.joins ?? []).map((j) => j.table)]);
  }

  protected override transformDeleteQuery(node: DeleteQueryNode): DeleteQueryNode {
    const inner = super.transformDeleteQuery(node);
    return this.scoped(inner, [...inner.from.froms, ...(inner.joins ?? []).map((j) => j.table)]);
  }

  protected override transformInsertQuery(node: InsertQueryNode): InsertQueryNode {
    const inner = super.transformInsertQuery(node);
    const name = inner.into?.table.identifier.name;
    if (!name || !this.tables.has(name)) return inner;
    const column = (inner.columns ?? []).findIndex((c) => c.column.name === TENANT_COLUMN);
    const rows = inner.values && ValuesNode.is(inner.values) ? inner.values.values : [];
    const carries = (row: OperationNode) => {
      if (PrimitiveValueListNode.is(row)) return row.values[column] === this.tenantId;
      if (ValueListNode.is(row)) {
        const value = row.values[column];
        return value !== undefined && ValueNode.is(value) && value.value === this.tenantId;
      }
      return false;
    };
    if (column < 0 || rows.length === 0 || !rows.every(carries))
      throw new Error(`insert into tenant table ${name} must give tenant_id = ${String(this.tenantId)} on every row`);
    return inner;
  }
}

abstract class TransformingPlugin implements KyselyPlugin {
  protected abstract readonly transformer: OperationNodeTransformer;
  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    return this.transformer.transformNode(args.node);
  }
  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}

export class TenantGuard extends TransformingPlugin {
  protected readonly transformer: OperationNodeTransformer;
  constructor(tables: readonly string[]) {
    super();
    this.transformer = new Guard(new Set(tables));
  }
}

export class TenantScope extends TransformingPlugin {
  protected readonly transformer: OperationNodeTransformer;
  constructor(tables: readonly string[], tenantId: string | number) {
    super();
    this.transformer = new Scope(new Set(tables), tenantId);
  }
}
