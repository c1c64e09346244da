/**
 * Lookup joins: a stream joined with a lookup table (`type = 'lookup'`), in
 * Arroyo's form (`JOIN t ON s.k = t.key`) or Flink's (`JOIN t FOR SYSTEM_TIME
 * AS OF s.time AS l ON ...`). Each stream row's key is read from the store as
 * the row passes; the store's current value is what it meets, whatever time
 * FOR SYSTEM_TIME names. Only [INNER] and LEFT joins, with the lookup table on
 * the right and an ON of equalities that give each PRIMARY KEY column from the
 * stream, can be honoured exactly; everything else is refused here.
 */
import { typeName } from "../../plugin-api/index.ts";
import type { Expr } from "../../expr/expr.ts";
import type { PlanNode, TableDef } from "../../plan/logical.ts";
import type * as A from "../ast.ts";
import { SqlError } from "../errors.ts";
import { resolveExpr, type Scope } from "../expressions.ts";
import { type CteEnv, exprContext, fieldsOf, mapColumns, type QueryPlanner, type Rel } from "./context.ts";
import { conjuncts } from "./joins.ts";

const FORMS = "write FROM stream [LEFT] JOIN lookup_table ON stream.col = lookup_table.key";

/** The lookup table a FROM item names (a CTE or view of that name shadows it), if it is one. */
export function lookupTableOf(p: QueryPlanner, item: A.FromItem, env: CteEnv): TableDef | undefined {
  if (item.kind !== "table" || env.get(item.name) || p.views.has(item.name.toLowerCase())) return undefined;
  const table = p.tables.get(item.name.toLowerCase());
  return table?.declaredRole === "lookup" ? table : undefined;
}

/** A lookup table read other than on the right of a join. */
export function refuseLookupAsSource(table: TableDef, at: number): never {
  throw new SqlError(`\`${table.name}\` is a lookup table: it is read by key in a join, not as a stream; ${FORMS}`, at);
}

export function planLookupJoin(p: QueryPlanner, left: Rel, item: Extract<A.FromItem, { kind: "join" }>, table: TableDef): Rel {
  const at = item.at;
  const right = item.right as Extract<A.FromItem, { kind: "table" }>;
  if (item.join !== "inner" && item.join !== "left") {
    const how = item.comma ? "a comma-separated FROM" : `${item.join.toUpperCase()} JOIN`;
    throw new SqlError(`${how} with lookup table \`${table.name}\` is not supported: the table is read by key for each stream row, so only [INNER] JOIN and LEFT JOIN can use it; ${FORMS}`, at);
  }
  if (item.using) throw new SqlError(`JOIN ... USING is not supported; write ON stream.col = \`${table.name}\`.key`, at);
  if (!item.on) throw new SqlError(`a lookup join needs ON with the table's key: ${FORMS}`, at);
  if (left.node.updating) {
    throw new SqlError(
      `lookup table \`${table.name}\` is joined to an updating result (an aggregate without a window, an outer join or a change stream); a lookup join reads an append-only stream: join the lookup table before the aggregate`,
      at,
    );
  }
  const joinType = item.join;
  const leftWidth = left.scope.columns.length;
  const qualifier = right.alias ?? table.name;
  const rightColumns = table.fields.map((f) => ({ ...f, qualifier, nullable: f.nullable || joinType === "left" }));
  const scope: Scope = { columns: [...left.scope.columns, ...rightColumns], label: "the join" };
  if (right.asOf) checkSystemTime(p, left, right.asOf, table);

  const keyColumns = table.primaryKey!;
  const keys: (Expr | undefined)[] = keyColumns.map(() => undefined);
  const ctx = exprContext(p, "JOIN ... ON");
  const keyNames = keyColumns.map((i) => table.fields[i]!.name).join(", ");
  for (const c of conjuncts(item.on)) {
    const refuse = (why: string): never => {
      throw new SqlError(
        `the ON of a lookup join takes only equalities between the PRIMARY KEY of \`${table.name}\` (${keyNames}) and the stream; ${why}. ` +
          (joinType === "inner"
            ? "Move other conditions to WHERE"
            : "Move other conditions to WHERE (which also drops the rows without a match) or test them with CASE in the SELECT list"),
        c.at,
      );
    };
    if (c.kind !== "binary" || c.op !== "=") refuse("this condition is not one");
    const eq = c as Extract<A.Expr, { kind: "binary" }>;
    const a = resolveExpr(eq.left, scope, ctx);
    const b = resolveExpr(eq.right, scope, ctx);
    const keyOf = (e: Expr) => (e.kind === "column" && e.index >= leftWidth ? keyColumns.indexOf(e.index - leftWidth) : -2);
    const streamOnly = (e: Expr) => {
      let ok = true;
      mapColumns(e, (i) => ((ok &&= i < leftWidth), i));
      return ok;
    };
    const [ka, kb] = [keyOf(a), keyOf(b)];
    const pair = ka >= 0 && streamOnly(b) ? ([ka, b, a] as const) : kb >= 0 && streamOnly(a) ? ([kb, a, b] as const) : null;
    if (!pair) {
      const lookupColumn = [a, b].find((e) => e.kind === "column" && e.index >= leftWidth) as Extract<Expr, { kind: "column" }> | undefined;
      if (lookupColumn && keyOf(lookupColumn) < 0) refuse(`\`${lookupColumn.name}\` is not a key column`);
      refuse("one side must be a key column of the lookup table and the other an expression over the stream");
    }
    const [k, streamSide, keySide] = pair!;
    if (streamSide.type.kind !== keySide.type.kind) {
      throw new SqlError(`the lookup key \`${table.name}\`.\`${table.fields[keyColumns[k]!]!.name}\` is ${typeName(keySide.type)} but is compared with ${typeName(streamSide.type)}; CAST the stream's side to ${typeName(keySide.type)}`, c.at);
    }
    if (keys[k]) refuse(`key column \`${table.fields[keyColumns[k]!]!.name}\` is given twice`);
    keys[k] = streamSide;
  }
  const missing = keyColumns.filter((_, k) => !keys[k]).map((i) => table.fields[i]!.name);
  if (missing.length > 0) {
    throw new SqlError(`the ON of this lookup join must give every PRIMARY KEY column of \`${table.name}\`; add ${missing.map((m) => `stream.col = ${qualifier}.${m}`).join(" AND ")}`, at);
  }
  p.markUsed(table, "lookup");
  const node: PlanNode = { kind: "lookup_join", input: left.node, table, joinType, keys: keys as Expr[], schema: { fields: fieldsOf(scope) }, updating: false };
  return { node, scope };
}

/**
 * FOR SYSTEM_TIME AS OF names the stream's event-time or processing-time
 * column (as Flink requires a time attribute). The lookup reads the store's
 * current value either way: no store here keeps versions to read as of a time.
 */
function checkSystemTime(p: QueryPlanner, left: Rel, asOf: A.SystemTime, table: TableDef): void {
  const time = resolveExpr(asOf.time, left.scope, exprContext(p, "FOR SYSTEM_TIME AS OF"));
  const rewrite = `name the stream's event-time column (WATERMARK FOR) or processing-time column, or leave the clause out: a lookup join reads the current value of \`${table.name}\` either way`;
  if (time.kind !== "column" || time.type.kind !== "timestamp" || !isTimeAttribute(left.node, time.index)) {
    throw new SqlError(`FOR SYSTEM_TIME AS OF ${asOf.time.parts.join(".")} is not a time column of the stream; ${rewrite}`, asOf.time.at);
  }
}

/** Whether column `index` of `node` is, unchanged, its source's event-time column or a processing-time (proctime()) column. */
function isTimeAttribute(node: PlanNode, index: number): boolean {
  switch (node.kind) {
    case "source": {
      const t = node.table;
      if (t.eventTime?.kind === "column" && t.eventTime.index === index) return true;
      const generated = t.virtual[index - t.fields.length]?.expr;
      return generated?.kind === "call" && generated.name === "proctime";
    }
    case "map": {
      const e = node.exprs[index];
      return e?.kind === "column" && isTimeAttribute(node.input, e.index);
    }
    case "changelog":
    case "async_udf":
    case "unnest":
    case "lookup_join":
    case "window_function":
      return index < node.input.schema.fields.length && isTimeAttribute(node.input, index);
    case "join":
      return index < node.left.schema.fields.length ? isTimeAttribute(node.left, index) : isTimeAttribute(node.right, index - node.left.schema.fields.length);
    default:
      return false;
  }
}
