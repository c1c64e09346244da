/**
 * INSERT INTO: the query's columns checked against the table's, cast where no
 * value can be lost; every INSERT into one table feeds one sink.
 */
import { typeName } from "../../plugin-api/index.ts";
import type { Expr } from "../../expr/expr.ts";
import type { SinkTarget, TableDef } from "../../plan/logical.ts";
import { didYouMean, SqlError } from "../errors.ts";
import type { Scope } from "../expressions.ts";
import { lineColumn } from "../lexer.ts";
import type { Insert } from "../statements.ts";
import { isNumeric, sinkAssignment } from "../types.ts";
import { CteEnv, fieldsOf, mapNode, type QueryPlanner, type Rel } from "./context.ts";
import { planQueryText } from "./query.ts";

export function planInsert(p: QueryPlanner, s: Insert, sinks: SinkTarget[]): void {
  const table = p.tables.get(s.table.toLowerCase());
  if (!table) {
    throw new SqlError(
      `unknown table \`${s.table}\`${didYouMean(s.table, [...p.tables.values()].map((x) => x.name))}; declare it with CREATE TABLE ... WITH (connector = ...)`,
      s.tableOffset,
    );
  }
  if (!table.connector) return; // in-memory: planned where it is read
  const connector = p.registry.connector(table.connector)!;
  if (!connector.sink) throw new SqlError(`connector '${table.connector}' cannot be written to (table \`${table.name}\` is a source)`, s.tableOffset);
  if (table.declaredRole === "lookup") {
    throw new SqlError(`table \`${table.name}\` is a lookup table (read by key in joins); it cannot be inserted into: declare a second table over the same store for writing`, s.tableOffset);
  }
  if (table.declaredRole === "source") throw new SqlError(`table \`${table.name}\` is declared with type = 'source'; it cannot be inserted into`, s.tableOffset);
  let rel = planQueryText(p, s.query, new CteEnv(null));
  if (s.columns) rel = byColumnList(rel, table, s.columns, s.tableOffset);
  if (table.inferColumns) {
    if (table.fields.length === 0) table.fields = fieldsOf(rel.scope);
    else rel = conform(rel, table, s.tableOffset);
  } else {
    rel = conform(rel, table, s.tableOffset);
  }
  if (rel.node.updating) {
    const format = table.format ? p.registry.format(table.format.name) : undefined;
    if (!connector.sink.updating || (table.format && !format?.updating)) {
      throw new SqlError(
        `the query into \`${table.name}\` gives an updating result (GROUP BY without a window, or an outer join without windows, emits updates and retractions); ` +
          `write it with format = 'debezium_json' to a sink that accepts updates, or GROUP BY a window (tumble, hop, session)`,
        s.tableOffset,
      );
    }
  }
  p.markUsed(table, "sink");
  // A sink table is one sink: every INSERT into it feeds it through a union, so
  // two statements never plan two writers of one file, topic or table.
  const existing = sinks.find((target) => target.table === table);
  if (existing) {
    const node = existing.input;
    const inputs = node.kind === "union" && node.mergesInserts ? [...node.inputs, rel.node] : [node, rel.node];
    existing.input = { kind: "union", inputs, schema: node.schema, updating: inputs.some((n) => n.updating), mergesInserts: true };
    return;
  }
  sinks.push({ table, input: rel.node, location: lineColumn(p.sql, s.offset) });
}

/**
 * Checks a query's columns against a table's: types that differ are cast into the
 * table's when no value can be lost (integer widening, numbers and timestamps to
 * text); a cast that may lose values must be written in the query.
 */
export function conform(rel: Rel, table: TableDef, offset: number): Rel {
  const want = table.fields;
  const got = rel.scope.columns;
  if (got.length !== want.length) {
    throw new SqlError(
      `table \`${table.name}\` has ${want.length} column(s) (${want.map((f) => f.name).join(", ")}) but the query gives ${got.length} (${got.map((c) => c.name).join(", ")})`,
      offset,
    );
  }
  let needsCast = false;
  const exprs: Expr[] = got.map((c, i) => {
    const f = want[i]!;
    const col: Expr = { kind: "column", index: i, name: c.name, type: c.type };
    const how = sinkAssignment(c.type, f.type);
    if (how === "lossy") {
      const castable = isNumeric(c.type) && isNumeric(f.type);
      throw new SqlError(
        `column \`${f.name}\` of \`${table.name}\` is ${typeName(f.type)} but the query gives ${typeName(c.type)} (\`${c.name}\`)` +
          (castable
            ? `, and that conversion can lose values; write CAST(${c.name} AS ${typeName(f.type)}) in the query to accept that, or declare the column ${typeName(c.type)}`
            : f.type.kind === "map" || c.type.kind === "map"
              ? `; a map is not cast as a whole: build it from keys and values of those types (MAP {'k': CAST(v AS T)}), or declare the column ${typeName(c.type)}`
              : `; convert it in the query (e.g. CAST(${c.name} AS ${typeName(f.type)})), or declare the column ${typeName(c.type)}`),
        offset,
      );
    }
    if (how === "same") return col;
    needsCast = true;
    return { kind: "cast", expr: col, type: f.type };
  });
  const scope: Scope = { columns: want.map((f) => ({ ...f })), label: `\`${table.name}\`` };
  if (!needsCast) return { node: rel.node, scope: { columns: got.map((c, i) => ({ ...c, name: want[i]!.name })), label: scope.label } };
  return { node: mapNode(rel.node, exprs, undefined, want), scope };
}

/**
 * `INSERT INTO t (c2, c1) SELECT ...`: the query's columns go to the listed
 * columns, in the table's order; unlisted columns get NULL.
 */
function byColumnList(rel: Rel, table: TableDef, columns: string[], offset: number): Rel {
  if (table.fields.length === 0) throw new SqlError(`table \`${table.name}\` declares no columns; drop the column list, the query's columns become the table's`, offset);
  if (columns.length !== rel.scope.columns.length) {
    throw new SqlError(`the column list names ${columns.length} column(s) (${columns.join(", ")}) but the query gives ${rel.scope.columns.length}`, offset);
  }
  const source = new Map<string, number>();
  columns.forEach((name, i) => {
    const f = table.fields.find((x) => x.name.toLowerCase() === name.toLowerCase());
    if (!f) throw new SqlError(`table \`${table.name}\` has no column \`${name}\`${didYouMean(name, table.fields.map((x) => x.name))}`, offset);
    if (source.has(f.name)) throw new SqlError(`column \`${f.name}\` is listed twice`, offset);
    source.set(f.name, i);
  });
  const exprs: Expr[] = table.fields.map((f) => {
    const i = source.get(f.name);
    if (i !== undefined) return { kind: "column", index: i, name: rel.scope.columns[i]!.name, type: rel.scope.columns[i]!.type };
    if (f.nullable === false) throw new SqlError(`column \`${f.name}\` of \`${table.name}\` is NOT NULL and missing from the column list; list it`, offset);
    return { kind: "literal", value: null, type: f.type };
  });
  const scope: Scope = {
    columns: table.fields.map((f, j) => ({ name: f.name, type: exprs[j]!.type, nullable: true })),
    label: `\`${table.name}\``,
  };
  return { node: mapNode(rel.node, exprs, undefined, fieldsOf(scope)), scope };
}
