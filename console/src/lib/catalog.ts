/** The catalog (connectors, formats, functions, UDFs), loaded once per page and used for completion and docs. */
import { useQuery } from "urql";
import { graphql, type ResultOf } from "../graphql.ts";

export const CatalogQuery = graphql(`
  query Catalog {
    connectors {
      name
      description
      source
      sink
      optionsSchema
    }
    formats {
      name
      description
      optionsSchema
    }
    functions {
      name
      kind
      minArgs
      maxArgs
    }
    udfs {
      id
      name
      description
    }
  }
`);

export type Catalog = ResultOf<typeof CatalogQuery>;

export function useCatalog() {
  const [{ data, error }] = useQuery({ query: CatalogQuery, requestPolicy: "cache-first" });
  return { catalog: data ?? null, error };
}

export interface OptionDoc {
  name: string;
  type: string;
  required: boolean;
  secret: boolean;
  default: unknown;
  description: string | null;
  values: string[] | null;
  minimum: number | null;
  maximum: number | null;
}

/** The options of a connector or format, from its JSON Schema (the one that validates WITH (...)). */
export function optionDocs(schema: unknown): OptionDoc[] {
  const s = (schema ?? {}) as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
  const required = new Set(s.required ?? []);
  return Object.entries(s.properties ?? {})
    .map(([name, p]) => ({
      name,
      type: p.format ? `${p.type} (${p.format})` : String(p.type ?? "string"),
      required: required.has(name),
      secret: p.writeOnly === true,
      default: p.default,
      description: typeof p.description === "string" ? p.description : null,
      values: Array.isArray(p.enum) ? (p.enum as string[]) : null,
      minimum: typeof p.minimum === "number" ? p.minimum : null,
      maximum: typeof p.maximum === "number" ? p.maximum : null,
    }))
    .sort((a, b) => Number(b.required) - Number(a.required) || a.name.localeCompare(b.name));
}
