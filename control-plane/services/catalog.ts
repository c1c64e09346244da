/** The connector and format catalog: every registered plugin's options as JSON Schema. */
import { optionsJsonSchema } from "../../core/plugin-api/options.ts";
import { maxArgs, minArgs, SCALAR_FUNCTIONS } from "../../core/expr/functions.ts";
import { WINDOW_FUNCTIONS } from "../../core/sql/expressions.ts";
import type { Services } from "./context.ts";

export function connectors(services: Services) {
  return [...services.registry.connectors.values()]
    .map((c) => ({ name: c.name, description: c.description ?? null, source: !!c.source, sink: !!c.sink, lookup: !!c.lookup, optionsSchema: optionsJsonSchema(c.options) }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

export function formats(services: Services) {
  return [...services.registry.formats.values()]
    .map((f) => ({ name: f.name, description: f.description ?? null, optionsSchema: optionsJsonSchema(f.options) }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Aggregates and special forms the planner knows by name (they are not in the scalar library). */
const BUILTIN_AGGREGATES = ["count", "sum", "avg", "min", "max"];
const SPECIAL_FORMS = ["coalesce", "nullif", "now"];

export type FunctionKind = "SCALAR" | "AGGREGATE" | "WINDOW" | "UDF" | "UDAF";

/** Every function name a query may call (the console completes them); UDFs stored in the control plane are listed by `udfs`. */
export function functions(services: Services): { name: string; kind: FunctionKind; minArgs: number | null; maxArgs: number | null }[] {
  const out: { name: string; kind: FunctionKind; minArgs: number | null; maxArgs: number | null }[] = [];
  // Variadic functions (concat, greatest...) have no maximum: null.
  for (const f of SCALAR_FUNCTIONS.values()) out.push({ name: f.name, kind: "SCALAR", minArgs: minArgs(f), maxArgs: Number.isFinite(maxArgs(f)) ? maxArgs(f) : null });
  for (const name of SPECIAL_FORMS) out.push({ name, kind: "SCALAR", minArgs: null, maxArgs: null });
  for (const name of BUILTIN_AGGREGATES) out.push({ name, kind: "AGGREGATE", minArgs: 1, maxArgs: 1 });
  for (const name of WINDOW_FUNCTIONS) out.push({ name, kind: "WINDOW", minArgs: null, maxArgs: null });
  for (const u of services.registry.udfs.values()) out.push({ name: u.name, kind: "UDF", minArgs: u.args.length, maxArgs: u.args.length });
  for (const u of services.registry.udafs.values()) out.push({ name: u.name, kind: "UDAF", minArgs: u.args.length, maxArgs: u.args.length });
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
