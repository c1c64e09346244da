/**
 * The preview output of a bare SELECT: one JSON object per row, or for an
 * updating result a Debezium-style {before, after, op} per change. It uses the
 * registered `json` / `debezium_json` formats when present (looked up by name;
 * the core never imports a plugin) and a plain rendering otherwise.
 */
import { RowOp, type Batch, type Field, type OptionsShape, type Row, type Serializer, type SinkWriter } from "../plugin-api/index.ts";
import type { PluginRegistry } from "../registry/registry.ts";

function plainValue(v: unknown, field: Field): unknown {
  if (v === null || v === undefined) return null;
  switch (field.type.kind) {
    case "timestamp":
      return new Date((v as number) / 1000).toISOString();
    case "bytes":
      return Buffer.from(v as Uint8Array).toString("base64");
    case "struct": {
      const fields = field.type.fields;
      const o: Record<string, unknown> = {};
      for (const f of fields) o[f.name] = plainValue((v as Record<string, unknown>)[f.name], f);
      return o;
    }
    case "map": {
      // An object keyed by the keys' text, as the json format writes maps.
      const value = { name: "value", type: field.type.value, nullable: true };
      const o: Record<string, unknown> = {};
      for (const [k, x] of v as [unknown, unknown][]) o[String(k)] = plainValue(x, value);
      return o;
    }
    default:
      return v;
  }
}

function plainSerializer(fields: Field[], updating: boolean): Serializer {
  const obj = (row: Row | null | undefined) => {
    if (!row) return null;
    const o: Record<string, unknown> = {};
    for (let i = 0; i < fields.length; i++) o[fields[i]!.name] = plainValue(row[i], fields[i]!);
    return o;
  };
  return {
    serialize(row, op, before) {
      if (!updating) return JSON.stringify(obj(row));
      const code = op === RowOp.Update ? "u" : op === RowOp.Delete ? "d" : "c";
      return JSON.stringify({
        before: op === RowOp.Insert || op === undefined ? null : obj(before ?? row),
        after: op === RowOp.Delete ? null : obj(row),
        op: code,
      });
    },
  };
}

export function previewSerializer(registry: PluginRegistry, fields: Field[], updating: boolean): Serializer {
  const format = registry.format(updating ? "debezium_json" : "json");
  if (format?.serializer) {
    const options: Record<string, unknown> = {};
    for (const [name, spec] of Object.entries(format.options as OptionsShape)) if (spec.default !== undefined) options[name] = spec.default;
    return format.serializer({ options, fields });
  }
  return plainSerializer(fields, updating);
}

export function createPreviewWriter(
  registry: PluginRegistry,
  fields: Field[],
  updating: boolean,
  out: { write(s: string): unknown },
): SinkWriter {
  const serializer = previewSerializer(registry, fields, updating);
  const decoder = new TextDecoder();
  return {
    write(batch: Batch) {
      let text = "";
      for (let i = 0; i < batch.rows.length; i++) {
        const encoded = serializer.serialize(batch.rows[i]!, batch.ops?.[i], batch.before?.[i]);
        text += (typeof encoded === "string" ? encoded : decoder.decode(encoded)) + "\n";
      }
      out.write(text);
    },
  };
}
