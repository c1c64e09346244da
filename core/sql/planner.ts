/**
 * Plans a SQL script into a LogicalPipeline: tables and views are registered in
 * order, each INSERT and bare SELECT becomes a sink fed by a plan of sources,
 * filter/projection maps, windowed or updating aggregates and unions. Views,
 * CTEs and in-memory tables are inlined; a table read twice is read once.
 */
import { t, typeName, type Field, type SqlType } from "../plugin-api/index.ts";
import type { Expr } from "../expr/expr.ts";
import type { AggregateCall, JoinType, LogicalPipeline, PlanNode, SinkTarget, TableDef, WindowSpec } from "../plan/logical.ts";
import type { PluginRegistry } from "../registry/registry.ts";
import { didYouMean, SqlError } from "./errors.ts";
import {
  astOffset,
  columnName,
  exprKey,
  functionArgs,
  intervalMicros,
  functionName,
  locate,
  positionWithin,
  resolveExpr,
  WINDOW_FUNCTIONS,
  type ExprContext,
  type Scope,
  type ScopeColumn,
} from "./expressions.ts";
import { lineColumn } from "./lexer.ts";
import { parseAst, rewriteForParser, type RewrittenText } from "./parse.ts";
import { parseStatements, type CreateView, type Insert, type SetOption, type TextRange } from "./statements.ts";
import { hoistAsyncUdfs } from "./async-udfs.ts";
import { buildTable, type PlanContext } from "./tables.ts";
import { assignable, isNumeric, sinkAssignment } from "./types.ts";

/** A planned relation: a plan node and the names its columns answer to. */
interface Rel {
  node: PlanNode;
  scope: Scope;
}

interface CteEntry {
  ast: any;
  text: RewrittenText;
  rel?: Rel;
  planning?: boolean;
}

class CteEnv {
  private readonly entries = new Map<string, CteEntry>();
  constructor(readonly parent: CteEnv | null) {}
  add(name: string, entry: CteEntry) {
    this.entries.set(name.toLowerCase(), entry);
  }
  get(name: string): CteEntry | undefined {
    return this.entries.get(name.toLowerCase()) ?? this.parent?.get(name);
  }
}

const BUILTIN_AGGREGATES = ["count", "sum", "avg", "min", "max"];

function requalify(scope: Scope, qualifier: string): Scope {
  return { columns: scope.columns.map((c) => ({ ...c, qualifier })), label: `\`${qualifier}\`` };
}

/** A copy of `e` with its column indices mapped (`f` also sees every index, to find which it uses). */
function mapColumns(e: Expr, f: (index: number) => number): Expr {
  switch (e.kind) {
    case "column":
      return { ...e, index: f(e.index) };
    case "field":
    case "cast":
      return { ...e, expr: mapColumns(e.expr, f) };
    case "call":
    case "udf":
      return { ...e, args: e.args.map((a) => mapColumns(a, f)) };
    case "case":
      return {
        ...e,
        operand: e.operand && mapColumns(e.operand, f),
        whens: e.whens.map((w) => ({ when: mapColumns(w.when, f), then: mapColumns(w.then, f) })),
        otherwise: e.otherwise && mapColumns(e.otherwise, f),
      };
    default:
      return e;
  }
}

function fieldsOf(scope: Scope): Field[] {
  return scope.columns.map((c) => ({ name: c.name, type: c.type, nullable: c.nullable }));
}

/** Visits expression nodes without entering subqueries. */
function walk(ast: any, visit: (node: any) => boolean | void): void {
  if (!ast || typeof ast !== "object") return;
  if (Array.isArray(ast)) {
    for (const x of ast) walk(x, visit);
    return;
  }
  if (visit(ast) === false) return;
  for (const [k, v] of Object.entries(ast)) {
    if (k === "loc" || k === "over") continue;
    if (v && typeof v === "object" && (v as any).type === "select") continue;
    walk(v, visit);
  }
}

function aliasOf(item: any): string | undefined {
  const as = item?.as;
  if (as === null || as === undefined) return undefined;
  if (typeof as === "string") return as;
  return String(as.value ?? as.expr?.value ?? as);
}

export class Planner {
  private readonly tables = new Map<string, TableDef>();
  private readonly views = new Map<string, { stmt: CreateView; rel?: Rel; planning?: boolean }>();
  private readonly memoryInserts = new Map<string, Insert[]>();
  private readonly memoryRels = new Map<string, { rel?: Rel; planning?: boolean }>();
  private readonly sourceNodes = new Map<TableDef, PlanNode>();
  private readonly sinks: SinkTarget[] = [];
  private readonly used = new Map<TableDef, Set<"source" | "sink">>();
  private readonly aggregateMemo = new WeakMap<object, boolean>();
  /** µs that updating state (aggregates, joins, change streams) is kept after its key's last change; unbounded when undefined. */
  private updatingTtl: number | undefined;
  /** Whether an aggregate group dropped by the TTL retracts its row downstream. */
  private updatingTtlRetract = false;

  constructor(
    private readonly sql: string,
    private readonly registry: PluginRegistry,
    private readonly context: PlanContext = {},
  ) {}

  plan(): LogicalPipeline {
    const statements = parseStatements(this.sql);
    if (statements.length === 0) throw new SqlError("the SQL holds no statements", 0);
    // Declarations first so statements may refer to tables declared later, as a script reads.
    for (const s of statements) {
      if (s.kind === "create_table") {
        const key = s.name.toLowerCase();
        if (this.tables.has(key) || this.views.has(key)) throw new SqlError(`\`${s.name}\` is declared twice`, s.nameOffset);
        this.tables.set(key, buildTable(this.sql, s, this.registry, this.context));
      } else if (s.kind === "create_view") {
        const key = s.name.toLowerCase();
        if (this.tables.has(key) || this.views.has(key)) throw new SqlError(`\`${s.name}\` is declared twice`, s.offset);
        this.views.set(key, { stmt: s });
      } else if (s.kind === "insert") {
        const table = this.tables.get(s.table.toLowerCase());
        if (table && !table.connector) {
          const list = this.memoryInserts.get(table.name.toLowerCase()) ?? [];
          list.push(s);
          this.memoryInserts.set(table.name.toLowerCase(), list);
        }
      }
    }
    for (const s of statements) if (s.kind === "set") this.applySetting(s);
    let queries = 0;
    for (const s of statements) {
      if (s.kind === "insert") {
        queries++;
        this.planInsert(s);
      } else if (s.kind === "select") {
        queries++;
        const rel = this.planQueryText(s.query, new CteEnv(null));
        this.sinks.push({ table: null, input: rel.node, location: lineColumn(this.sql, s.offset) });
      }
    }
    if (queries === 0) {
      throw new SqlError("the SQL declares tables but runs no query; add INSERT INTO <sink> SELECT ... or a SELECT", statements[0]!.offset);
    }
    if (this.sinks.length === 0) {
      throw new SqlError("every query writes to an in-memory table that nothing reads; add a SELECT or INSERT INTO a connector table", null);
    }
    hoistAsyncUdfs({ tables: new Map(), sinks: this.sinks });
    this.validateConnectors();
    const tables = new Map<string, TableDef>();
    for (const table of this.used.keys()) tables.set(table.name, table);
    return { tables, sinks: this.sinks };
  }

  /** `SET updating_ttl = INTERVAL '1' HOUR` (or '1 hour'): how long updating state lives after its key's last change. */
  private applySetting(s: SetOption) {
    const name = s.name.toLowerCase();
    if (name === "updating_ttl_retract") {
      const v = s.value.trim().toLowerCase();
      if (v !== "true" && v !== "false") throw new SqlError("updating_ttl_retract is true or false", s.valueOffset);
      this.updatingTtlRetract = v === "true";
      return;
    }
    if (name !== "updating_ttl") {
      throw new SqlError(
        `unknown setting '${s.name}'${didYouMean(s.name, ["updating_ttl", "updating_ttl_retract"])}; settings: updating_ttl (SET updating_ttl = INTERVAL '1' HOUR), updating_ttl_retract (true: retract an expired aggregate's row)`,
        s.nameOffset,
      );
    }
    const m = /^\s*interval\s+'([^']*)'\s*([a-z]*)\s*$/i.exec(s.value);
    const micros = m ? intervalMicros(m[1]!, m[2]!, s.valueOffset) : intervalMicros(s.value, "", s.valueOffset);
    if (!(micros > 0)) throw new SqlError("updating_ttl must be a positive interval, such as INTERVAL '1' HOUR", s.valueOffset);
    this.updatingTtl = micros;
  }

  private markUsed(table: TableDef, role: "source" | "sink") {
    const roles = this.used.get(table) ?? new Set();
    roles.add(role);
    this.used.set(table, roles);
  }

  private validateConnectors() {
    for (const [table, roles] of this.used) {
      const connector = this.registry.connector(table.connector!);
      const format = table.format ? this.registry.format(table.format.name) : undefined;
      // The format sees the columns it fills: those before the METADATA FROM ones.
      const formatFields = table.metadata ? table.fields.slice(0, table.fields.length - table.metadata.length) : table.fields;
      for (const role of roles) {
        try {
          connector?.validate?.({ name: table.name, options: table.options, fields: table.fields, role, files: this.context.files, format: table.format });
          format?.validate?.({
            options: table.format!.options,
            fields: formatFields,
            table: { name: table.name, role, connector: table.connector, connectorOptions: table.options },
          });
        } catch (err) {
          const offset = this.sql.length > 0 ? this.offsetOf(table) : null;
          throw new SqlError(`table \`${table.name}\`: ${(err as Error).message}`, offset);
        }
      }
    }
  }

  private offsetOf(table: TableDef): number {
    const lines = this.sql.split("\n");
    let offset = 0;
    for (let i = 0; i < table.location.line - 1; i++) offset += lines[i]!.length + 1;
    return offset + table.location.column - 1;
  }

  // ------------------------------------------------------------ statements

  private planInsert(s: Insert) {
    const table = this.tables.get(s.table.toLowerCase());
    if (!table) {
      throw new SqlError(
        `unknown table \`${s.table}\`${didYouMean(s.table, [...this.tables.values()].map((x) => x.name))}; declare it with CREATE TABLE ... WITH (connector = ...)`,
        s.tableOffset,
      );
    }
    if (!table.connector) return; // in-memory: planned where it is read
    const connector = this.registry.connector(table.connector)!;
    if (!connector.sink) throw new SqlError(`connector '${table.connector}' cannot be written to (table \`${table.name}\` is a source)`, s.tableOffset);
    if (table.declaredRole === "source") throw new SqlError(`table \`${table.name}\` is declared with type = 'source'; it cannot be inserted into`, s.tableOffset);
    let rel = this.planQueryText(s.query, new CteEnv(null));
    if (s.columns) throw new SqlError("INSERT with a column list is not supported; select the columns in the table's order", s.tableOffset);
    if (table.inferColumns) {
      if (table.fields.length === 0) table.fields = fieldsOf(rel.scope);
      else rel = this.conform(rel, table, s.tableOffset);
    } else {
      rel = this.conform(rel, table, s.tableOffset);
    }
    if (rel.node.updating) {
      const format = table.format ? this.registry.format(table.format.name) : undefined;
      if (!connector.sink.updating || (table.format && !format?.updating)) {
        throw new SqlError(
          `the query into \`${table.name}\` gives an updating result (GROUP BY without a window, or LEFT JOIN without windows, emits updates and retractions); ` +
            `write it with format = 'debezium_json' to a sink that accepts updates, or GROUP BY a window (tumble, hop, session)`,
          s.tableOffset,
        );
      }
    }
    this.markUsed(table, "sink");
    // A sink table is one sink: every INSERT into it feeds it through a union, so
    // two statements never plan two writers of one file, topic or table.
    const existing = this.sinks.find((target) => target.table === table);
    if (existing) {
      const node = existing.input;
      const inputs = node.kind === "union" && node.mergesInserts ? [...node.inputs, rel.node] : [node, rel.node];
      existing.input = { kind: "union", inputs, schema: node.schema, updating: inputs.some((n) => n.updating), mergesInserts: true };
      return;
    }
    this.sinks.push({ table, input: rel.node, location: lineColumn(this.sql, s.offset) });
  }

  /**
   * Checks a query's columns against a table's: types that differ are cast into the
   * table's when no value can be lost (integer widening, numbers and timestamps to
   * text); a cast that may lose values must be written in the query.
   */
  private conform(rel: Rel, table: TableDef, offset: number): Rel {
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
    return { node: this.mapNode(rel.node, exprs, undefined, want), scope };
  }

  // ------------------------------------------------------------ queries

  private planQueryText(range: TextRange, env: CteEnv): Rel {
    const text = rewriteForParser(this.sql, range.start, range.end);
    const ast = parseAst(text, "the query");
    const stmt = Array.isArray(ast) ? ast[0] : ast;
    if (Array.isArray(ast) && ast.length > 1) throw new SqlError("expected one query; end statements with ;", range.start);
    if (stmt?.type !== "select") throw new SqlError(`expected a SELECT query, found ${String(stmt?.type ?? "nothing").toUpperCase()}`, range.start);
    return this.planQuery(stmt, text, env);
  }

  private planQuery(ast: any, text: RewrittenText, envIn: CteEnv): Rel {
    let env = envIn;
    if (ast.with) {
      env = new CteEnv(envIn);
      for (const w of ast.with) {
        const name = String(w.name?.value ?? w.name);
        env.add(name, { ast: w.stmt?.ast ?? w.stmt, text });
      }
    }
    let rel = this.planSelect(ast, text, env);
    for (let cur = ast; cur._next; cur = cur._next) {
      const op = String(cur.set_op ?? "union").toLowerCase();
      const at = locate({ text }, op.split(" ")[0]!, null);
      if (op !== "union all") throw new SqlError(`${op.toUpperCase()} is not supported in streaming queries; use UNION ALL`, at);
      const right = this.planSelect(cur._next, text, env);
      rel = this.union(rel, right, at);
    }
    return rel;
  }

  private union(left: Rel, right: Rel, at: number | null): Rel {
    const a = left.scope.columns;
    const b = right.scope.columns;
    if (a.length !== b.length) throw new SqlError(`UNION ALL sides have ${a.length} and ${b.length} columns; they must match`, at);
    for (let i = 0; i < a.length; i++) {
      if (!assignable(b[i]!.type, a[i]!.type)) {
        throw new SqlError(`UNION ALL column ${i + 1} is ${typeName(a[i]!.type)} on the left and ${typeName(b[i]!.type)} on the right`, at);
      }
    }
    const inputs = left.node.kind === "union" ? [...left.node.inputs, right.node] : [left.node, right.node];
    const node: PlanNode = {
      kind: "union",
      inputs,
      schema: left.node.schema,
      updating: inputs.some((n) => n.updating),
    };
    return { node, scope: { columns: a.map((c) => ({ ...c, qualifier: undefined })), label: "the union" } };
  }

  private planFrom(ast: any, text: RewrittenText, env: CteEnv): Rel {
    const from = ast.from;
    if (!from || from.length === 0) {
      if (ast.with?.some?.((w: any) => w.recursive) || /^\s*with\s+recursive\b/i.test(text.text)) {
        throw new SqlError("recursive CTEs (WITH RECURSIVE) are not supported; a streaming query reads tables declared with CREATE TABLE", locate({ text }, "recursive", null));
      }
      throw new SqlError(
        "a streaming query needs FROM: read from a table declared with CREATE TABLE",
        astOffset(ast, { text }) ?? positionWithin(ast.columns, { text }) ?? locate({ text }, "select", null),
      );
    }
    let rel = this.planFromItem(from[0], text, env);
    for (const item of from.slice(1)) {
      if (!item.join) {
        const at = locate({ text }, String(item.table ?? ","), null);
        throw new SqlError("comma-separated FROM lists (cross joins) are not supported; write a JOIN ... ON a.key = b.key", at);
      }
      rel = this.planJoin(rel, this.planFromItem(item, text, env), item, text);
    }
    return rel;
  }

  private planFromItem(item: any, text: RewrittenText, env: CteEnv): Rel {
    if (item.expr?.ast) {
      const rel = this.planQuery(item.expr.ast, text, env);
      const alias = aliasOf(item);
      return alias ? { node: rel.node, scope: requalify(rel.scope, alias) } : rel;
    }
    const name = String(item.table);
    const alias = aliasOf(item) ?? name;
    const offset = locate({ text }, name, null);
    const rel = this.relationByName(name, env, offset);
    return { node: rel.node, scope: requalify(rel.scope, alias) };
  }

  /**
   * `left JOIN right ON ...`: the ON condition's equalities between a left-only and
   * a right-only expression become the join key; other conditions of an inner join
   * filter its output. Both sides windowed (the same tumble/hop window) makes a
   * window join with the window in the key; neither side windowed, an updating join.
   */
  private planJoin(left: Rel, right: Rel, item: any, text: RewrittenText): Rel {
    const kind = String(item.join).toUpperCase();
    const at = locate({ text }, "join", null);
    const forms = "supported: [INNER] JOIN and LEFT [OUTER] JOIN ... ON equalities between the two sides";
    let joinType: JoinType;
    if (kind === "JOIN" || kind === "INNER JOIN") joinType = "inner";
    else if (kind === "LEFT JOIN" || kind === "LEFT OUTER JOIN") joinType = "left";
    else if (kind.startsWith("RIGHT")) throw new SqlError(`RIGHT JOIN is not supported; swap the tables and write LEFT JOIN (${forms})`, at);
    else if (kind.startsWith("FULL")) throw new SqlError(`FULL OUTER JOIN is not supported (${forms})`, at);
    else throw new SqlError(`${kind} is not supported (${forms})`, at);
    if (item.using) throw new SqlError(`JOIN ... USING is not supported; write ON a.key = b.key`, at);
    if (!item.on) throw new SqlError(`a JOIN needs ON with an equality between the two sides (a.key = b.key); cross joins are not supported`, at);

    const leftWidth = left.scope.columns.length;
    const rightColumns = right.scope.columns.map((c) => (joinType === "left" ? { ...c, nullable: true } : c));
    const scope: Scope = { columns: [...left.scope.columns, ...rightColumns], label: "the join" };
    const ctx = this.ctx(text, "JOIN ... ON");
    const sideOf = (e: Expr): "left" | "right" | "both" | "none" => {
      let l = false;
      let r = false;
      mapColumns(e, (i) => ((i < leftWidth ? (l = true) : (r = true)), i));
      return l && r ? "both" : l ? "left" : r ? "right" : "none";
    };
    const toRight = (e: Expr) => mapColumns(e, (i) => i - leftWidth);
    const leftKeys: Expr[] = [];
    const rightKeys: Expr[] = [];
    const residual: Expr[] = [];
    const conjuncts: any[] = [];
    const split = (x: any): void => {
      if (x?.type === "binary_expr" && String(x.operator).toUpperCase() === "AND") {
        split(x.left);
        split(x.right);
      } else conjuncts.push(x);
    };
    split(item.on);
    for (const c of conjuncts) {
      if (c?.type === "binary_expr" && c.operator === "=") {
        const a = resolveExpr(c.left, scope, ctx);
        const b = resolveExpr(c.right, scope, ctx);
        const [sa, sb] = [sideOf(a), sideOf(b)];
        const pair = sa === "left" && sb === "right" ? [a, b] : sa === "right" && sb === "left" ? [b, a] : null;
        if (pair) {
          const [l, r] = pair as [Expr, Expr];
          const comparable = l.type.kind === r.type.kind || (isNumeric(l.type) && isNumeric(r.type));
          if (!comparable) throw new SqlError(`the join key compares ${typeName(l.type)} with ${typeName(r.type)}; cast one side`, astOffset(c, { text }) ?? at);
          leftKeys.push(l);
          rightKeys.push(toRight(r));
          continue;
        }
      }
      const e = resolveExpr(c, scope, ctx);
      if (e.type.kind !== "boolean") throw new SqlError(`JOIN ... ON needs boolean conditions, got ${typeName(e.type)}`, astOffset(c, { text }) ?? at);
      if (joinType === "left") {
        throw new SqlError(
          "LEFT JOIN ... ON takes only equalities between the two sides; filter a side in a subquery, or filter the result with WHERE",
          astOffset(c, { text }) ?? at,
        );
      }
      residual.push(e);
    }

    const lw = this.windowColumnOf(left.node);
    const rw = this.windowColumnOf(right.node);
    let window: Extract<PlanNode, { kind: "join" }>["window"];
    if (lw || rw) {
      const shapes = "a window join needs both sides grouped by the same tumble or hop window; an updating join needs neither side windowed";
      if (!lw || !rw) throw new SqlError(`one side of this join is windowed and the other is not (${shapes})`, at);
      if (lw.spec.kind === "session" || rw.spec.kind === "session") throw new SqlError(`session windows cannot be joined, as each key has its own windows (${shapes})`, at);
      if (JSON.stringify(lw.spec) !== JSON.stringify(rw.spec)) throw new SqlError(`the two sides of this join have different windows (${shapes})`, at);
      window = { spec: lw.spec, leftColumn: lw.index, rightColumn: rw.index };
      // The window is part of the key, whether or not ON says a.window = b.window. Its
      // start stands for it: both sides have the same window, and a number hashes faster than a struct.
      const start = (rel: Rel, index: number): Expr => ({
        kind: "field",
        expr: { kind: "column", index, name: "window", type: rel.scope.columns[index]!.type },
        name: "start",
        type: t.timestamp(),
      });
      leftKeys.unshift(start(left, lw.index));
      rightKeys.unshift(start(right, rw.index));
    }
    if (leftKeys.length === 0) {
      throw new SqlError("JOIN ... ON needs an equality between a column of each side (a.key = b.key); cross joins and joins on other conditions are not supported", at);
    }

    const node: PlanNode = {
      kind: "join",
      left: left.node,
      right: right.node,
      joinType,
      leftKeys,
      rightKeys,
      window,
      schema: { fields: fieldsOf(scope) },
      updating: !window && (joinType === "left" || left.node.updating || right.node.updating),
      ttl: window ? undefined : this.updatingTtl,
    };
    if (residual.length === 0) return { node, scope };
    const filter = residual.reduce((a, b): Expr => ({ kind: "call", name: "and", args: [a, b], type: t.boolean() }));
    return { node: this.filterNode(node, scope, filter), scope };
  }

  /** The column carrying a relation's tumble/hop/session window, when it passes one through from a window aggregate. */
  private windowColumnOf(node: PlanNode): { index: number; spec: WindowSpec } | undefined {
    switch (node.kind) {
      case "window_aggregate":
        return { index: node.keys.length, spec: node.window };
      case "map": {
        const inner = this.windowColumnOf(node.input);
        if (!inner) return undefined;
        const index = node.exprs.findIndex((e) => e.kind === "column" && e.index === inner.index);
        return index >= 0 ? { index, spec: inner.spec } : undefined;
      }
      case "join":
        return node.window ? { index: node.window.leftColumn, spec: node.window.spec } : undefined;
      default:
        return undefined;
    }
  }

  private relationByName(name: string, env: CteEnv, offset: number | null): Rel {
    const cte = env.get(name);
    if (cte) {
      if (cte.planning) throw new SqlError(`CTE \`${name}\` refers to itself; recursive queries are not supported`, offset);
      if (!cte.rel) {
        cte.planning = true;
        cte.rel = this.planQuery(cte.ast, cte.text, env);
        cte.planning = false;
      }
      return cte.rel;
    }
    const key = name.toLowerCase();
    const view = this.views.get(key);
    if (view) {
      if (view.planning) throw new SqlError(`view \`${name}\` refers to itself`, offset);
      if (!view.rel) {
        view.planning = true;
        view.rel = this.planQueryText(view.stmt.query, new CteEnv(null));
        view.planning = false;
      }
      return view.rel;
    }
    const table = this.tables.get(key);
    if (!table) {
      const known = [...this.tables.values()].map((x) => x.name).concat([...this.views.values()].map((v) => v.stmt.name));
      throw new SqlError(`unknown table \`${name}\`${didYouMean(name, known)}; declare it with CREATE TABLE`, offset);
    }
    if (!table.connector) return this.memoryTable(table, offset);
    const connector = this.registry.connector(table.connector)!;
    if (!connector.source) throw new SqlError(`connector '${table.connector}' cannot be read from (table \`${table.name}\` is a sink)`, offset);
    if (table.declaredRole === "sink") throw new SqlError(`table \`${table.name}\` is declared with type = 'sink'; it cannot be read`, offset);
    if (table.inferColumns || table.fields.length === 0) {
      throw new SqlError(`table \`${table.name}\` declares no columns; a source needs its columns declared`, offset);
    }
    this.markUsed(table, "source");
    let node = this.sourceNodes.get(table);
    const fields = [...table.fields, ...table.virtual.map((v) => v.field)];
    if (!node) {
      node = { kind: "source", table, schema: { fields }, updating: !!table.changelog };
      if (table.changelog && table.primaryKey) {
        const keys: Expr[] = table.primaryKey.map((i) => ({ kind: "column", index: i, name: fields[i]!.name, type: fields[i]!.type }));
        node = { kind: "changelog", input: node, keys, schema: { fields }, updating: true, ttl: this.updatingTtl };
      }
      this.sourceNodes.set(table, node);
    }
    return { node, scope: { columns: fields.map((f) => ({ ...f, qualifier: table.name })), label: `\`${table.name}\`` } };
  }

  private memoryTable(table: TableDef, offset: number | null): Rel {
    const key = table.name.toLowerCase();
    const state = this.memoryRels.get(key) ?? {};
    this.memoryRels.set(key, state);
    if (state.rel) return state.rel;
    if (state.planning) throw new SqlError(`in-memory table \`${table.name}\` is fed from itself`, offset);
    const inserts = this.memoryInserts.get(key) ?? [];
    if (inserts.length === 0) {
      throw new SqlError(`in-memory table \`${table.name}\` is read but nothing is inserted into it; INSERT INTO it, or give it a connector`, offset);
    }
    state.planning = true;
    let rel: Rel | undefined;
    for (const s of inserts) {
      let part = this.planQueryText(s.query, new CteEnv(null));
      if (table.fields.length === 0) table.fields = fieldsOf(part.scope);
      part = this.conform(part, table, s.tableOffset);
      rel = rel ? this.union(rel, part, s.tableOffset) : part;
    }
    state.planning = false;
    state.rel = { node: rel!.node, scope: { columns: table.fields.map((f) => ({ ...f, qualifier: table.name })), label: `\`${table.name}\`` } };
    return state.rel;
  }

  private mapNode(input: PlanNode, exprs: Expr[], filter: Expr | undefined, fields: Field[]): PlanNode {
    return { kind: "map", input, exprs, filter, schema: { fields }, updating: input.updating };
  }

  /** Keeps the rows of `input` (with columns `scope`) that pass `filter`, unchanged. */
  private filterNode(input: PlanNode, scope: Scope, filter: Expr): PlanNode {
    const identity: Expr[] = scope.columns.map((c, i) => ({ kind: "column", index: i, name: c.name, type: c.type }));
    return this.mapNode(input, identity, filter, fieldsOf(scope));
  }

  private ctx(text: RewrittenText, clause: string, hook?: ExprContext["hook"]): ExprContext {
    return { text, registry: this.registry, clause, hook };
  }

  private isAggregate(ast: any): boolean {
    return ast?.type === "aggr_func" || (ast?.type === "function" && !!this.registry.udaf(functionName(ast)));
  }

  private isWindowCall(ast: any): boolean {
    return ast?.type === "function" && WINDOW_FUNCTIONS.has(functionName(ast));
  }

  /** Whether `ast` holds an aggregate call outside subqueries; remembered per node, as GROUP BY asks it of every subexpression. */
  private containsAggregate(ast: any): boolean {
    if (!ast || typeof ast !== "object") return false;
    const known = this.aggregateMemo.get(ast);
    if (known !== undefined) return known;
    let found = this.isAggregate(ast);
    if (!found) {
      for (const [k, v] of Object.entries(ast)) {
        if (k === "loc" || k === "over" || (v && typeof v === "object" && (v as any).type === "select")) continue;
        if (this.containsAggregate(v)) {
          found = true;
          break;
        }
      }
    }
    this.aggregateMemo.set(ast, found);
    return found;
  }

  private planSelect(ast: any, text: RewrittenText, env: CteEnv): Rel {
    const input = this.planFrom(ast, text, env);
    const items: any[] = ast.columns === "*" ? [{ expr: { type: "column_ref", table: null, column: "*" } }] : ast.columns ?? [];
    if (ast.distinct?.type) throw new SqlError("SELECT DISTINCT is not supported yet; GROUP BY the columns instead", locate({ text }, "distinct", null));
    if (ast.orderby) throw new SqlError("ORDER BY is not supported on unbounded streams (a stream has no end to sort by); remove it, and use min()/max() per window for extremes", locate({ text }, "order", null));
    if (ast.limit?.value?.length) throw new SqlError("LIMIT is not supported on unbounded streams; remove it (a bounded source, e.g. impulse with message_count, ends by itself)", locate({ text }, "limit", null));

    const groupBy: any[] = ast.groupby?.columns ?? (Array.isArray(ast.groupby) ? ast.groupby : []);
    const hasAggregates = items.some((i) => this.containsAggregate(i.expr)) || (ast.having && this.containsAggregate(ast.having));
    const hasWindow = items.some((i) => this.isWindowCall(i.expr)) || groupBy.some((g) => this.isWindowCall(g));
    if (groupBy.length === 0 && !hasAggregates && !hasWindow) {
      if (ast.having) throw new SqlError("HAVING needs GROUP BY or an aggregate", locate({ text }, "having", null));
      return this.planProjection(ast, items, input, text);
    }
    return this.planAggregate(ast, items, groupBy, input, text);
  }

  /** Expands `*` and `t.*`; returns select items as [ast, name] pairs. */
  private expandItems(items: any[], scope: Scope, text: RewrittenText): { ast: any; name: string; direct?: number }[] {
    const out: { ast: any; name: string; direct?: number }[] = [];
    items.forEach((item, i) => {
      const e = item.expr;
      if (e?.type === "column_ref" && columnName(e) === "*") {
        const q = e.table ? String(e.table) : undefined;
        const cols = scope.columns.map((c, idx) => ({ c, idx })).filter(({ c }) => q === undefined || c.qualifier?.toLowerCase() === q.toLowerCase());
        if (cols.length === 0) throw new SqlError(`\`${q}.*\` matches no table in FROM`, locate({ text }, q ?? "*", null));
        for (const { c, idx } of cols) out.push({ ast: null, name: c.name, direct: idx });
        return;
      }
      out.push({ ast: e, name: aliasOf(item) ?? this.deriveName(e, i) });
    });
    // Unique output names, so sinks that take the query's columns get distinct keys.
    const seen = new Map<string, number>();
    for (const o of out) {
      const n = (seen.get(o.name.toLowerCase()) ?? 0) + 1;
      seen.set(o.name.toLowerCase(), n);
      if (n > 1) o.name = `${o.name}_${n}`;
    }
    return out;
  }

  private deriveName(e: any, i: number): string {
    if (e?.type === "column_ref") return columnName(e);
    if (e?.type === "aggr_func") return String(e.name).toLowerCase();
    if (e?.type === "function") return functionName(e);
    if (e?.type === "cast") return this.deriveName(e.expr, i);
    return `column_${i + 1}`;
  }

  private planProjection(ast: any, items: any[], input: Rel, text: RewrittenText): Rel {
    const scope = input.scope;
    let filter: Expr | undefined;
    if (ast.where) {
      filter = resolveExpr(ast.where, scope, this.ctx(text, "WHERE"));
      if (filter.type.kind !== "boolean") throw new SqlError(`WHERE needs a boolean condition, got ${typeName(filter.type)}`, astOffset(ast.where, { text }));
    }
    const selected = this.expandItems(items, scope, text);
    const ctx = this.ctx(text, "the SELECT list");
    const exprs: Expr[] = selected.map((s) => {
      if (s.direct !== undefined) {
        const c = scope.columns[s.direct]!;
        return { kind: "column", index: s.direct, name: c.name, type: c.type };
      }
      return resolveExpr(s.ast, scope, ctx);
    });
    const columns: ScopeColumn[] = selected.map((s, i) => ({
      name: s.name,
      type: exprs[i]!.type,
      nullable: s.direct !== undefined ? scope.columns[s.direct]!.nullable : true,
    }));
    const outScope: Scope = { columns, label: "the query" };
    const identity = !filter && exprs.length === scope.columns.length && exprs.every((e, i) => e.kind === "column" && e.index === i);
    if (identity) return { node: input.node, scope: outScope };
    return { node: this.mapNode(input.node, exprs, filter, fieldsOf(outScope)), scope: outScope };
  }

  private windowSpec(ast: any, text: RewrittenText, scope: Scope): WindowSpec {
    const name = functionName(ast);
    const at = astOffset(ast, { text }) ?? locate({ text }, name, null);
    const args = functionArgs(ast).map((a) => {
      const e = resolveExpr(a, scope, this.ctx(text, `${name}()`));
      if (e.kind !== "literal" || e.type.kind !== "interval") {
        throw new SqlError(`${name}() takes constant intervals such as INTERVAL '1' MINUTE`, at);
      }
      const v = e.value as number;
      if (!(v > 0)) throw new SqlError(`${name}() needs a positive interval`, at);
      return v;
    });
    const want = name === "hop" ? 2 : 1;
    if (args.length !== want) {
      const usage = name === "hop" ? "hop(slide, width)" : `${name}(${name === "session" ? "gap" : "width"})`;
      throw new SqlError(`${name}() takes ${want} interval(s): ${usage}`, at);
    }
    if (name === "tumble") return { kind: "tumble", width: args[0]! };
    if (name === "session") return { kind: "session", gap: args[0]! };
    const [slide, width] = args as [number, number];
    if (slide > width) throw new SqlError(`hop(slide, width): the slide (${slide / 1e6}s) must not exceed the width (${width / 1e6}s)`, at);
    if (width % slide !== 0) throw new SqlError(`hop(slide, width): the width must be a whole multiple of the slide`, at);
    return slide === width ? { kind: "tumble", width } : { kind: "hop", slide, width };
  }

  private aggregateCall(ast: any, scope: Scope, text: RewrittenText): AggregateCall {
    const at = astOffset(ast, { text });
    const isBuiltin = ast.type === "aggr_func";
    const fn = (isBuiltin ? String(ast.name) : functionName(ast)).toLowerCase();
    const ctx = this.ctx(text, `the arguments of ${fn}()`);
    if (isBuiltin && !BUILTIN_AGGREGATES.includes(fn)) {
      const udafs = [...this.registry.udafs.keys()];
      if (!this.registry.udaf(fn)) {
        throw new SqlError(
          `aggregate ${fn}() is not supported by Runnel${didYouMean(fn, [...BUILTIN_AGGREGATES, ...udafs])}; available: ${[...BUILTIN_AGGREGATES, ...udafs].join(", ")} (a UDAF plugin can add ${fn})`,
          at ?? locate({ text }, fn, null),
        );
      }
    }
    const udaf = !BUILTIN_AGGREGATES.includes(fn) ? this.registry.udaf(fn) : undefined;
    const distinct = String(ast.args?.distinct ?? "").toUpperCase() === "DISTINCT";
    let argAsts: any[];
    if (isBuiltin) argAsts = ast.args?.expr ? [ast.args.expr] : ast.args?.value ?? [];
    else argAsts = functionArgs(ast);
    const star = argAsts.length === 1 && (argAsts[0]?.type === "star" || (argAsts[0]?.type === "column_ref" && columnName(argAsts[0]) === "*"));
    if (star && fn !== "count") throw new SqlError(`${fn}(*) is not allowed; only count(*)`, at);
    const args = star ? [] : argAsts.map((a) => resolveExpr(a, scope, ctx));
    for (const a of argAsts) {
      if (!star && this.containsAggregate(a)) throw new SqlError("aggregate functions cannot be nested", at);
    }
    let type: SqlType;
    if (udaf) {
      if (args.length !== udaf.args.length) throw new SqlError(`${fn}() takes ${udaf.args.length} argument(s), got ${args.length}`, at);
      type = udaf.returns;
    } else {
      if (!star && args.length !== 1) throw new SqlError(`${fn}() takes one argument`, at);
      const arg = args[0]?.type;
      switch (fn) {
        case "count":
          type = t.bigint();
          break;
        case "sum":
          if (arg!.kind === "int") type = { kind: "int", bits: 64, ...(arg!.unsigned ? { unsigned: true } : {}) };
          else if (arg!.kind === "interval") type = t.interval();
          else if (isNumeric(arg!)) type = t.double();
          else throw new SqlError(`sum() needs numbers, got ${typeName(arg!)}`, at);
          break;
        case "avg":
          if (!isNumeric(arg!)) throw new SqlError(`avg() needs numbers, got ${typeName(arg!)}`, at);
          type = t.double();
          break;
        default:
          if (arg!.kind === "struct" || arg!.kind === "array") throw new SqlError(`${fn}() cannot compare ${typeName(arg!)} values`, at);
          type = arg!;
      }
    }
    let filter: Expr | undefined;
    if (ast.filter?.where) {
      if (this.containsAggregate(ast.filter.where)) throw new SqlError("FILTER (WHERE ...) of an aggregate cannot contain aggregate functions", astOffset(ast.filter.where, { text }) ?? at);
      filter = resolveExpr(ast.filter.where, scope, this.ctx(text, `FILTER of ${fn}()`));
      if (filter.type.kind !== "boolean") {
        throw new SqlError(`FILTER (WHERE ...) of ${fn}() needs a boolean condition, got ${typeName(filter.type)}`, astOffset(ast.filter.where, { text }) ?? at);
      }
    }
    return { fn, args, distinct, star, filter, type };
  }

  /** Identifies an aggregate call, so the same call in SELECT and HAVING is computed once. */
  private aggregateKey(call: AggregateCall): string {
    const name = call.fn + (call.distinct ? ":distinct" : "") + (call.star ? ":star" : "");
    const filter = call.filter ? `:filter(${exprKey(call.filter)})` : "";
    return exprKey({ kind: "call", name: name + filter, args: call.args, type: call.type });
  }

  private planAggregate(ast: any, items: any[], groupBy: any[], inputIn: Rel, text: RewrittenText): Rel {
    let input = inputIn;
    const scope = input.scope;
    if (ast.where) {
      const filter = resolveExpr(ast.where, scope, this.ctx(text, "WHERE"));
      if (filter.type.kind !== "boolean") throw new SqlError(`WHERE needs a boolean condition, got ${typeName(filter.type)}`, astOffset(ast.where, { text }));
      input = { node: this.filterNode(input.node, scope, filter), scope };
    }

    // GROUP BY: one optional window, then keys (which may name SELECT aliases).
    let window: { spec: WindowSpec; ast: any; alias?: string } | undefined;
    const keys: Expr[] = [];
    const keyNames: (ScopeColumn | undefined)[] = [];
    const aliasItems = new Map<string, any>();
    for (const item of items) {
      const alias = aliasOf(item);
      if (alias) aliasItems.set(alias.toLowerCase(), item.expr);
    }
    const keyCtx = this.ctx(text, "GROUP BY");
    for (const g of groupBy) {
      let target = g;
      let viaAlias: string | undefined;
      if (g?.type === "column_ref" && !g.table) {
        const name = columnName(g);
        const inInput = scope.columns.some((c) => c.name.toLowerCase() === name.toLowerCase());
        if (!inInput && aliasItems.has(name.toLowerCase())) {
          target = aliasItems.get(name.toLowerCase());
          viaAlias = name;
        }
      }
      if (g?.type === "number") {
        const pos = Number(g.value);
        const item = items[pos - 1];
        if (!item) throw new SqlError(`GROUP BY ${pos}: the SELECT list has ${items.length} items`, astOffset(g, { text }));
        target = item.expr;
      }
      if (this.isWindowCall(target)) {
        if (window) throw new SqlError("GROUP BY can hold one window (tumble, hop or session)", astOffset(target, { text }));
        window = { spec: this.windowSpec(target, text, scope), ast: target, alias: viaAlias };
        continue;
      }
      if (this.containsAggregate(target)) throw new SqlError("GROUP BY cannot contain aggregate functions", astOffset(target, { text }));
      const e = resolveExpr(target, scope, keyCtx, astOffset(g, { text }));
      if (e.type.kind === "struct" && e.kind === "column" && e.name.toLowerCase() === "window") {
        throw new SqlError(
          "grouping by a window from a subquery is not supported yet; aggregate in one level (GROUP BY the window and the keys there), " +
            "or join the windowed aggregates on their window (a window join)",
          astOffset(g, { text }) ?? locate({ text }, e.name, null),
        );
      }
      keys.push(e);
      const source = e.kind === "column" ? scope.columns[e.index] : undefined;
      const named = viaAlias ?? (target?.type === "column_ref" ? columnName(target) : undefined);
      keyNames.push(named ? { name: named, qualifier: source?.qualifier, type: e.type, nullable: source?.nullable ?? true } : undefined);
    }
    // A window selected but missing from GROUP BY.
    for (const item of items) {
      if (this.isWindowCall(item.expr) && (!window || exprKey(this.windowExprKey(item.expr)) !== exprKey(this.windowExprKey(window.ast)))) {
        const at = astOffset(item.expr, { text });
        if (!window) throw new SqlError(`${functionName(item.expr)}() must also appear in GROUP BY (GROUP BY ${aliasOf(item) ?? "window"}, ...)`, at);
        throw new SqlError("the window in the SELECT list differs from the one in GROUP BY", at);
      }
    }

    // Aggregates from SELECT and HAVING, deduplicated.
    const aggregates: AggregateCall[] = [];
    const aggIndex = new Map<string, number>();
    const collect = (x: any) =>
      walk(x, (n) => {
        if (this.isAggregate(n)) {
          const call = this.aggregateCall(n, input.scope, text);
          const key = this.aggregateKey(call);
          if (!aggIndex.has(key)) {
            aggIndex.set(key, aggregates.length);
            aggregates.push(call);
          }
          return false;
        }
      });
    for (const item of items) collect(item.expr);
    if (ast.having) collect(ast.having);

    // Output of the aggregate: [...keys, window?, ...aggregates].
    const windowSlot = window ? keys.length : -1;
    const aggBase = keys.length + (window ? 1 : 0);
    const windowType = t.struct([
      { name: "start", type: t.timestamp(), nullable: false },
      { name: "end", type: t.timestamp(), nullable: false },
    ]);
    const aggFields: Field[] = [
      ...keys.map((k, i) => ({ name: keyNames[i]?.name ?? `key_${i}`, type: k.type, nullable: true })),
      ...(window ? [{ name: window.alias ?? "window", type: windowType, nullable: false }] : []),
      ...aggregates.map((a, i) => ({ name: `${a.fn}_${i}`, type: a.type, nullable: true })),
    ];
    if (window && input.node.updating) {
      throw new SqlError("a windowed aggregate cannot read an updating result (the output of GROUP BY without a window)", astOffset(window.ast, { text }));
    }
    const node: PlanNode = window
      ? { kind: "window_aggregate", input: input.node, window: window.spec, keys, aggregates, schema: { fields: aggFields }, updating: false }
      : { kind: "updating_aggregate", input: input.node, keys, aggregates, schema: { fields: aggFields }, updating: true, ttl: this.updatingTtl, ttlRetract: this.updatingTtlRetract };

    // After aggregation: names resolve to keys, the window and aggregates.
    const groupedColumns: ScopeColumn[] = aggFields.map((f, i) => {
      if (i < keys.length) return keyNames[i] ?? { name: `\u0000key${i}`, type: f.type, nullable: true };
      if (i === windowSlot) return { name: window!.alias ?? "window", type: f.type, nullable: false };
      return { name: `\u0000agg${i}`, type: f.type, nullable: true };
    });
    const grouped: Scope = { columns: groupedColumns, label: "the grouped result" };
    const keyKeys = keys.map(exprKey);
    const column = (i: number): Expr => ({ kind: "column", index: i, name: aggFields[i]!.name, type: aggFields[i]!.type });
    const hook = (x: any, hint: number | null): Expr | undefined => {
      if (this.isAggregate(x)) {
        const call = this.aggregateCall(x, input.scope, text);
        return column(aggBase + aggIndex.get(this.aggregateKey(call))!);
      }
      if (this.isWindowCall(x)) return column(windowSlot);
      if (x && typeof x === "object" && x.type && !this.containsAggregate(x) && x.type !== "number" && !String(x.type).includes("string") && x.type !== "bool" && x.type !== "null" && x.type !== "interval") {
        let resolved: Expr | undefined;
        try {
          resolved = resolveExpr(x, input.scope, this.ctx(text, "GROUP BY"), hint);
        } catch {
          resolved = undefined;
        }
        if (resolved) {
          const k = keyKeys.indexOf(exprKey(resolved));
          if (k >= 0) return column(k);
          if (x.type === "column_ref" && !(window && columnName(x).toLowerCase() === (window.alias ?? "window").toLowerCase())) {
            const name = columnName(x);
            throw new SqlError(
              `column \`${name}\` must appear in GROUP BY or be used in an aggregate function`,
              locate({ text }, name, hint),
            );
          }
        }
      }
      return undefined;
    };
    const ctx = this.ctx(text, "the SELECT list", hook);
    // `*` after GROUP BY would silently mean only the grouped columns.
    if (items.some((item) => item.expr?.type === "column_ref" && columnName(item.expr) === "*")) {
      throw new SqlError("SELECT * cannot be used with GROUP BY; list the grouped columns and aggregates", locate({ text }, "*", null));
    }
    const selected = this.expandItems(items, grouped, text);
    const exprs = selected.map((s) => {
      if (s.direct !== undefined) {
        if (s.direct >= aggBase || groupedColumns[s.direct]!.name.startsWith("\u0000")) {
          throw new SqlError("SELECT * cannot be used with GROUP BY; list the grouped columns and aggregates", locate({ text }, "*", null));
        }
        return column(s.direct);
      }
      return resolveExpr(s.ast, grouped, ctx);
    });
    let having: Expr | undefined;
    if (ast.having) {
      having = resolveExpr(ast.having, grouped, { ...ctx, clause: "HAVING" });
      if (having.type.kind !== "boolean") throw new SqlError(`HAVING needs a boolean condition, got ${typeName(having.type)}`, astOffset(ast.having, { text }));
    }
    const columns: ScopeColumn[] = selected.map((s, i) => ({ name: s.name, type: exprs[i]!.type, nullable: true }));
    const outScope: Scope = { columns, label: "the query" };
    return { node: this.mapNode(node, exprs, having, fieldsOf(outScope)), scope: outScope };
  }

  private windowExprKey(ast: any): Expr {
    return { kind: "call", name: functionName(ast), args: [], type: t.string() };
  }
}

export function planSqlText(sql: string, registry: PluginRegistry, context: PlanContext = {}): LogicalPipeline {
  return new Planner(sql, registry, context).plan();
}
