/**
 * Lookup tables: a table declared with `type = 'lookup'` (or, as Arroyo writes
 * it, CREATE TEMPORARY TABLE) is read by key through its connector's `lookup`
 * when joined, never as a stream. Here its declaration is checked and its
 * cache options (`lookup.cache.max_bytes`, `lookup.cache.ttl`, Arroyo's names)
 * are read.
 */
import { parseDurationMicros, parseSizeBytes } from "../plugin-api/options.ts";
import type { LookupCacheSettings, TableDef } from "../plan/logical.ts";
import type { PluginRegistry } from "../registry/registry.ts";
import { SqlError } from "./errors.ts";
import type { CreateTable, OptionDecl } from "./statements.ts";

export const LOOKUP_OPTIONS = ["lookup.cache.max_bytes", "lookup.cache.ttl"] as const;

/** Arroyo's default: 8 MiB per subtask. */
export const DEFAULT_LOOKUP_CACHE_BYTES = 8 * 1024 * 1024;

export function lookupConnectorNames(registry: PluginRegistry): string[] {
  return [...registry.connectors.values()].filter((c) => c.lookup).map((c) => c.name).sort();
}

/**
 * The role the declaration gives: 'lookup' from `type` or TEMPORARY; checks
 * that the connector can look up and that the cache options are only on
 * lookup tables.
 */
export function lookupRole(
  decl: CreateTable,
  typeOpt: OptionDecl | undefined,
  cacheOpts: (OptionDecl | undefined)[],
  registry: PluginRegistry,
): boolean {
  const typed = typeOpt?.value.toLowerCase() === "lookup";
  if (decl.temporaryAt !== undefined && typeOpt && !typed) {
    throw new SqlError(`a TEMPORARY table is a lookup table; remove option type = '${typeOpt.value}' or write type = 'lookup'`, typeOpt.valueOffset, "type");
  }
  const lookup = typed || decl.temporaryAt !== undefined;
  if (!lookup) {
    const given = cacheOpts.find((o) => o !== undefined);
    if (given) throw new SqlError(`option '${given.key}' applies to lookup tables; add type = 'lookup' to read this table by key in joins`, given.keyOffset, given.key);
    return false;
  }
  return true;
}

/** Checks a lookup table once built and reads its cache settings. */
export function lookupSettings(
  table: TableDef,
  decl: CreateTable,
  maxBytesOpt: OptionDecl | undefined,
  ttlOpt: OptionDecl | undefined,
  where: number,
  registry: PluginRegistry,
): LookupCacheSettings {
  const connector = table.connector ? registry.connector(table.connector) : undefined;
  if (!connector?.lookup) {
    const names = lookupConnectorNames(registry);
    throw new SqlError(
      `table \`${table.name}\`: ${connector ? `connector '${connector.name}'` : "an in-memory table"} cannot be a lookup table; lookup connectors: ${names.join(", ") || "none"}`,
      where,
      "type",
    );
  }
  if (!table.primaryKey || table.primaryKey.length === 0) {
    throw new SqlError(
      `lookup table \`${table.name}\` needs a PRIMARY KEY: the column(s) it is looked up by (\`key TEXT PRIMARY KEY\`, or PRIMARY KEY (a, b))`,
      decl.nameOffset,
    );
  }
  if (table.virtual.length > 0) {
    throw new SqlError(`lookup table \`${table.name}\`: generated columns are not supported; compute \`${table.virtual[0]!.field.name}\` in the query`, decl.nameOffset);
  }
  if (table.eventTime || table.watermark) {
    throw new SqlError(`lookup table \`${table.name}\` has no event time (it is read by key, not as a stream); remove WATERMARK FOR / event_time_field`, decl.nameOffset);
  }
  const read = (o: OptionDecl, parse: (raw: string) => number, what: string): number => {
    let v: number;
    try {
      v = parse(o.value);
    } catch (err) {
      throw new SqlError(`option '${o.key}': ${(err as Error).message}`, o.valueOffset, o.key);
    }
    if (!(v >= 0)) throw new SqlError(`option '${o.key}' must be ${what}`, o.valueOffset, o.key);
    return v;
  };
  const maxBytes = maxBytesOpt ? read(maxBytesOpt, parseSizeBytes, "a size in bytes (0 disables the cache)") : DEFAULT_LOOKUP_CACHE_BYTES;
  let ttlMicros: number | null = null;
  if (ttlOpt) {
    ttlMicros = read(ttlOpt, (raw) => parseDurationMicros(raw, 1e6), "a positive duration");
    if (ttlMicros < 1000) throw new SqlError(`option '${ttlOpt.key}' must be at least 1 ms; set lookup.cache.max_bytes = 0 to disable the cache`, ttlOpt.valueOffset, ttlOpt.key);
  }
  return { maxBytes, ttlMicros };
}
