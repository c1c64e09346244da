/**
 * Nested values (arrays, structs, maps) as the JSON text that the file, table
 * and PostgreSQL sinks write and their readers read back: a MAP as an object
 * keyed by its keys' text (the engine holds it as [key, value] pairs), bytes as
 * base64; everything else as it is.
 */
import type { SqlType } from "../../core/plugin-api/index.ts";

/** `v` of `type` as a JSON-ready value. */
export function toJsonValue(type: SqlType, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  switch (type.kind) {
    case "bytes":
      return Buffer.from(v as Uint8Array).toString("base64");
    case "array":
      return (v as unknown[]).map((x) => toJsonValue(type.element, x));
    case "struct": {
      const src = v as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const f of type.fields) out[f.name] = toJsonValue(f.type, src[f.name]);
      return out;
    }
    case "map": {
      const out: Record<string, unknown> = {};
      for (const [k, x] of v as [unknown, unknown][]) out[String(k)] = toJsonValue(type.value, x);
      return out;
    }
    default:
      return v;
  }
}

/** The JSON text of `v` of `type`. */
export const toJsonText = (type: SqlType, v: unknown): string => JSON.stringify(toJsonValue(type, v));

/** A parsed JSON value back as the engine's value of `type` (maps from objects; keys of numeric maps read as numbers). */
export function fromJsonValue(type: SqlType, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  switch (type.kind) {
    case "bytes":
      return typeof v === "string" ? new Uint8Array(Buffer.from(v, "base64")) : v;
    case "array":
      return Array.isArray(v) ? v.map((x) => fromJsonValue(type.element, x)) : v;
    case "struct": {
      if (typeof v !== "object") return v;
      const src = v as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const f of type.fields) out[f.name] = fromJsonValue(f.type, src[f.name]);
      return out;
    }
    case "map": {
      if (typeof v !== "object" || Array.isArray(v)) throw new Error(`expected a JSON object for ${"MAP"}, got ${JSON.stringify(v)}`);
      const numeric = type.key.kind === "int" || type.key.kind === "float" || type.key.kind === "decimal";
      return Object.entries(v as Record<string, unknown>).map(([k, x]) => [numeric ? Number(k) : type.key.kind === "boolean" ? k === "true" : k, fromJsonValue(type.value, x)]);
    }
    default:
      return v;
  }
}
