/**
 * `protobuf`: Protocol Buffers messages, through protobufjs. We chose
 * protobufjs over @bufbuild/protobuf because a registry hands out schemas as
 * .proto text (or base64 descriptors) at run time, and protobufjs parses .proto
 * text at run time and generates a decoder per message type; @bufbuild/protobuf
 * (fully conformance-tested) needs descriptors compiled ahead by buf or protoc,
 * which a schema fetched by id from a registry is not.
 *
 * An inline schema (`protobuf.schema`, .proto text, with `protobuf.message_name`)
 * or the Confluent wire format (`confluent_schema_registry`): magic byte, schema
 * id, the message indexes naming the message in its file, then the message. A
 * source fetches each writer's schema (and the schemas it references) by id and
 * reads it by field name; a sink registers its schema under `<topic>-value`.
 */
import { defineFormat, definePlugin, opt, type Field, type Row } from "../../core/plugin-api/index.ts";
import {
  recordBytes,
  SchemaIdCache,
  schemaRegistryClient,
  schemaRegistryOptions,
  validateRegistryOptions,
  sinkSchemaId,
  wireHeader,
  wireSchemaId,
  type RegisteredSchema,
  type SchemaRegistryClient,
  type SchemaRegistryOptionValues,
} from "../shared/schema-registry.ts";
import type { ParsedSchema, PbType } from "./codec.ts";
// Only types of protobufjs: loading it stays lazy.
import { compileWireReader } from "./wire-reader.ts";
import { lazyRequire, requireFor, requirePackages } from "../shared/lazy.ts";

requirePackages("format-protobuf", import.meta.url, ["protobufjs"]);
/**
 * protobufjs (through codec.ts) loads when a table first uses this format: at
 * planning, for a table with `protobuf.schema` (to check its columns against
 * the message), else when a job reads or writes. The format API's hooks are
 * synchronous, hence require.
 */
const codec = lazyRequire("format-protobuf", () => require("./codec.ts") as typeof import("./codec.ts"));

const schemaOption = {
  ...opt.string({ description: "The .proto file (text) holding the message: what a source reads without the registry, and what a sink writes and registers" }),
  parse(raw: unknown): string {
    const text = typeof raw === "string" ? raw : String(raw);
    codec().parseProtoSchema(text, [], "option 'protobuf.schema'");
    return text;
  },
};

const options = {
  schema: schemaOption,
  message_name: opt.string({ description: "Fully qualified name of the message (package.Message); needed when the file declares more than one" }),
  length_delimited: opt.boolean({ default: false, description: "Each message is preceded by its length as a varint" }),
  into_unstructured_json: opt.boolean({ default: false, description: "Read each message as JSON text into a TEXT/JSON column `value`" }),
  ...schemaRegistryOptions,
};

type Options = SchemaRegistryOptionValues & { schema?: string; message_name?: string; length_delimited?: boolean; into_unstructured_json?: boolean };

function unstructuredColumn(fields: Field[]): number {
  const at = fields.findIndex((f) => f.name === "value" && (f.type.kind === "string" || f.type.kind === "json"));
  if (at < 0) throw new Error("format 'protobuf' with into_unstructured_json = true needs a TEXT or JSON column named `value` to hold each message");
  return at;
}

/** Reads messages of `type` from `bytes[at, end)` into rows. */
function rowDecoder(type: PbType, fields: Field[], o: Options): (bytes: Uint8Array, at: number, end: number) => Row {
  let toRow: (m: any) => Row;
  if (o.into_unstructured_json) {
    const at = unstructuredColumn(fields);
    toRow = (m) => {
      const row: Row = new Array(fields.length).fill(null);
      row[at] = JSON.stringify(type.toObject(m, { longs: Number, enums: String, bytes: String }));
      return row;
    };
  } else {
    const reader = codec().messageReader(type, fields);
    if (reader instanceof Error) throw reader;
    toRow = reader;
  }
  const { Reader } = requireFor("format-protobuf", () => require("protobufjs") as typeof import("protobufjs"));
  // protobufjs's decoder and the reader above: the reference, for what the wire reader leaves to them.
  const decodeMessage = (bytes: Uint8Array, at: number, end: number): Row => {
    const r = Reader.create(bytes);
    r.pos = at;
    let m: unknown;
    try {
      m = type.decode(r, end - at);
    } catch (err) {
      throw new Error(`not a ${type.name} message: ${(err as Error).message}`);
    }
    return toRow(m);
  };
  const direct = o.into_unstructured_json ? null : compileWireReader(type, fields, decodeMessage);
  const decode = direct ?? decodeMessage;
  if (!o.length_delimited) return decode;
  return (bytes, at, end) => {
    const r = Reader.create(bytes);
    r.pos = at;
    const len = r.uint32();
    if (r.pos + len !== end) throw new Error(`the length prefix says ${len} bytes, the record holds ${end - r.pos}`);
    return decode(bytes, r.pos, end);
  };
}

/** Fetches a registered schema's references (recursively, dependencies first) and parses it. */
async function resolveRegistered(client: SchemaRegistryClient, s: RegisteredSchema, seen = new Set<string>()): Promise<string[]> {
  const files: string[] = [];
  for (const ref of s.references) {
    const key = `${ref.subject}/${ref.version}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const found = await client.subjectVersion(ref.subject, ref.version);
    if (!found) throw new Error(`references ${ref.name} (subject '${ref.subject}' version ${ref.version}), which is not in the registry`);
    files.push(...(await resolveRegistered(client, found, seen)), found.schema);
  }
  return files;
}

export const protobufFormat = defineFormat({
  name: "protobuf",
  description: "Protocol Buffers messages: an inline .proto schema, or the Confluent schema registry wire format",
  options,
  validate({ options: o, fields, table }) {
    validateRegistryOptions(o, table, "protobuf");
    if (!o.schema && (table.role === "sink" || !o.confluent_schema_registry)) {
      throw new Error(
        table.role === "sink"
          ? "format 'protobuf' needs option 'protobuf.schema' (the .proto text) to write messages"
          : "format 'protobuf' needs the writer's schema: give option 'protobuf.schema' (.proto text), or read from a schema registry with confluent_schema_registry = 'true'",
      );
    }
    if (o.confluent_schema_registry && o.length_delimited) throw new Error("format 'protobuf': length_delimited does not go with confluent_schema_registry");
    if (o.into_unstructured_json && table.role === "sink") throw new Error("format 'protobuf': into_unstructured_json is for reading; a sink writes the columns");
    if (!o.schema) return;
    const schema = codec().parseProtoSchema(o.schema, [], "option 'protobuf.schema'");
    const type = codec().messageType(schema, o.message_name, "option 'protobuf.schema'");
    if (table.role === "source") rowDecoder(type, fields, o);
    else {
      const w = codec().messageWriter(fields, type);
      if (w instanceof Error) throw w;
    }
  },
  deserializer({ options: o, fields }) {
    if (!o.confluent_schema_registry) {
      const type = codec().messageType(codec().parseProtoSchema(o.schema!, [], "option 'protobuf.schema'"), o.message_name, "option 'protobuf.schema'");
      const decode = rowDecoder(type, fields, o);
      return {
        deserialize(data) {
          const bytes = recordBytes(data);
          return decode(bytes, 0, bytes.length);
        },
        deserializeRange: decode,
      };
    }
    const client = schemaRegistryClient(o);
    // Per schema id: the parsed file, and a decoder per message (the indexes in each record say which).
    const cache = new SchemaIdCache(client, async (_id, registered) => {
      if (registered.schemaType !== "PROTOBUF") throw new Error(`is a ${registered.schemaType} schema, not Protobuf; read this topic with format '${registered.schemaType === "AVRO" ? "avro" : "json"}'`);
      const schema: ParsedSchema = codec().parseProtoSchema(registered.schema, await resolveRegistered(client, registered), "the registered schema");
      const decoders = new Map<string, (bytes: Uint8Array, at: number, end: number) => Row>();
      return (bytes: Uint8Array) => {
        const { indexes, at } = codec().readMessageIndexes(bytes, 5);
        const key = indexes.join(".");
        let d = decoders.get(key);
        if (!d) {
          d = rowDecoder(codec().typeAt(schema, indexes), fields, o);
          decoders.set(key, d);
        }
        return d(bytes, at, bytes.length);
      };
    });
    return {
      prepare: (data) => cache.prepare(data),
      deserialize(data) {
        const bytes = recordBytes(data);
        return cache.get(wireSchemaId(bytes))(bytes);
      },
    };
  },
  serializer({ options: o, fields, table }) {
    const schema = codec().parseProtoSchema(o.schema!, [], "option 'protobuf.schema'");
    const type = codec().messageType(schema, o.message_name, "option 'protobuf.schema'");
    const toMessage = codec().messageWriter(fields, type);
    if (toMessage instanceof Error) throw toMessage;
    const encode = (row: Row) => (o.length_delimited ? type.encodeDelimited(toMessage(row)) : type.encode(toMessage(row))).finish();
    if (!o.confluent_schema_registry) return { serialize: encode };
    let prefix: Uint8Array | null = null;
    return {
      async open() {
        const id = await sinkSchemaId(o, table, "protobuf", { schema: o.schema!, schemaType: "PROTOBUF", references: [] });
        const indexes = codec().encodeMessageIndexes(codec().messageIndexes(schema, type));
        prefix = new Uint8Array(5 + indexes.length);
        prefix.set(wireHeader(id), 0);
        prefix.set(indexes, 5);
      },
      serialize(row) {
        if (prefix === null) throw new Error("format 'protobuf': the schema id is not known yet (the engine did not call the serializer's open)");
        const body = encode(row);
        const out = new Uint8Array(prefix.length + body.length);
        out.set(prefix, 0);
        out.set(body, prefix.length);
        return out;
      },
    };
  },
});

export default definePlugin({ name: "format-protobuf", version: "0.1.0", formats: [protobufFormat] });
