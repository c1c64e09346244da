/**
 * `bun run bench:formats`: rows/s per core to decode and encode the same rows
 * (a Nexmark-like bid: 7 columns) as JSON, Avro (bare datums) and Protobuf,
 * through the formats' own serializers and deserializers, as a source or sink
 * calls them. CPU time of this process (user + system), after a warm-up pass;
 * the median of several passes (`bun bench/formats.ts [rows] [passes]`).
 */
import { json } from "../plugins/format-json/index.ts";
import { avroFormat } from "../plugins/format-avro/index.ts";
import { protobufFormat } from "../plugins/format-protobuf/index.ts";
import { schemaForFields } from "../plugins/format-avro/codec.ts";
import { field, t, type Field, type FormatDefinition, type Row } from "../core/plugin-api/index.ts";
import { optionsJsonSchema } from "../core/plugin-api/options.ts";

const ROWS = Number(process.argv[2] ?? 300_000);
/** Timed passes per format and direction; the median is reported (the machine is shared: single passes vary by a third). */
const PASSES = Number(process.argv[3] ?? 5);
const fields: Field[] = [
  field("auction", t.bigint(), false),
  field("bidder", t.bigint(), false),
  field("price", t.bigint(), false),
  field("channel", t.string(), false),
  field("url", t.string(), false),
  field("date_time", t.timestamp(), false),
  field("extra", t.string(), true),
];
const PROTO = `syntax = "proto3";
message Bid { int64 auction = 1; int64 bidder = 2; int64 price = 3; string channel = 4; string url = 5; int64 date_time = 6; optional string extra = 7; }`;

const T0 = Date.UTC(2024, 0, 1) * 1000;
const rows: Row[] = Array.from({ length: ROWS }, (_, i) => [
  1000 + (i % 997), 2000 + ((i * 7) % 4999), 100 + ((i * 31) % 100_000), ["Google", "Facebook", "Baidu", "Apple"][i % 4]!,
  `https://www.nexmark.com/item.htm?query=1&channel_id=${i % 1000}`, T0 + i * 1000, i % 10 === 0 ? null : `x${i % 100}`,
]);

function defaults(def: FormatDefinition<any>, given: Record<string, unknown>): Record<string, unknown> {
  const props = optionsJsonSchema(def.options).properties as Record<string, { default?: unknown }>;
  const out: Record<string, unknown> = {};
  for (const [k, p] of Object.entries(props)) if (p.default !== undefined) out[k] = p.default;
  return { ...out, ...given };
}

function cpu<T>(fn: () => T): { result: T; seconds: number } {
  let result!: T;
  const times: number[] = [];
  for (let i = 0; i < PASSES; i++) {
    const start = process.cpuUsage();
    result = fn();
    const used = process.cpuUsage(start);
    times.push((used.user + used.system) / 1e6);
  }
  times.sort((a, b) => a - b);
  return { result, seconds: times[Math.floor((times.length - 1) / 2)]! };
}

const cases: [string, FormatDefinition<any>, Record<string, unknown>][] = [
  ["json", json, {}],
  ["avro", avroFormat, { schema: JSON.stringify(schemaForFields(fields, "bid")) }],
  ["protobuf", protobufFormat, { schema: PROTO }],
];

console.log(`${ROWS.toLocaleString("en-US")} rows of ${fields.length} columns, median of ${PASSES} passes, Bun ${Bun.version}\n`);
console.log("| format | bytes/row | decode rows/s per core | encode rows/s per core |");
console.log("|---|---:|---:|---:|");
for (const [name, def, given] of cases) {
  const options = defaults(def, given);
  // Protobuf's proto3 scalars carry the time as int64 µs here, so the column is read as BIGINT.
  const f = name === "protobuf" ? fields.map((x) => (x.name === "date_time" ? { ...x, type: t.bigint() } : x)) : fields;
  const ser = def.serializer!({ options: options as any, fields: f });
  const de = def.deserializer!({ options: options as any, fields: f });
  const encodeAll = () => rows.map((r) => ser.serialize(r));
  encodeAll(); // warm-up
  const enc = cpu(encodeAll);
  const encoded = enc.result.map((e) => (typeof e === "string" ? Buffer.from(e) : e));
  const bytes = encoded.reduce((n, e) => n + e.length, 0) / ROWS;
  const decodeAll = () => {
    let n = 0;
    for (const e of encoded) if (de.deserialize(e)) n++;
    return n;
  };
  decodeAll();
  const dec = cpu(decodeAll);
  if (dec.result !== ROWS) throw new Error(`${name}: decoded ${dec.result} of ${ROWS} rows`);
  const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
  console.log(`| ${name} | ${bytes.toFixed(1)} | ${fmt(ROWS / dec.seconds)} | ${fmt(ROWS / enc.seconds)} |`);
}
