/**
 * Plans a SQL script into a LogicalPipeline: tables and views are registered in
 * order, each INSERT and bare SELECT becomes a sink fed by a plan of sources,
 * filter/projection maps, windowed or updating aggregates and unions. Views,
 * CTEs and in-memory tables are inlined; a table read twice is read once.
 */
import type { LogicalPipeline, PlanNode, SinkTarget, TableDef } from "../plan/logical.ts";
import type { PluginRegistry } from "../registry/registry.ts";
import { fuseMaps } from "./fuse-maps.ts";
import { pushFiltersBelowJoins } from "./push-filters.ts";
import { pruneAggregateInputs, pruneJoinInputs, pruneSourceColumns } from "./prune-columns.ts";
import { dropUnreadRankings, pruneWindowFunctionInputs } from "./planner/window-functions.ts";
import { hoistAsyncUdfs } from "./async-udfs.ts";
import { didYouMean, SqlError } from "./errors.ts";
import { intervalMicros } from "./expressions.ts";
import { lineColumn } from "./lexer.ts";
import { CteEnv, type QueryPlanner, type Rel } from "./planner/context.ts";
import { planQueryText } from "./planner/query.ts";
import { planInsert } from "./planner/sinks.ts";
import { parseStatements, type CreateView, type Insert, type SetOption } from "./statements.ts";
import { buildTable, type PlanContext } from "./tables.ts";

/**
 * The statements of a script (DataFusion's statement.rs): declarations first,
 * then settings, then each INSERT and bare SELECT planned into a sink. The
 * queries themselves are planned by the modules under planner/.
 */
export class Planner implements QueryPlanner {
  readonly tables = new Map<string, TableDef>();
  readonly views = new Map<string, { stmt: CreateView; rel?: Rel; planning?: boolean }>();
  readonly memoryInserts = new Map<string, Insert[]>();
  readonly memoryRels = new Map<string, { rel?: Rel; planning?: boolean }>();
  readonly sourceNodes = new Map<TableDef, PlanNode>();
  private readonly sinks: SinkTarget[] = [];
  private readonly used = new Map<TableDef, Set<"source" | "sink" | "lookup">>();
  updatingTtl: number | undefined;
  updatingTtlRetract = false;

  constructor(
    readonly sql: string,
    readonly registry: PluginRegistry,
    readonly context: PlanContext = {},
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
        planInsert(this, s, this.sinks);
      } else if (s.kind === "select") {
        queries++;
        const rel = planQueryText(this, s.query, new CteEnv(null));
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
    // Before maps fuse: a filter moved onto a join's side then fuses with that side's projection.
    pushFiltersBelowJoins({ tables: new Map(), sinks: this.sinks });
    fuseMaps({ tables: new Map(), sinks: this.sinks });
    pruneAggregateInputs({ tables: new Map(), sinks: this.sinks });
    // Before joins narrow: a window function's narrowed input is a projection over a join (q9).
    pruneWindowFunctionInputs({ tables: new Map(), sinks: this.sinks });
    dropUnreadRankings({ tables: new Map(), sinks: this.sinks });
    // Before the sources learn what is read: a join's narrowed sides read fewer columns.
    pruneJoinInputs({ tables: new Map(), sinks: this.sinks });
    pruneSourceColumns({ tables: new Map(), sinks: this.sinks }, this.registry);
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

  markUsed(table: TableDef, role: "source" | "sink" | "lookup") {
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
          const primaryKey = table.primaryKey?.map((i) => table.fields[i]!.name);
          connector?.validate?.({ name: table.name, options: table.options, fields: table.fields, role, primaryKey, metadata: table.metadata, files: this.context.files, format: table.format });
          format?.validate?.({
            options: table.format!.options,
            fields: formatFields,
            // A lookup reads records as a source does.
            table: { name: table.name, role: role === "sink" ? "sink" : "source", connector: table.connector, connectorOptions: table.options },
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

}

export function planSqlText(sql: string, registry: PluginRegistry, context: PlanContext = {}): LogicalPipeline {
  return new Planner(sql, registry, context).plan();
}
