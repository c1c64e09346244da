/**
 * `table_format = 'delta' | 'iceberg'` on the filesystem connector (Arroyo's
 * spelling): the table formats' connectors register here when their plugins
 * load, and the filesystem connector hands such tables to them, so this
 * plugin does not import theirs (they build on it).
 */
import type { ConnectorDefinition } from "../../core/plugin-api/index.ts";

const formats = new Map<string, ConnectorDefinition<any>>();

export function registerTableFormat(name: string, connector: ConnectorDefinition<any>): void {
  formats.set(name, connector);
}

/** The connector behind a table format, and the filesystem table's options as its options (its defaults for the rest). */
export function tableFormat(name: string, options: Record<string, unknown>): { connector: ConnectorDefinition<any>; options: Record<string, unknown> } {
  const connector = formats.get(name);
  if (!connector) {
    throw new Error(`option 'table_format' = '${name}' needs the connector-${name} plugin; add ./plugins/connector-${name}/index.ts to "runnel.plugins" in package.json, or write connector = '${name}'`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options)) {
    // Record-file compression and the source's options (their defaults are always there) are not the table's.
    if (key === "table_format" || key === "compression" || key.startsWith("source.") || value === undefined) continue;
    if (!(key in connector.options)) {
      throw new Error(`option '${key}' has no meaning with table_format = '${name}'; write connector = '${name}' to use its own options (${Object.keys(connector.options).filter((k) => !(k in options)).join(", ")})`);
    }
    out[key] = value;
  }
  for (const [key, spec] of Object.entries(connector.options as Record<string, { default?: unknown }>)) if (!(key in out) && spec.default !== undefined) out[key] = spec.default;
  return { connector, options: out };
}
