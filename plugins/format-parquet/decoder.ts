/**
 * Reading Parquet files into rows, one row group at a time, for file sources.
 *
 * parquetjs reads the footer and decodes the column chunks (pages, dictionary
 * and RLE encodings, every codec including the zstd added in parquetjs.ts);
 * its values arrive as primitives (bigint for INT64, Buffers for byte arrays),
 * and the conversion into the table's column types is ours, so timestamps
 * keep their microseconds (parquetjs's own record reader turns them into
 * millisecond Dates). Columns are matched to the table by name (exactly, else
 * case-insensitively); nested Parquet columns (lists, structs, maps) are not
 * read: a table column that names one is refused when the file is opened.
 * Files our sink writes hold arrays and structs as JSON text, which is read.
 */
import { typeName, type Field, type Row, type SqlType } from "../../core/plugin-api/index.ts";
import { parquetReaderModule, thrift } from "./parquetjs.ts";
import { fromJsonValue } from "../shared/nested-json.ts";

/** Where a file's bytes come from: its size and ranged reads. */
export interface ParquetByteSource {
  size: number;
  read(start: number, length: number): Promise<Buffer>;
}

interface Leaf {
  name: string;
  physical: string;
  converted: string | undefined;
  /** The thrift logicalType union (pyarrow writes TIMESTAMP(NANOS) there only). */
  logical: any;
  scale: number;
  precision: number;
  nested: boolean;
}

type Convert = (v: any) => unknown;

const enumName = (e: Record<string, number>, v: number | null | undefined) =>
  v === null || v === undefined ? undefined : Object.keys(e).find((k) => e[k] === v);

/** Top-level columns of a file's schema (the thrift elements after the root). */
function leaves(elements: any[]): Leaf[] {
  const out: Leaf[] = [];
  let i = 1;
  const skip = (at: number): number => {
    const n = elements[at].num_children ?? 0;
    let next = at + 1;
    for (let c = 0; c < n; c++) next = skip(next);
    return next;
  };
  while (i < elements.length) {
    const e = elements[i];
    const nested = (e.num_children ?? 0) > 0 || enumName(thrift.FieldRepetitionType, e.repetition_type) === "REPEATED";
    out.push({
      name: e.name,
      physical: enumName(thrift.Type, e.type) ?? "GROUP",
      converted: enumName(thrift.ConvertedType, e.converted_type),
      logical: e.logicalType,
      scale: e.scale ?? 0,
      precision: e.precision ?? 0,
      nested,
    });
    i = skip(i);
  }
  return out;
}

/** Units per microsecond of an INT64 timestamp column, or null when the column is not a timestamp. */
function timestampDivisor(l: Leaf): number | null {
  const ts = l.logical?.TIMESTAMP;
  if (ts?.unit) {
    if (ts.unit.MILLIS) return 1e-3;
    if (ts.unit.MICROS) return 1;
    if (ts.unit.NANOS) return 1e3;
  }
  if (l.converted === "TIMESTAMP_MILLIS") return 1e-3;
  if (l.converted === "TIMESTAMP_MICROS") return 1;
  return null;
}

function bigEndianDecimal(b: Buffer, scale: number): number {
  let v = 0n;
  for (const byte of b) v = (v << 8n) | BigInt(byte);
  if (b.length > 0 && b[0]! & 0x80) v -= 1n << BigInt(b.length * 8);
  return Number(v) / 10 ** scale;
}

function numberOf(l: Leaf): Convert | null {
  if (l.converted === "DECIMAL" || l.logical?.DECIMAL) {
    if (l.physical === "FIXED_LEN_BYTE_ARRAY" || l.physical === "BYTE_ARRAY") return (v: Buffer) => bigEndianDecimal(v, l.scale);
    return (v) => Number(v); // parquetjs applies the scale to INT32/INT64 decimals
  }
  if (l.physical === "INT32" || l.physical === "INT64" || l.physical === "FLOAT" || l.physical === "DOUBLE") return (v) => Number(v);
  return null;
}

/** How a column's primitive values become the engine's values of a SQL type, or a message why they cannot. */
function converter(l: Leaf, type: SqlType): Convert | string {
  const text = (v: Buffer) => v.toString("utf8");
  switch (type.kind) {
    case "boolean":
      return l.physical === "BOOLEAN" ? (v) => v : "a BOOLEAN column";
    case "int": {
      if (l.physical !== "INT32" && l.physical !== "INT64") return "an integer column";
      return (v) => {
        const n = Number(v);
        if (typeof v === "bigint" && !Number.isSafeInteger(n)) throw new Error(`${v} is beyond ±2^53, which Runnel's integers hold exactly`);
        return n;
      };
    }
    case "float":
    case "decimal":
      return numberOf(l) ?? "a numeric column";
    case "timestamp": {
      if (l.physical === "INT32" && (l.converted === "DATE" || l.logical?.DATE)) return (v) => v * 86_400_000_000;
      const div = l.physical === "INT64" ? timestampDivisor(l) : null;
      if (div === null) return "a TIMESTAMP column (INT64 with a TIMESTAMP unit, or DATE)";
      if (div === 1) return (v) => Number(v);
      if (div < 1) return (v) => Number(v) * 1000;
      return (v) => Number((v as bigint) / 1000n);
    }
    case "interval":
      return l.physical === "INT64" || l.physical === "INT32" ? (v) => Number(v) : "an integer column of microseconds";
    case "string":
    case "json":
      if (l.physical === "BYTE_ARRAY" || l.physical === "FIXED_LEN_BYTE_ARRAY") return text;
      return "a string column (BYTE_ARRAY)";
    case "bytes":
      return l.physical === "BYTE_ARRAY" || l.physical === "FIXED_LEN_BYTE_ARRAY" ? (v: Buffer) => new Uint8Array(v) : "a BYTE_ARRAY column";
    case "array":
    case "struct":
    case "map":
      // Our sink writes nested values as JSON text (a MAP as an object).
      return l.physical === "BYTE_ARRAY" ? (v: Buffer) => fromJsonValue(type, JSON.parse(text(v))) : "a string column holding JSON (nested Parquet columns are not read)";
  }
}

interface ColumnPlan {
  /** Key of the column's data in a decoded row group (null: the file lacks it, so NULL). */
  key: string | null;
  convert: Convert;
}

export class ParquetFileDecoder {
  private constructor(
    private readonly envelope: any,
    private readonly schema: any,
    private readonly metadata: any,
    private readonly plans: ColumnPlan[],
    private readonly fields: Field[],
  ) {}

  /** Opens a file: reads and checks its footer against the table's columns. `what` names the file in errors. */
  static async open(src: ParquetByteSource, fields: Field[], what: string): Promise<ParquetFileDecoder> {
    const { ParquetEnvelopeReader, ParquetReader } = parquetReaderModule;
    const envelope = new ParquetEnvelopeReader((offset: number, length: number) => src.read(offset, length), () => {}, src.size, {});
    let reader: any;
    try {
      reader = await ParquetReader.openEnvelopeReader(envelope, {});
    } catch (err) {
      throw new Error(`${what} is not a Parquet file we can read: ${(err as Error)?.message ?? String(err)}`);
    }
    const cols = leaves(reader.metadata.schema);
    const plans = fields.map((f): ColumnPlan => {
      const l = cols.find((c) => c.name === f.name) ?? cols.find((c) => c.name.toLowerCase() === f.name.toLowerCase());
      if (!l) {
        if (!f.nullable) throw new Error(`${what} has no column '${f.name}', declared NOT NULL; its columns: ${cols.map((c) => c.name).join(", ")}`);
        return { key: null, convert: () => null };
      }
      if (l.nested) throw new Error(`${what}: column '${l.name}' is a nested Parquet column (list, struct or map), which is not read; declare it as TEXT from a file holding it as JSON text, or leave it out of the table`);
      const c = converter(l, f.type);
      if (typeof c === "string") {
        throw new Error(`${what}: column '${l.name}' is ${l.physical}${l.converted ? ` (${l.converted})` : ""}, which does not read as ${typeName(f.type)}; declare the column with a matching type, or write ${c}`);
      }
      return { key: l.name, convert: c };
    });
    return new ParquetFileDecoder(envelope, reader.schema, reader.metadata, plans, fields);
  }

  get rowGroups(): number {
    return this.metadata.row_groups.length;
  }

  rowsIn(group: number): number {
    return Number(this.metadata.row_groups[group].num_rows);
  }

  /** The rows of one row group, in file order. */
  async readRowGroup(group: number): Promise<Row[]> {
    const rg = this.metadata.row_groups[group];
    const wanted = this.plans.filter((p) => p.key !== null).map((p) => [p.key!]);
    const data = await this.envelope.readRowGroup(this.schema, rg, wanted);
    const n = Number(rg.num_rows);
    const width = this.plans.length;
    const rows: Row[] = new Array(n);
    for (let r = 0; r < n; r++) rows[r] = new Array(width);
    for (let c = 0; c < width; c++) {
      const plan = this.plans[c]!;
      if (plan.key === null) {
        for (let r = 0; r < n; r++) rows[r]![c] = null;
        continue;
      }
      const col = data.columnData[plan.key];
      const { dlevels, values } = col as { dlevels: number[]; values: unknown[] };
      const max = this.schema.fields[plan.key].dLevelMax as number;
      const field = this.fields[c]!;
      let v = 0;
      for (let r = 0; r < n; r++) {
        if (max > 0 && dlevels[r] !== max) {
          if (!field.nullable) throw new Error(`column '${field.name}' is NOT NULL but row ${r} of row group ${group} holds NULL`);
          rows[r]![c] = null;
          continue;
        }
        rows[r]![c] = plan.convert(values[v++]);
      }
    }
    return rows;
  }
}
