/**
 * `avro`: Apache Avro binary records, through avsc (the Avro library for
 * JavaScript that implements the whole specification and is tested against
 * it: schema parsing, canonical forms, every type and logical type).
 *
 * Either each record is a bare datum of an inline schema (`avro.schema`,
 * Arroyo's `raw_datums`), or it carries the Confluent schema registry wire
 * format (`confluent_schema_registry`): a source fetches the writer's schema by
 * the record's id (once per id) and reads it against the table's columns by
 * field name, so every registered version of a subject can be read; a sink
 * registers (or looks up) its schema under `<topic>-value` and writes its id.
 */
import type avro from "avsc";
import { defineFormat, definePlugin, opt, type Field, type FormatTable, type Row } from "../../core/plugin-api/index.ts";
import {
  recordBytes,
  SchemaIdCache,
  schemaRegistryClient,
  schemaRegistryOptions,
  validateRegistryOptions,
  sinkSchemaId,
  wireHeader,
  wireSchemaId,
  type SchemaRegistryOptionValues,
} from "../shared/schema-registry.ts";
import { lazyRequire, requirePackages } from "../shared/lazy.ts";

requirePackages("format-avro", import.meta.url, ["avsc"]);
/**
 * avsc (through codec.ts) loads when a table first uses this format: at
 * planning, for a table with `avro.schema` (to check its columns against the
 * schema), else when a job reads or writes. The format API's hooks are
 * synchronous, hence require.
 */
const codec = lazyRequire("format-avro", () => require("./codec.ts") as typeof import("./codec.ts"));

const schemaOption = {
  ...opt.string({ description: "The Avro schema (JSON) of the records: the writer's schema a source reads raw datums with, or the schema a sink writes and registers" }),
  parse(raw: unknown): string {
    const text = typeof raw === "string" ? raw : String(raw);
    codec().parseAvroSchema(text, "the schema"); // planning-time check: errors name the option
    return text;
  },
};

const options = {
  schema: schemaOption,
  raw_datums: opt.boolean({ description: "Each record is one bare Avro datum of avro.schema (implied by avro.schema without the registry)" }),
  into_unstructured_json: opt.boolean({ default: false, description: "Read each record as JSON text into a TEXT/JSON column `value` instead of matching columns" }),
  ...schemaRegistryOptions,
};

type Options = SchemaRegistryOptionValues & { schema?: string; raw_datums?: boolean; into_unstructured_json?: boolean };

function unstructuredColumn(fields: Field[]): number {
  const at = fields.findIndex((f) => f.name === "value" && (f.type.kind === "string" || f.type.kind === "json"));
  if (at < 0) throw new Error("format 'avro' with into_unstructured_json = true needs a TEXT or JSON column named `value` to hold each record");
  return at;
}

/** A decoder of one writer's schema into rows of the table. */
function rowDecoder(writer: avro.Type, fields: Field[], o: Options): (bytes: Uint8Array, at: number) => Row {
  let toRow: (v: Record<string, unknown>) => Row;
  if (o.into_unstructured_json) {
    const at = unstructuredColumn(fields);
    toRow = (v) => {
      const row: Row = new Array(fields.length).fill(null);
      row[at] = JSON.stringify(codec().toJsonValue(v));
      return row;
    };
  } else {
    if ((writer as any).typeName !== "record") throw new Error(`the writer's schema is a ${(writer as any).typeName}, not a record; read it with into_unstructured_json = true`);
    const reader = codec().recordReader(writer as any, fields);
    if (reader instanceof Error) throw reader;
    toRow = reader;
  }
  return (bytes, at) => {
    const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let decoded: { value: unknown; offset: number };
    try {
      decoded = writer.decode(buf, at);
    } catch (err) {
      throw new Error(`not an Avro datum of the writer's schema: ${(err as Error).message}`);
    }
    if (decoded.offset < 0) throw new Error("the record ends inside its Avro datum (truncated, or written with another schema)");
    if (decoded.offset !== buf.length) throw new Error(`${buf.length - decoded.offset} bytes follow the Avro datum (written with another schema?)`);
    return toRow(decoded.value as Record<string, unknown>);
  };
}

/** The schema a sink writes: avro.schema, else one derived from the columns. */
function sinkSchema(o: Options, fields: Field[], table: FormatTable | undefined): { type: avro.Type; text: string } {
  const text = o.schema ?? JSON.stringify(codec().schemaForFields(fields, table?.name ?? "row"));
  return { type: codec().parseAvroSchema(text, o.schema ? "option 'avro.schema'" : "the schema derived from the columns"), text };
}

export const avroFormat = defineFormat({
  name: "avro",
  description: "Apache Avro binary records: bare datums of an inline schema, or the Confluent schema registry wire format",
  options,
  validate({ options: o, fields, table }) {
    if (table.connector === "filesystem" && table.role === "source") {
      // Object container files: the schema is in each file's header.
      const wrong = o.confluent_schema_registry ? "confluent_schema_registry" : o.raw_datums ? "raw_datums" : o.into_unstructured_json ? "into_unstructured_json" : null;
      if (wrong) throw new Error(`format 'avro': connector 'filesystem' reads Avro object container files, whose header holds the writer's schema; remove option '${wrong}'`);
      return;
    }
    validateRegistryOptions(o, table, "avro");
    if (o.confluent_schema_registry && o.raw_datums) {
      throw new Error("format 'avro': give one of confluent_schema_registry and raw_datums (registry records carry a schema id before the datum)");
    }
    if (!o.confluent_schema_registry) {
      if (o.raw_datums === false) {
        throw new Error(
          "format 'avro': records as Avro object container files (raw_datums = 'false' without the registry) are not supported; set raw_datums = 'true' with avro.schema, or confluent_schema_registry = 'true'",
        );
      }
      if (table.role === "source" && !o.schema) {
        throw new Error("format 'avro' needs the writer's schema to read bare datums: give option 'avro.schema', or read from a schema registry with confluent_schema_registry = 'true'");
      }
      if (table.role === "sink" && !o.schema && !o.raw_datums) {
        throw new Error("format 'avro': say how records are written: raw_datums = 'true' (bare datums of a schema derived from the columns), avro.schema, or confluent_schema_registry = 'true'");
      }
    }
    if (o.into_unstructured_json) {
      if (table.role === "sink") throw new Error("format 'avro': into_unstructured_json is for reading; a sink writes the columns");
      unstructuredColumn(fields);
    } else if (table.role === "source" && o.schema) {
      const writer = codec().parseAvroSchema(o.schema, "option 'avro.schema'");
      rowDecoder(writer, fields, o);
    }
    if (table.role === "sink") {
      const { type } = sinkSchema(o, fields, table);
      if ((type as any).typeName !== "record") throw new Error("option 'avro.schema' of a sink must be a record schema");
      const w = codec().recordWriter(fields, type as any);
      if (w instanceof Error) throw w;
    }
  },
  deserializer({ options: o, fields, table }) {
    if (table?.connector === "filesystem") {
      // The file source reads container files whole (container.ts); records never come here.
      return {
        deserialize(): never {
          throw new Error("format 'avro' with connector 'filesystem' reads Avro object container files, not records");
        },
      };
    }
    if (!o.confluent_schema_registry) {
      if (!o.schema) throw new Error("format 'avro' needs option 'avro.schema' to read bare datums");
      const decode = rowDecoder(codec().parseAvroSchema(o.schema, "option 'avro.schema'"), fields, o);
      return { deserialize: (data) => decode(recordBytes(data), 0) };
    }
    const cache = new SchemaIdCache(schemaRegistryClient(o), (_id, registered) => {
      if (registered.schemaType !== "AVRO") throw new Error(`is a ${registered.schemaType} schema, not Avro; read this topic with format '${registered.schemaType.toLowerCase()}'`);
      return rowDecoder(codec().parseAvroSchema(registered.schema, "the registered schema"), fields, o);
    });
    return {
      prepare: (data) => cache.prepare(data),
      deserialize(data) {
        const bytes = recordBytes(data);
        return cache.get(wireSchemaId(bytes))(bytes, 5);
      },
    };
  },
  serializer({ options: o, fields, table }) {
    const { type, text } = sinkSchema(o, fields, table);
    const toRecord = codec().recordWriter(fields, type as any);
    if (toRecord instanceof Error) throw toRecord;
    if (!o.confluent_schema_registry) return { serialize: (row) => type.toBuffer(toRecord(row)) };
    let header: Uint8Array | null = null;
    return {
      async open() {
        const id = await sinkSchemaId(o, table, "avro", { schema: text, schemaType: "AVRO", references: [] });
        header = wireHeader(id);
      },
      serialize(row) {
        if (header === null) throw new Error("format 'avro': the schema id is not known yet (the engine did not call the serializer's open)");
        const body = type.toBuffer(toRecord(row));
        const out = Buffer.allocUnsafe(5 + body.length);
        out.set(header, 0);
        out.set(body, 5);
        return out;
      },
    };
  },
});

export default definePlugin({ name: "format-avro", version: "0.1.0", formats: [avroFormat] });
