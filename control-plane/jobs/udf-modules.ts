/**
 * UDFs stored in the control plane are module source text. They are written to
 * files and imported — never in the control plane itself: in the sandbox's
 * child processes (to check them, see sandbox.ts) and in each worker (to run
 * them). A module's default export is a `defineUdf` or
 * `defineUdaf` value, or a whole plugin; argument and return types may be SQL
 * type names ('BIGINT', 'TEXT[]').
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PluginDefinition, SqlType, UdafDefinition, UdfDefinition } from "../../core/plugin-api/index.ts";
import type { PluginRegistry } from "../../core/registry/registry.ts";
import { parseTypeTokens } from "../../core/sql/types.ts";
import { tokenize } from "../../core/sql/lexer.ts";

export class UdfDefinitionError extends Error {}

function sqlType(value: unknown, what: string): SqlType {
  if (value && typeof value === "object" && "kind" in value) return value as SqlType;
  if (typeof value !== "string") throw new UdfDefinitionError(`${what} must be a SQL type name like 'BIGINT' or 'TEXT'`);
  const tokens = tokenize(value, 0, value.length);
  try {
    const { type, next } = parseTypeTokens(tokens, 0);
    if (next !== tokens.length) throw new Error(`unexpected '${tokens[next]!.text}'`);
    return type;
  } catch (err) {
    throw new UdfDefinitionError(`${what}: cannot read type '${value}': ${(err as Error).message}`);
  }
}

/** Turns a module's default export into a plugin holding its UDF or UDAF. */
export function pluginFromModule(name: string, value: any): PluginDefinition {
  if (!value || typeof value !== "object") throw new UdfDefinitionError(`UDF '${name}': the module must export default a UDF, UDAF or plugin object`);
  if (Array.isArray(value.connectors) || Array.isArray(value.udfs) || Array.isArray(value.udafs) || Array.isArray(value.formats)) return value;
  const args = (value.args ?? []).map((a: unknown, i: number) => sqlType(a, `UDF '${name}' argument ${i + 1}`));
  const returns = sqlType(value.returns, `UDF '${name}' return type`);
  const fnName = value.name ?? name;
  if (typeof value.fn === "function") {
    const udf: UdfDefinition = { ...value, name: fnName, args, returns };
    return { name: `udf:${fnName}`, udfs: [udf] };
  }
  if (typeof value.init === "function" && typeof value.add === "function" && typeof value.result === "function") {
    const udaf: UdafDefinition = { ...value, name: fnName, args, returns };
    return { name: `udaf:${fnName}`, udafs: [udaf] };
  }
  throw new UdfDefinitionError(`UDF '${name}': the default export needs fn(...) (a UDF) or init/add/result (a UDAF)`);
}

/**
 * Modules already imported, by name and source: the control plane plans many
 * pipelines, and an imported module stays in memory for good, so each version
 * of a UDF is written and imported once per process.
 */
const loaded = new Map<string, PluginDefinition>();

/** Imports UDF modules from `dir` and registers them; errors name the UDF at fault. */
export async function loadUdfs(registry: PluginRegistry, udfs: { name: string; definition: string }[], dir: string): Promise<void> {
  for (const u of udfs) {
    const key = `${u.name}:${Bun.hash(u.definition).toString(16)}`;
    let plugin = loaded.get(key);
    if (!plugin) {
      mkdirSync(dir, { recursive: true });
      // One file per version: Bun caches modules by path.
      const file = join(dir, `${u.name.replace(/[^A-Za-z0-9_]/g, "_")}-${key.slice(key.indexOf(":") + 1)}.ts`);
      writeFileSync(file, u.definition);
      let mod: any;
      try {
        mod = await import(file);
      } catch (err) {
        throw new UdfDefinitionError(`UDF '${u.name}' does not load: ${(err as Error).message}`);
      }
      plugin = pluginFromModule(u.name, mod.default);
      loaded.set(key, plugin);
    }
    registry.register(plugin);
  }
}
