/**
 * Iceberg manifests and manifest lists (format v2), as Avro container files
 * with the field ids the spec gives (avsc keeps the schema's extra attributes
 * in the file header, where readers look for them).
 */
import avro from "avsc";
import type { PartitionField } from "./transforms.ts";

const opt = (type: unknown) => ["null", type];
const kv = (name: string, keyId: number, valueId: number, value: string) => opt({
  type: "array",
  logicalType: "map",
  items: { type: "record", name, fields: [{ name: "key", type: "int", "field-id": keyId }, { name: "value", type: value, "field-id": valueId }] },
});

function partitionType(fields: PartitionField[]) {
  return {
    type: "record",
    name: "r102",
    fields: fields.map((p) => {
      let t: unknown;
      if (p.transform === "day") t = { type: "int", logicalType: "date" };
      else if (p.transform === "hour" || p.transform === "bucket") t = "int";
      else {
        const k = p.source.type;
        t =
          k.kind === "boolean" ? "boolean"
          : k.kind === "int" ? (k.bits === 32 ? "int" : "long")
          : k.kind === "float" ? (k.bits === 32 ? "float" : "double")
          : k.kind === "timestamp" ? { type: "long", logicalType: "timestamp-micros", "adjust-to-utc": true }
          : "string";
      }
      return { name: p.name, type: opt(t), default: null, "field-id": p.fieldId };
    }),
  };
}

export function manifestEntrySchema(fields: PartitionField[]) {
  return {
    type: "record",
    name: "manifest_entry",
    fields: [
      { name: "status", type: "int", "field-id": 0 },
      { name: "snapshot_id", type: opt("long"), default: null, "field-id": 1 },
      { name: "sequence_number", type: opt("long"), default: null, "field-id": 3 },
      { name: "file_sequence_number", type: opt("long"), default: null, "field-id": 4 },
      {
        name: "data_file",
        "field-id": 2,
        type: {
          type: "record",
          name: "r2",
          fields: [
            { name: "content", type: "int", "field-id": 134 },
            { name: "file_path", type: "string", "field-id": 100 },
            { name: "file_format", type: "string", "field-id": 101 },
            { name: "partition", type: partitionType(fields), "field-id": 102 },
            { name: "record_count", type: "long", "field-id": 103 },
            { name: "file_size_in_bytes", type: "long", "field-id": 104 },
            { name: "column_sizes", type: kv("k117_v118", 117, 118, "long"), default: null, "field-id": 108 },
            { name: "value_counts", type: kv("k119_v120", 119, 120, "long"), default: null, "field-id": 109 },
            { name: "null_value_counts", type: kv("k121_v122", 121, 122, "long"), default: null, "field-id": 110 },
            { name: "lower_bounds", type: kv("k126_v127", 126, 127, "bytes"), default: null, "field-id": 125 },
            { name: "upper_bounds", type: kv("k129_v130", 129, 130, "bytes"), default: null, "field-id": 128 },
            { name: "key_metadata", type: opt("bytes"), default: null, "field-id": 131 },
            { name: "split_offsets", type: opt({ type: "array", items: "long", "element-id": 133 }), default: null, "field-id": 132 },
            { name: "sort_order_id", type: opt("int"), default: null, "field-id": 140 },
          ],
        },
      },
    ],
  };
}

export const MANIFEST_FILE_SCHEMA = {
  type: "record",
  name: "manifest_file",
  fields: [
    { name: "manifest_path", type: "string", "field-id": 500 },
    { name: "manifest_length", type: "long", "field-id": 501 },
    { name: "partition_spec_id", type: "int", "field-id": 502 },
    { name: "content", type: "int", "field-id": 517 },
    { name: "sequence_number", type: "long", "field-id": 515 },
    { name: "min_sequence_number", type: "long", "field-id": 516 },
    { name: "added_snapshot_id", type: "long", "field-id": 503 },
    { name: "added_files_count", type: "int", "field-id": 504 },
    { name: "existing_files_count", type: "int", "field-id": 505 },
    { name: "deleted_files_count", type: "int", "field-id": 506 },
    { name: "added_rows_count", type: "long", "field-id": 512 },
    { name: "existing_rows_count", type: "long", "field-id": 513 },
    { name: "deleted_rows_count", type: "long", "field-id": 514 },
    {
      name: "partitions",
      type: opt({
        type: "array",
        "element-id": 508,
        items: {
          type: "record",
          name: "r508",
          fields: [
            { name: "contains_null", type: "boolean", "field-id": 509 },
            { name: "contains_nan", type: opt("boolean"), default: null, "field-id": 518 },
            { name: "lower_bound", type: opt("bytes"), default: null, "field-id": 510 },
            { name: "upper_bound", type: opt("bytes"), default: null, "field-id": 511 },
          ],
        },
      }),
      default: null,
      "field-id": 507,
    },
    { name: "key_metadata", type: opt("bytes"), default: null, "field-id": 519 },
  ],
};

export interface ManifestFile {
  manifest_path: string;
  manifest_length: number;
  partition_spec_id: number;
  content: number;
  sequence_number: number;
  min_sequence_number: number;
  added_snapshot_id: number;
  added_files_count: number;
  existing_files_count: number;
  deleted_files_count: number;
  added_rows_count: number;
  existing_rows_count: number;
  deleted_rows_count: number;
  partitions: { contains_null: boolean; contains_nan: boolean | null; lower_bound: Buffer | null; upper_bound: Buffer | null }[] | null;
  key_metadata: Buffer | null;
}

/** Encodes records as an Avro container file (no compression) with the given header metadata. */
export async function avroFile(schema: object, records: object[], metadata: Record<string, string>): Promise<Uint8Array> {
  const meta: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(metadata)) meta[k] = Buffer.from(v);
  const enc = new avro.streams.BlockEncoder(schema as avro.Schema, { metadata: meta, codec: "null" } as never);
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    enc.on("data", (c: Buffer) => chunks.push(c));
    enc.on("end", () => resolve());
    enc.on("error", reject);
  });
  for (const r of records) enc.write(r);
  enc.end();
  await done;
  return Buffer.concat(chunks);
}

/** Decodes an Avro container file's records (with the schema it was written with). */
export async function readAvro<T>(bytes: Uint8Array): Promise<T[]> {
  // avsc's default codecs: null and deflate (what Java's and pyiceberg's writers use).
  const dec = new avro.streams.BlockDecoder();
  const out: T[] = [];
  const done = new Promise<void>((resolve, reject) => {
    dec.on("data", (r: T) => out.push(r));
    dec.on("end", () => resolve());
    dec.on("error", reject);
  });
  dec.end(Buffer.from(bytes));
  await done;
  return out;
}
