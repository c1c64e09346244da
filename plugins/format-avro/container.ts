/**
 * Avro object container files (the `.avro` files of Hadoop, Spark, Flink and
 * fastavro): a header holding the writer's schema, codec and sync marker, then
 * blocks of records, each followed by the marker. Read block by block from a
 * byte stream, with each record turned into a row of the table by the same
 * by-name resolution as bare datums (codec.ts), so files of different schema
 * versions read into one table.
 *
 * A place in the file is (offset of a block, records of it already taken): a
 * reader reopened there reads the header from the start, then continues at
 * that block. Codecs: null, deflate and zstandard (snappy, bzip2 and xz are
 * refused by name).
 */
import avro from "avsc";
import { inflateRawSync } from "node:zlib";
import type { Readable } from "node:stream";
import type { Field, Row } from "../../core/plugin-api/index.ts";
import { parseAvroSchema, recordReader } from "./codec.ts";

const HEADER = avro.Type.forSchema({
  type: "record",
  name: "org.apache.avro.file.Header",
  fields: [
    { name: "magic", type: { type: "fixed", name: "Magic", size: 4 } },
    { name: "meta", type: { type: "map", values: "bytes" } },
    { name: "sync", type: { type: "fixed", name: "Sync", size: 16 } },
  ],
}) as avro.Type;
const LONG = avro.Type.forSchema("long") as avro.Type;
const MAGIC = Buffer.from([0x4f, 0x62, 0x6a, 0x01]); // "Obj" 1

export interface AvroContainerPosition {
  /** File offset of the block being read (or of the first block). */
  block: number;
  /** Records of that block already taken. */
  record: number;
}

/** Pulls a byte stream into one growing window, so a block can be read whole. */
class Window {
  private buf: Buffer = Buffer.alloc(0);
  private it: AsyncIterator<Buffer>;
  private ended = false;
  /** File offset of buf[0]. */
  start: number;
  constructor(
    private readonly stream: Readable,
    at: number,
  ) {
    this.it = stream[Symbol.asyncIterator]();
    this.start = at;
  }
  get bytes(): Buffer {
    return this.buf;
  }
  /** Reads on until `n` bytes are in the window; false when the file ends first. */
  async ensure(n: number): Promise<boolean> {
    while (this.buf.length < n && !this.ended) {
      const r = await this.it.next();
      if (r.done) this.ended = true;
      else this.buf = this.buf.length === 0 ? r.value : Buffer.concat([this.buf, r.value]);
    }
    return this.buf.length >= n;
  }
  /** Drops the first `n` bytes. */
  consume(n: number): void {
    this.buf = this.buf.subarray(n);
    this.start += n;
  }
  get atEnd(): boolean {
    return this.ended && this.buf.length === 0;
  }
  close(): void {
    this.stream.destroy();
  }
}

/** Decodes a value at `at`, reading more of the stream while it is cut short. */
async function decodeFrom(w: Window, type: avro.Type, at: number): Promise<{ value: any; offset: number } | null> {
  for (let want = Math.max(at + 64, 1024); ; want *= 2) {
    const complete = await w.ensure(want);
    const r = type.decode(w.bytes, at);
    if (r.offset >= 0) return r;
    if (!complete) return null;
  }
}

type Inflate = (data: Buffer) => Buffer;

function codecOf(name: string, what: string): Inflate {
  switch (name) {
    case "null":
      return (d) => d;
    case "deflate":
      return (d) => inflateRawSync(d);
    case "zstandard":
      return (d) => Buffer.from(Bun.zstdDecompressSync(d));
    default:
      throw new Error(`${what} is compressed with the Avro codec '${name}', which is not supported; write it with 'null', 'deflate' or 'zstandard'`);
  }
}

export class AvroContainerReader {
  private started = false;
  private values: unknown[] = [];
  private taken = 0;
  private blockAt: number;

  private constructor(
    private readonly w: Window,
    private readonly sync: Buffer,
    private readonly inflate: Inflate,
    private readonly writer: avro.Type,
    private readonly toRow: (v: Record<string, unknown>) => Row,
    private readonly what: string,
    private readonly bad: (position: string, err: unknown) => void,
    at: AvroContainerPosition,
  ) {
    this.blockAt = at.block;
    this.taken = at.record;
  }

  /**
   * Opens a file at a position (or its start). `open(offset)` gives the file's
   * bytes from an offset; the header is always read from offset 0.
   */
  static async open(
    open: (offset: number) => Promise<Readable>,
    fields: Field[],
    what: string,
    /** Called for a record that does not fit the columns (NULL in a NOT NULL column...). */
    bad: (position: string, err: unknown) => void,
    at?: AvroContainerPosition,
  ): Promise<AvroContainerReader> {
    let w = new Window(await open(0), 0);
    const header = await decodeFrom(w, HEADER, 0);
    if (header === null || !MAGIC.equals(header.value.magic)) {
      w.close();
      throw new Error(`${what} is not an Avro object container file (it does not start with 'Obj' 1)`);
    }
    const meta = header.value.meta as Record<string, Buffer>;
    const schemaText = meta["avro.schema"]?.toString("utf8");
    if (!schemaText) {
      w.close();
      throw new Error(`${what} has no avro.schema in its header`);
    }
    const writer = parseAvroSchema(schemaText, `the schema in ${what}`);
    if ((writer as any).typeName !== "record") {
      w.close();
      throw new Error(`${what} holds ${(writer as any).typeName} values, not records; the table's columns read records`);
    }
    const toRow = recordReader(writer as any, fields);
    if (toRow instanceof Error) {
      w.close();
      throw new Error(`${what}: ${toRow.message}`);
    }
    const inflate = codecOf(meta["avro.codec"]?.toString("utf8") || "null", what);
    w.consume(header.offset);
    const start = at ?? { block: w.start, record: 0 };
    if (start.block !== w.start) {
      w.close();
      w = new Window(await open(start.block), start.block);
    }
    return new AvroContainerReader(w, header.value.sync as Buffer, inflate, writer, toRow, what, bad, start);
  }

  position(): AvroContainerPosition {
    return { block: this.blockAt, record: this.taken };
  }

  /** Reads the next block; false at the end of the file. */
  private async nextBlock(): Promise<boolean> {
    const w = this.w;
    if (!(await w.ensure(1))) return false;
    const count = await decodeFrom(w, LONG, 0);
    const size = count && (await decodeFrom(w, LONG, count.offset));
    if (!count || !size) throw new Error(`${this.what} ends inside a block header at byte ${w.start}`);
    const dataAt = size.offset;
    const end = dataAt + Number(size.value) + 16;
    if (!(await w.ensure(end))) throw new Error(`${this.what} ends inside the block at byte ${w.start} (truncated?)`);
    const bytes = w.bytes;
    if (!bytes.subarray(end - 16, end).equals(this.sync)) throw new Error(`${this.what}: the block at byte ${w.start} does not end with the file's sync marker (corrupt file)`);
    const data = this.inflate(bytes.subarray(dataAt, end - 16));
    const n = Number(count.value);
    const values: unknown[] = new Array(n);
    let pos = 0;
    for (let i = 0; i < n; i++) {
      const r = this.writer.decode(data, pos);
      if (r.offset < 0) throw new Error(`${this.what}: record ${i} of the block at byte ${w.start} is cut short`);
      pos = r.offset;
      values[i] = r.value;
    }
    this.blockAt = w.start;
    this.values = values;
    w.consume(end);
    return true;
  }

  /** Up to `max` rows (fewer when records are bad); null at the end of the file. */
  async read(max: number): Promise<Row[] | null> {
    if (!this.started) {
      // First call: load the block the position names and skip what was taken.
      this.started = true;
      const skip = this.taken;
      if (!(await this.nextBlock())) return null;
      this.taken = skip;
    }
    while (this.taken >= this.values.length) {
      const before = this.w.start;
      if (!(await this.nextBlock())) {
        this.blockAt = before;
        this.taken = 0;
        this.values = [];
        return null;
      }
      this.taken = 0;
    }
    const end = Math.min(this.values.length, this.taken + max);
    const rows: Row[] = [];
    for (let i = this.taken; i < end; i++) {
      try {
        rows.push(this.toRow(this.values[i] as Record<string, unknown>));
      } catch (err) {
        this.bad(`${this.what}, block at byte ${this.blockAt}, record ${i}`, err);
      }
    }
    this.taken = end;
    return rows;
  }

  close(): void {
    this.w.close();
  }
}
