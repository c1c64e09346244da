/**
 * CREATE TABLE → TableDef: finds the connector and format in the registry,
 * validates every WITH option against their schemas (unknown or misspelt
 * options name themselves and list the valid ones), and resolves generated
 * columns and the watermark.
 */
import { t, typeName, type Field, type FileAccess, type OptionsShape } from "../plugin-api/index.ts";
import { parseDurationMicros } from "../plugin-api/options.ts";
import type { Expr } from "../expr/expr.ts";
import type { TableDef } from "../plan/logical.ts";
import type { PluginRegistry } from "../registry/registry.ts";
import { closest, didYouMean, SqlError } from "./errors.ts";
import { LOOKUP_OPTIONS, lookupRole, lookupSettings } from "./lookup-tables.ts";

const hint = (key: string, valid: string[]) => {
  const hit = closest(key, valid);
  return hit ? ` (did you mean '${hit}'?)` : "";
};
import { resolveExpr, type Scope } from "./expressions.ts";
import { lineColumn } from "./lexer.ts";
import { parseExpression } from "./parse.ts";
import type { ColumnDecl, CreateTable, OptionDecl, TextRange } from "./statements.ts";

/** Options every table has, handled by the engine rather than by its connector. */
export const COMMON_OPTIONS = [
  "connector", "type", "format", "bad_data", "idle_micros", "event_time_field", "watermark_field", "connection_profile", ...LOOKUP_OPTIONS,
] as const;

/** What planning may look up outside the SQL text. */
export interface PlanContext {
  /** Options of a named connection profile (`connection_profile = 'name'`), or undefined if none has that name. */
  connectionProfile?: (name: string) => { connector: string; options: Record<string, string> } | undefined;
  /** Values for `{{ VAR }}` in option values; without it they stay as written. */
  env?: Record<string, string | undefined>;
  /** Which variables `{{ VAR }}` may name; absent, any. Checked even without `env` (validation). */
  envPolicy?: EnvPolicy;
  /** Local files the pipeline may use, handed to connectors' `validate`; absent, any. */
  files?: FileAccess;
}

/** The variables a pipeline may read through `{{ VAR }}` (the control plane's allowlist). */
export interface EnvPolicy {
  allows(name: string): boolean;
  /** Ends a refusal: how to allow a variable. */
  hint: string;
}

export const ENV_REF = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;

/**
 * Replaces `{{ VAR }}` in an option value from the environment, naming the
 * option when a variable is unset or not allowed. The refusal never shows the
 * variable's value.
 */
function substituteEnv(o: OptionDecl, context: PlanContext): OptionDecl {
  if (!o.value.includes("{{")) return o;
  const { env, envPolicy } = context;
  const value = o.value.replace(ENV_REF, (ref, name: string) => {
    if (envPolicy && !envPolicy.allows(name)) {
      throw new SqlError(`option '${o.key}' refers to the environment variable ${name}, which pipelines may not read here; ${envPolicy.hint}`, o.valueOffset, o.key);
    }
    if (!env) return ref;
    const v = env[name];
    if (v === undefined) {
      throw new SqlError(`option '${o.key}' refers to the environment variable ${name}, which is not set; set it where the pipeline runs`, o.valueOffset, o.key);
    }
    return v;
  });
  return { ...o, value };
}

export const DEFAULT_IDLE_MICROS = 5 * 60 * 1_000_000;

/** Parses an expression written inside DDL (GENERATED ... AS, WATERMARK ... AS). */
export function parseDdlExpr(sql: string, range: TextRange, scope: Scope, registry: PluginRegistry, clause: string): Expr {
  return resolveExpr(parseExpression(sql, range, clause), scope, { registry, clause });
}

function validateOptions(
  shape: OptionsShape,
  given: Map<string, OptionDecl>,
  owner: string,
  extraValid: string[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, decl] of given) {
    const spec = shape[key];
    if (!spec) {
      const valid = [...Object.keys(shape), ...extraValid];
      throw new SqlError(
        `unknown option '${key}' for ${owner}${hint(key, valid)}. Valid options: ${valid.sort().join(", ")}`,
        decl.keyOffset,
        key,
      );
    }
    try {
      out[key] = spec.parse(decl.value);
    } catch (err) {
      throw new SqlError(`option '${key}' of ${owner}: ${(err as Error).message}`, decl.valueOffset, key);
    }
  }
  for (const [key, spec] of Object.entries(shape)) {
    if (key in out) continue;
    if (spec.default !== undefined) out[key] = spec.default;
    else if (spec.required) {
      throw new SqlError(`${owner} needs option '${key}'${spec.description ? ` (${spec.description})` : ""}`, null, key);
    }
  }
  return out;
}

/**
 * `col TYPE METADATA FROM 'key'` columns, checked against the keys and types
 * the connector offers. They are read-only and come after the format's columns.
 */
function metadataColumns(declared: ColumnDecl[], connector: ReturnType<PluginRegistry["connector"]>): { key: string; field: Field }[] {
  const out: { key: string; field: Field }[] = [];
  for (const c of declared) {
    if (c.metadata === undefined) continue;
    const offered = connector?.metadata ?? {};
    const keys = Object.keys(offered);
    if (keys.length === 0) {
      throw new SqlError(`column \`${c.name}\`: METADATA FROM is not supported by connector '${connector?.name ?? "memory"}'`, c.offset);
    }
    const spec = offered[c.metadata];
    if (!spec) {
      throw new SqlError(
        `column \`${c.name}\`: connector '${connector!.name}' has no metadata '${c.metadata}'${hint(c.metadata, keys)}; it offers ${keys.map((k) => `'${k}' (${typeName(offered[k]!.type)})`).join(", ")}`,
        c.offset,
      );
    }
    if (spec.type.kind !== c.type.kind) {
      throw new SqlError(`column \`${c.name}\`: metadata '${c.metadata}' is ${typeName(spec.type)}; declare the column as ${typeName(spec.type)}`, c.offset);
    }
    out.push({ key: c.metadata, field: { name: c.name, type: c.type, nullable: c.nullable } });
  }
  return out;
}

export function buildTable(sql: string, decl: CreateTable, registry: PluginRegistry, context: PlanContext = {}): TableDef {
  const options = new Map<string, OptionDecl>();
  for (const o of decl.options) {
    if (options.has(o.key)) throw new SqlError(`option '${o.key}' is given twice`, o.keyOffset, o.key);
    options.set(o.key, substituteEnv(o, context));
  }
  const take = (key: string) => {
    const o = options.get(key);
    options.delete(key);
    return o;
  };
  // A connection profile supplies options the table doesn't set itself (brokers, credentials...).
  const profileOpt = take("connection_profile");
  if (profileOpt) {
    const profile = context.connectionProfile?.(profileOpt.value);
    if (!profile) {
      throw new SqlError(
        `unknown connection profile '${profileOpt.value}'${context.connectionProfile ? "; create it first (createConnectionProfile)" : "; connection profiles exist only in the control plane"}`,
        profileOpt.valueOffset,
        "connection_profile",
      );
    }
    const connectorName = options.get("connector")?.value;
    if (connectorName && connectorName !== profile.connector) {
      throw new SqlError(
        `connection profile '${profileOpt.value}' is for connector '${profile.connector}', not '${connectorName}'`,
        profileOpt.valueOffset,
        "connection_profile",
      );
    }
    for (const [key, value] of Object.entries(profile.options)) {
      if (options.has(key)) continue;
      const o = { key, value, keyOffset: profileOpt.valueOffset, valueOffset: profileOpt.valueOffset };
      options.set(key, substituteEnv(o, context));
    }
    if (!connectorName) options.set("connector", { key: "connector", value: profile.connector, keyOffset: profileOpt.valueOffset, valueOffset: profileOpt.valueOffset });
  }
  const connectorOpt = take("connector");
  const typeOpt = take("type");
  const formatOpt = take("format");
  const badDataOpt = take("bad_data");
  const idleOpt = take("idle_micros");
  const eventTimeOpt = take("event_time_field");
  const watermarkOpt = take("watermark_field");
  const cacheBytesOpt = take("lookup.cache.max_bytes");
  const cacheTtlOpt = take("lookup.cache.ttl");
  const where = (o: OptionDecl | undefined) => o?.valueOffset ?? decl.nameOffset;

  let declaredRole: TableDef["declaredRole"];
  if (lookupRole(decl, typeOpt, [cacheBytesOpt, cacheTtlOpt], registry)) declaredRole = "lookup";
  else if (typeOpt) {
    const v = typeOpt.value.toLowerCase();
    if (v !== "source" && v !== "sink") throw new SqlError(`option 'type' must be 'source', 'sink' or 'lookup', got '${typeOpt.value}'`, typeOpt.valueOffset, "type");
    declaredRole = v;
  }
  let badData: "fail" | "drop" = "drop";
  if (badDataOpt) {
    const v = badDataOpt.value.toLowerCase();
    if (v !== "fail" && v !== "drop") throw new SqlError(`option 'bad_data' must be 'fail' or 'drop', got '${badDataOpt.value}'`, badDataOpt.valueOffset, "bad_data");
    badData = v;
  }
  let idleMicros: number | null = DEFAULT_IDLE_MICROS;
  if (idleOpt) {
    let v: number;
    try {
      v = parseDurationMicros(idleOpt.value, 1);
    } catch (err) {
      throw new SqlError(`option 'idle_micros': ${(err as Error).message}`, idleOpt.valueOffset, "idle_micros");
    }
    if (v < 0 && v !== -1) throw new SqlError(`option 'idle_micros' must be positive, or -1 to disable idleness`, idleOpt.valueOffset, "idle_micros");
    idleMicros = v === -1 ? null : v;
  }

  const connectorName = connectorOpt?.value;
  const connector = connectorName ? registry.connector(connectorName) : undefined;
  if (connectorName && !connector) {
    const known = [...registry.connectors.keys()];
    throw new SqlError(
      `unknown connector '${connectorName}'${didYouMean(connectorName, known)}; available connectors: ${known.sort().join(", ") || "none"} (plugins add more)`,
      connectorOpt!.valueOffset,
      "connector",
    );
  }

  let format: TableDef["format"];
  if (formatOpt) {
    const def = registry.format(formatOpt.value);
    if (!def) {
      const known = [...registry.formats.keys()];
      throw new SqlError(
        `unknown format '${formatOpt.value}'${didYouMean(formatOpt.value, known)}; available formats: ${known.sort().join(", ")}`,
        formatOpt.valueOffset,
        "format",
      );
    }
    // Format options: prefixed (`json.timestamp_format`) or bare (`timestamp_format`).
    const mine = new Map<string, OptionDecl>();
    for (const [key, o] of [...options]) {
      const prefix = `${def.name}.`;
      const bare = key.startsWith(prefix) ? key.slice(prefix.length) : key;
      if (key.startsWith(prefix) || (bare in def.options && !(connector && key in connector.options))) {
        mine.set(bare, o);
        options.delete(key);
      }
    }
    format = { name: def.name, options: validateOptions(def.options, mine, `format '${def.name}'`, []) };
  } else if (connector?.needsFormat) {
    const known = [...registry.formats.keys()];
    throw new SqlError(
      `connector '${connector.name}' needs a format; add format = '${known.includes("json") ? "json" : known[0] ?? "json"}' to the WITH options`,
      decl.nameOffset,
      "format",
    );
  }

  let connectorOptions: Record<string, unknown> = {};
  if (connector) {
    // The lookup cache options are named only where the connector can be a lookup table.
    const common = connector.lookup ? COMMON_OPTIONS : COMMON_OPTIONS.filter((o) => !(LOOKUP_OPTIONS as readonly string[]).includes(o));
    const extra = [...common, ...(format ? Object.keys(registry.format(format.name)!.options) : [])];
    connectorOptions = validateOptions(connector.options, options, `connector '${connector.name}'`, extra);
  } else if (options.size > 0) {
    const [key, o] = [...options][0]!;
    throw new SqlError(`option '${key}' needs a connector; add connector = '...' (a table without connector is kept in memory)`, o.keyOffset, key);
  }

  // Columns: declared, or the connector's own, or (for sinks) the query's.
  const declared = decl.columns ?? [];
  const physicalDecls = declared.filter((c) => !c.generated && c.metadata === undefined);
  const generatedDecls = declared.filter((c) => c.generated);
  const metadataFields = metadataColumns(declared, connector);
  let fields: Field[];
  const provided = connector?.columns?.(connectorOptions as any);
  if (provided) {
    if (physicalDecls.length === 0) fields = provided;
    else {
      fields = physicalDecls.map((c) => {
        const f = provided.find((p) => p.name === c.name) ?? provided.find((p) => p.name.toLowerCase() === c.name.toLowerCase());
        if (!f) {
          throw new SqlError(
            `connector '${connector!.name}' has no column \`${c.name}\`${didYouMean(c.name, provided.map((p) => p.name))}; it provides ${provided.map((p) => p.name).join(", ")}`,
            c.offset,
          );
        }
        return { ...f, nullable: f.nullable && c.nullable };
      });
    }
  } else if (format?.options.unstructured === true && physicalDecls.length === 0) {
    fields = [{ name: "value", type: t.string(), nullable: false }];
  } else {
    fields = physicalDecls.map((c) => ({ name: c.name, type: c.type, nullable: c.nullable }));
  }
  // The connector appends metadata values after the format's columns.
  if (metadataFields.length > 0) fields = [...fields, ...metadataFields.map((m) => m.field)];
  const seen = new Set<string>();
  for (const c of declared) {
    if (seen.has(c.name.toLowerCase())) throw new SqlError(`column \`${c.name}\` is declared twice`, c.offset);
    seen.add(c.name.toLowerCase());
  }

  const location = lineColumn(sql, decl.offset);
  const table: TableDef = {
    name: decl.name,
    connector: connector?.name,
    fields,
    virtual: [],
    options: connectorOptions,
    format,
    badData,
    idleMicros,
    declaredRole,
    inferColumns: decl.columns === null && !provided && fields.length === 0,
    location,
  };
  if (metadataFields.length > 0) table.metadata = metadataFields.map((m) => m.key);
  if (format && registry.format(format.name)?.updating) table.changelog = true;
  if (decl.primaryKey) {
    table.primaryKey = decl.primaryKey.columns.map((c) => {
      const i = fields.findIndex((f) => f.name.toLowerCase() === c.name.toLowerCase());
      if (i < 0) throw new SqlError(`PRIMARY KEY: \`${decl.name}\` has no column \`${c.name}\`${didYouMean(c.name, fields.map((f) => f.name))}`, c.offset);
      return i;
    });
  }

  const physicalScope: Scope = { columns: fields.map((f) => ({ ...f, qualifier: decl.name })), label: `\`${decl.name}\`` };
  for (const c of generatedDecls) {
    const expr = parseDdlExpr(sql, c.generated!, physicalScope, registry, `the generated column \`${c.name}\``);
    table.virtual.push({ field: { name: c.name, type: c.type, nullable: c.nullable }, expr: expr.type.kind === c.type.kind ? expr : { kind: "cast", expr, type: c.type } });
  }

  // Event time and watermark, over the full row (physical + generated).
  const all = [...fields, ...table.virtual.map((v) => v.field)];
  const fullScope: Scope = { columns: all.map((f) => ({ ...f, qualifier: decl.name })), label: `\`${decl.name}\`` };
  const timeColumn = (name: string, offset: number, what: string): Expr => {
    const i = all.findIndex((f) => f.name === name) >= 0 ? all.findIndex((f) => f.name === name) : all.findIndex((f) => f.name.toLowerCase() === name.toLowerCase());
    if (i < 0) throw new SqlError(`${what}: unknown column \`${name}\` in \`${decl.name}\`${didYouMean(name, all.map((f) => f.name))}`, offset);
    if (all[i]!.type.kind !== "timestamp") throw new SqlError(`${what}: column \`${name}\` is ${typeName(all[i]!.type)}; event time must be a TIMESTAMP`, offset);
    return { kind: "column", index: i, name: all[i]!.name, type: all[i]!.type };
  };
  if (decl.watermark) {
    table.eventTime = timeColumn(decl.watermark.column, decl.watermark.offset, "WATERMARK FOR");
    if (decl.watermark.expr) {
      const w = parseDdlExpr(sql, decl.watermark.expr, fullScope, registry, "the WATERMARK expression");
      if (w.type.kind !== "timestamp") throw new SqlError(`the WATERMARK expression must give a TIMESTAMP, not ${typeName(w.type)}`, decl.watermark.expr.start);
      table.watermark = w;
    }
  }
  if (eventTimeOpt) {
    if (table.eventTime) throw new SqlError("use either WATERMARK FOR or event_time_field, not both", eventTimeOpt.keyOffset, "event_time_field");
    table.eventTime = timeColumn(eventTimeOpt.value, where(eventTimeOpt), "option 'event_time_field'");
  }
  if (watermarkOpt) {
    if (table.watermark) throw new SqlError("the watermark is already given by WATERMARK FOR ... AS", watermarkOpt.keyOffset, "watermark_field");
    table.watermark = timeColumn(watermarkOpt.value, where(watermarkOpt), "option 'watermark_field'");
  }
  if (declaredRole === "lookup") {
    table.lookup = lookupSettings(table, decl, cacheBytesOpt, cacheTtlOpt, typeOpt?.valueOffset ?? decl.temporaryAt ?? decl.nameOffset, registry);
  }
  return table;
}
