/** The connector and format catalog: every registered plugin's options as JSON Schema. */
import { optionsJsonSchema } from "../../core/plugin-api/options.ts";
import type { Services } from "./context.ts";

export function connectors(services: Services) {
  return [...services.registry.connectors.values()]
    .map((c) => ({ name: c.name, description: c.description ?? null, source: !!c.source, sink: !!c.sink, optionsSchema: optionsJsonSchema(c.options) }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

export function formats(services: Services) {
  return [...services.registry.formats.values()]
    .map((f) => ({ name: f.name, description: f.description ?? null, optionsSchema: optionsJsonSchema(f.options) }))
    .sort((a, b) => a.name.localeCompare(b.name));
}
