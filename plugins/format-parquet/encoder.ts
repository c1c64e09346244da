/**
 * A Parquet file encoder that can stop and resume between row groups.
 *
 * Rows are buffered column by column; `flushRowGroup()` encodes them as one row
 * group (one PLAIN data page per column, compressed) and returns its bytes,
 * placed at the file offset the encoder tracks. The footer is built from the
 * row groups' metadata only, so `state()` (offset, row count, the row groups'
 * Thrift metadata) is all a restarted process needs to write a valid footer
 * for a file whose bytes are already somewhere else — which is how a file can
 * be finished after a crash from a checkpoint taken in its middle.
 *
 * Column encoding is our own (typed buffers, no per-row objects) because
 * parquetjs shreds every row into objects, which is several times slower for
 * the flat rows a stream writes; the Thrift structures, their codec and the
 * compression codecs come from parquetjs.
 */
import type { Field, Row, SqlType } from "../../core/plugin-api/index.ts";
import { compressPage, decodeThrift, Int64, serializeThrift, thrift, type ParquetCodecName } from "./parquetjs.ts";
import { toJsonText } from "../shared/nested-json.ts";

const MAGIC = Buffer.from("PAR1");

type Physical = "BOOLEAN" | "INT32" | "INT64" | "FLOAT" | "DOUBLE" | "BYTE_ARRAY";

interface ColumnPlan {
  name: string;
  physical: Physical;
  converted?: string;
  optional: boolean;
  /** Turns an engine value into what the physical encoder takes (JSON text for structs and arrays). */
  convert?: (v: unknown) => unknown;
}

function planColumn(f: Field): ColumnPlan {
  const base = { name: f.name, optional: f.nullable };
  return { ...base, ...planType(f.type) };
}

function planType(type: SqlType): Omit<ColumnPlan, "name" | "optional"> {
  switch (type.kind) {
    case "boolean":
      return { physical: "BOOLEAN" };
    case "int":
      if (type.bits === 32) return type.unsigned ? { physical: "INT32", converted: "UINT_32" } : { physical: "INT32" };
      return type.unsigned ? { physical: "INT64", converted: "UINT_64" } : { physical: "INT64" };
    case "float":
      return { physical: type.bits === 32 ? "FLOAT" : "DOUBLE" };
    case "decimal":
      // Engine decimals are JS numbers; they are stored as what they are.
      return { physical: "DOUBLE" };
    case "string":
      return { physical: "BYTE_ARRAY", converted: "UTF8" };
    case "json":
      return { physical: "BYTE_ARRAY", converted: "UTF8" };
    case "timestamp":
      return { physical: "INT64", converted: "TIMESTAMP_MICROS" };
    case "interval":
      return { physical: "INT64" };
    case "bytes":
      return { physical: "BYTE_ARRAY" };
    case "array":
    case "struct":
    case "map":
      // Nested values are written as JSON text (a MAP as an object): every reader can open them.
      return { physical: "BYTE_ARRAY", converted: "UTF8", convert: (v) => toJsonText(type, v) };
  }
}

/** What a checkpoint keeps of a file in progress (JSON-serialisable). */
export interface ParquetFileState {
  version: 1;
  /** Bytes of the file so far (header and finished row groups). */
  offset: number;
  rows: number;
  /** Thrift compact encoding of each finished row group's metadata, base64. */
  rowGroups: string[];
}

export interface ParquetEncoderOptions {
  codec: ParquetCodecName;
  /** Field ids of the columns in the schema (Iceberg readers match columns by id). */
  fieldIds?: number[];
}

export class ParquetFileEncoder {
  private readonly plans: ColumnPlan[];
  private columns: unknown[][];
  private buffered = 0;
  private offset = 0;
  private rows = 0;
  private rowGroups: any[] = [];

  constructor(
    private readonly fields: Field[],
    private readonly options: ParquetEncoderOptions,
    restored?: ParquetFileState,
  ) {
    this.plans = fields.map(planColumn);
    this.columns = this.plans.map(() => []);
    if (restored) {
      this.offset = restored.offset;
      this.rows = restored.rows;
      this.rowGroups = restored.rowGroups.map((b64) => decodeThrift(new thrift.RowGroup(), Buffer.from(b64, "base64")));
    }
  }

  /** Rows added since the last row group. */
  get bufferedRows(): number {
    return this.buffered;
  }

  /** Rows in finished row groups. */
  get writtenRows(): number {
    return this.rows;
  }

  /** Bytes of the file so far (header and finished row groups). */
  get writtenBytes(): number {
    return this.offset;
  }

  add(row: Row): void {
    const cols = this.columns;
    for (let c = 0; c < cols.length; c++) cols[c]!.push(row[c]);
    this.buffered++;
  }

  /** Encodes the buffered rows as a row group (with the file header first, for the first one). */
  flushRowGroup(): Buffer | null {
    if (this.buffered === 0) return null;
    const out: Buffer[] = [];
    let at = this.offset;
    if (at === 0) {
      out.push(MAGIC);
      at = MAGIC.length;
    }
    const rg = new thrift.RowGroup();
    rg.columns = [];
    rg.num_rows = new Int64(this.buffered);
    rg.file_offset = new Int64(at);
    let uncompressed = 0;
    let compressed = 0;
    for (let c = 0; c < this.plans.length; c++) {
      const chunk = this.encodeColumnChunk(this.plans[c]!, this.columns[c]!, at);
      out.push(chunk.bytes);
      rg.columns.push(chunk.meta);
      at += chunk.bytes.length;
      uncompressed += chunk.uncompressed;
      compressed += chunk.bytes.length;
    }
    rg.total_byte_size = new Int64(uncompressed);
    rg.total_compressed_size = new Int64(compressed);
    this.rowGroups.push(rg);
    this.rows += this.buffered;
    this.buffered = 0;
    this.columns = this.plans.map(() => []);
    this.offset = at;
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  /** The bytes that end the file: the footer (a header too, for a file with no row). Flush first. */
  footer(): Buffer {
    if (this.buffered > 0) throw new Error("parquet encoder: flush the buffered rows before the footer");
    const meta = new thrift.FileMetaData();
    meta.version = 1;
    meta.created_by = "runnel (@dsnp/parquetjs thrift)";
    meta.num_rows = new Int64(this.rows);
    meta.row_groups = this.rowGroups;
    meta.key_value_metadata = [];
    const root = new thrift.SchemaElement();
    root.name = "schema";
    root.num_children = this.plans.length;
    meta.schema = [root];
    for (const [i, p] of this.plans.entries()) {
      const el = new thrift.SchemaElement();
      el.name = p.name;
      if (this.options.fieldIds) el.field_id = this.options.fieldIds[i];
      el.type = thrift.Type[p.physical];
      el.repetition_type = thrift.FieldRepetitionType[p.optional ? "OPTIONAL" : "REQUIRED"];
      if (p.converted) el.converted_type = thrift.ConvertedType[p.converted];
      meta.schema.push(el);
    }
    // Says min/max statistics follow each type's natural (signed) order; readers ignore them otherwise.
    meta.column_orders = this.plans.map(() => {
      const order = new thrift.ColumnOrder();
      order.TYPE_ORDER = new thrift.TypeDefinedOrder();
      return order;
    });
    const body = serializeThrift(meta);
    const tail = Buffer.alloc(8);
    tail.writeUInt32LE(body.length, 0);
    MAGIC.copy(tail, 4);
    return Buffer.concat(this.offset === 0 ? [MAGIC, body, tail] : [body, tail]);
  }

  state(): ParquetFileState {
    if (this.buffered > 0) throw new Error("parquet encoder: flush the buffered rows before taking its state");
    return {
      version: 1,
      offset: this.offset,
      rows: this.rows,
      rowGroups: this.rowGroups.map((rg) => serializeThrift(rg).toString("base64")),
    };
  }

  private encodeColumnChunk(plan: ColumnPlan, raw: unknown[], at: number) {
    const n = raw.length;
    let values: unknown[] = raw;
    let levels: Buffer | null = null;
    let nulls = 0;
    if (plan.optional) {
      const defined = new Uint8Array(n);
      values = [];
      for (let i = 0; i < n; i++) {
        const v = raw[i];
        if (v === null || v === undefined) nulls++;
        else {
          defined[i] = 1;
          values.push(plan.convert ? plan.convert(v) : v);
        }
      }
      levels = encodeLevels(defined);
    } else {
      for (let i = 0; i < n; i++) {
        if (raw[i] === null || raw[i] === undefined) {
          throw new Error(`column \`${plan.name}\` is NOT NULL but a row has NULL there; declare the column nullable`);
        }
      }
      if (plan.convert) values = raw.map(plan.convert);
    }
    const encoded = encodePlain(plan, values);
    const body = levels ? Buffer.concat([levels, encoded]) : encoded;
    const page = compressPage(this.options.codec, body);

    const header = new thrift.PageHeader();
    header.type = thrift.PageType.DATA_PAGE;
    header.uncompressed_page_size = body.length;
    header.compressed_page_size = page.length;
    header.data_page_header = new thrift.DataPageHeader();
    header.data_page_header.num_values = n;
    header.data_page_header.encoding = thrift.Encoding.PLAIN;
    header.data_page_header.definition_level_encoding = thrift.Encoding.RLE;
    header.data_page_header.repetition_level_encoding = thrift.Encoding.RLE;
    const stats = new thrift.Statistics();
    stats.null_count = new Int64(nulls);
    header.data_page_header.statistics = stats;
    const headerBytes = serializeThrift(header);

    const meta = new thrift.ColumnMetaData();
    meta.type = thrift.Type[plan.physical];
    meta.encodings = [thrift.Encoding.PLAIN, thrift.Encoding.RLE];
    meta.path_in_schema = [plan.name];
    meta.codec = thrift.CompressionCodec[this.options.codec];
    meta.num_values = new Int64(n);
    meta.total_uncompressed_size = new Int64(headerBytes.length + body.length);
    meta.total_compressed_size = new Int64(headerBytes.length + page.length);
    meta.data_page_offset = new Int64(at);
    const chunkStats = new thrift.Statistics();
    chunkStats.null_count = new Int64(nulls);
    const range = minMax(plan, values);
    if (range) {
      chunkStats.min_value = range.min;
      chunkStats.max_value = range.max;
    }
    meta.statistics = chunkStats;
    const cc = new thrift.ColumnChunk();
    cc.file_offset = new Int64(at);
    cc.meta_data = meta;
    return { bytes: Buffer.concat([headerBytes, page]), meta: cc, uncompressed: headerBytes.length + body.length };
  }
}

/**
 * Min and max of a signed numeric column, PLAIN-encoded, for readers that skip
 * row groups by range (timestamps included). Unsigned, floating columns with
 * NaN, and byte arrays get none: their orderings need more care than they are worth here.
 */
function minMax(plan: ColumnPlan, values: unknown[]): { min: Buffer; max: Buffer } | null {
  if (values.length === 0 || plan.converted === "UINT_64" || plan.converted === "UINT_32") return null;
  if (plan.physical !== "INT64" && plan.physical !== "INT32" && plan.physical !== "DOUBLE" && plan.physical !== "FLOAT") return null;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== "number" || v !== v) return null; // bigint or NaN
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return { min: encodePlain(plan, [lo]), max: encodePlain(plan, [hi]) };
}

/** Definition levels (bit width 1) in the RLE/bit-packing hybrid, as RLE runs, with the v1 length prefix. */
function encodeLevels(defined: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + defined.length * 6 + 8);
  let pos = 4;
  let i = 0;
  while (i < defined.length) {
    const v = defined[i]!;
    let j = i + 1;
    while (j < defined.length && defined[j] === v) j++;
    let header = (j - i) * 2; // run length << 1, RLE run
    while (header >= 0x80) {
      out[pos++] = (header & 0x7f) | 0x80;
      header = Math.floor(header / 128);
    }
    out[pos++] = header;
    out[pos++] = v;
    i = j;
  }
  out.writeUInt32LE(pos - 4, 0);
  return out.subarray(0, pos);
}

const TWO32 = 4294967296;

function encodePlain(plan: ColumnPlan, values: unknown[]): Buffer {
  const n = values.length;
  switch (plan.physical) {
    case "INT64": {
      const buf = Buffer.allocUnsafe(8 * n);
      for (let i = 0; i < n; i++) {
        const v = values[i];
        if (typeof v === "bigint") buf.writeBigInt64LE(BigInt.asIntN(64, v), i * 8);
        else {
          const x = v as number;
          if (!Number.isInteger(x)) throw new Error(`column \`${plan.name}\`: ${String(v)} is not an integer`);
          const hi = Math.floor(x / TWO32);
          buf.writeUInt32LE(x - hi * TWO32, i * 8);
          buf.writeInt32LE(hi | 0, i * 8 + 4);
        }
      }
      return buf;
    }
    case "INT32": {
      const buf = Buffer.allocUnsafe(4 * n);
      for (let i = 0; i < n; i++) buf.writeInt32LE(Number(values[i]) | 0, i * 4);
      return buf;
    }
    case "DOUBLE": {
      const arr = new Float64Array(n);
      for (let i = 0; i < n; i++) arr[i] = values[i] as number;
      return Buffer.from(arr.buffer);
    }
    case "FLOAT": {
      const arr = new Float32Array(n);
      for (let i = 0; i < n; i++) arr[i] = values[i] as number;
      return Buffer.from(arr.buffer);
    }
    case "BOOLEAN": {
      const buf = Buffer.alloc(Math.ceil(n / 8));
      for (let i = 0; i < n; i++) if (values[i]) buf[i >> 3]! |= 1 << (i & 7);
      return buf;
    }
    case "BYTE_ARRAY": {
      let bound = 0;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        bound += 4 + (typeof v === "string" ? v.length * 3 : v instanceof Uint8Array ? v.length : String(v).length * 3);
      }
      const buf = Buffer.allocUnsafe(bound);
      let pos = 0;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        let len: number;
        if (typeof v === "string") len = buf.write(v, pos + 4, "utf8");
        else if (v instanceof Uint8Array) {
          buf.set(v, pos + 4);
          len = v.length;
        } else {
          len = buf.write(String(v), pos + 4, "utf8");
        }
        buf.writeUInt32LE(len, pos);
        pos += 4 + len;
      }
      return buf.subarray(0, pos);
    }
  }
}
