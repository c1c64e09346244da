/**
 * How rows become file bytes: Parquet row groups (resumable from a
 * checkpointed footer state) or newline-delimited records from a record
 * format such as json or csv (after the format's file header), optionally gzip (one gzip member per flush, which
 * every gzip reader reads as one stream).
 */
import { gzipSync } from "node:zlib";
import type { Batch, ByteSink, Row, Serializer } from "../../core/plugin-api/index.ts";
import type { ParquetFileEncoder, ParquetFileFormat, ParquetFileState } from "../format-parquet/index.ts";

export interface FileEncoder {
  /** Adds row i of the batch. */
  add(batch: Batch, i: number): void;
  /** Whether enough is buffered to write it out now. */
  readonly full: boolean;
  readonly bufferedRows: number;
  /** Bytes of the file produced so far (flushed). */
  readonly writtenBytes: number;
  /** Encodes what is buffered (a Parquet row group; a block of lines). */
  flush(): Uint8Array | null;
  /** The bytes that end the file (Parquet footer); flush first. */
  footer(): Uint8Array;
  /** What a restarted process needs to write the footer; flush first. */
  state(): unknown;
}

export interface EncoderFactory {
  readonly ext: string;
  create(restored?: unknown): FileEncoder;
}

const EMPTY = new Uint8Array(0);

class ParquetEncoder implements FileEncoder {
  constructor(
    private readonly enc: ParquetFileEncoder,
    private readonly rowGroupSize: number,
  ) {}
  add(batch: Batch, i: number): void {
    this.enc.add(batch.rows[i]!);
  }
  get full(): boolean {
    return this.enc.bufferedRows >= this.rowGroupSize;
  }
  get bufferedRows(): number {
    return this.enc.bufferedRows;
  }
  get writtenBytes(): number {
    return this.enc.writtenBytes;
  }
  flush(): Uint8Array | null {
    return this.enc.flushRowGroup();
  }
  footer(): Uint8Array {
    return this.enc.footer();
  }
  state(): ParquetFileState {
    return this.enc.state();
  }
}

const FLUSH_CHARS = 1 << 20;
const decoder = new TextDecoder();
const utf8 = new TextEncoder();

/** What both line encoders share: a flush's bytes, gzipped when asked, counted into the file's size (its checkpointed state). */
abstract class LineFileEncoder implements FileEncoder {
  private written: number;
  constructor(
    protected readonly format: Serializer,
    private readonly gzip: boolean,
    restored?: { written: number },
  ) {
    this.written = restored?.written ?? 0;
  }
  abstract add(batch: Batch, i: number): void;
  abstract get full(): boolean;
  abstract get bufferedRows(): number;
  abstract flush(): Uint8Array | null;
  /** A flush's bytes as the file gets them. */
  protected emit(raw: Uint8Array): Uint8Array {
    const out = this.gzip ? gzipSync(raw) : raw;
    this.written += out.length;
    return out;
  }
  get writtenBytes(): number {
    return this.written;
  }
  footer(): Uint8Array {
    return EMPTY;
  }
  state(): { written: number } {
    return { written: this.written };
  }
}

/** Lines of text as a format serializes them: gathered as strings and joined once per flush. */
class LinesEncoder extends LineFileEncoder {
  /** The lines since the last flush, joined then: one flat string to encode, where appending made a rope to flatten (15% of q10). */
  private lines: string[] = [];
  private chars = 0;
  /** The format's header line, until the file's first flush writes it. */
  private header: string | null;
  constructor(format: Serializer, gzip: boolean, restored?: { written: number }) {
    super(format, gzip, restored);
    // A restored file has its header already; a new one starts with it.
    this.header = restored ? null : (format.fileHeader ?? null);
  }
  add(batch: Batch, i: number): void {
    const v = this.format.serialize(batch.rows[i]!, batch.ops?.[i], batch.before?.[i]);
    const line = typeof v === "string" ? v : decoder.decode(v);
    this.lines.push(line);
    this.chars += line.length + 1;
  }
  get full(): boolean {
    return this.chars >= FLUSH_CHARS;
  }
  get bufferedRows(): number {
    return this.lines.length;
  }
  flush(): Uint8Array | null {
    if (this.chars === 0) return null;
    if (this.header !== null) this.lines.unshift(this.header);
    this.header = null;
    this.lines.push("");
    const raw = Buffer.from(this.lines.join("\n"), "utf8");
    this.lines = [];
    this.chars = 0;
    return this.emit(raw);
  }
}

/** The block of a flush as bytes, which a format's `encodeInto` appends to (not zero-filled: only [0, length) is read). */
class BlockBuffer implements ByteSink {
  bytes: Uint8Array;
  length = 0;
  constructor(capacity: number) {
    this.bytes = Buffer.allocUnsafe(capacity);
  }
  reserve(n: number): Uint8Array {
    if (this.length + n > this.bytes.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.bytes.length * 2, this.length + n));
      grown.set(this.bytes.subarray(0, this.length));
      this.bytes = grown;
    }
    return this.bytes;
  }
}

const FIRST_BLOCK = 1 << 16;

/** Lines a format writes into one buffer per flush (`Serializer.encodeInto`): no string per line. */
class LineBytesEncoder extends LineFileEncoder {
  /**
   * The block being filled; none between a flush and the next row, so files that stop receiving rows hold
   * no buffer. A new block is as large as the last one got (growing from 64 KiB by copies was 15% of q10).
   */
  private current: BlockBuffer | null = null;
  private capacity = FIRST_BLOCK;
  private rows = 0;
  private readonly encodeInto: (row: Row, out: ByteSink) => void;
  constructor(format: Serializer, gzip: boolean, restored?: { written: number }) {
    super(format, gzip, restored);
    this.encodeInto = format.encodeInto!.bind(format);
    // A restored file has its header already; a new one starts with it.
    if (!restored && format.fileHeader !== undefined) this.appendText(format.fileHeader);
  }
  private get block(): BlockBuffer {
    return (this.current ??= new BlockBuffer(this.capacity));
  }
  add(batch: Batch, i: number): void {
    const block = this.block;
    // Rows of an updating stream are written as serialize gives them.
    if (batch.ops) {
      const v = this.format.serialize(batch.rows[i]!, batch.ops[i], batch.before?.[i]);
      this.appendText(typeof v === "string" ? v : decoder.decode(v));
    } else {
      this.encodeInto(batch.rows[i]!, block);
      block.reserve(1)[block.length++] = 10;
    }
    this.rows++;
  }
  private appendText(line: string): void {
    const block = this.block;
    const b = block.reserve(line.length * 3 + 1);
    block.length += utf8.encodeInto(line, b.subarray(block.length)).written;
    b[block.length++] = 10;
  }
  get full(): boolean {
    return this.current !== null && this.current.length >= FLUSH_CHARS;
  }
  get bufferedRows(): number {
    return this.rows;
  }
  flush(): Uint8Array | null {
    const block = this.current;
    if (this.rows === 0 || block === null) return null;
    // The block goes out as it is (no copy); the next is made at the next row, room for as much plus a margin.
    this.current = null;
    this.capacity = Math.max(FIRST_BLOCK, block.length + FIRST_BLOCK);
    this.rows = 0;
    return this.emit(block.bytes.subarray(0, block.length));
  }
}

export function parquetEncoders(format: ParquetFileFormat): EncoderFactory {
  return {
    ext: "parquet",
    create: (restored) => new ParquetEncoder(format.encoder(restored as ParquetFileState | undefined), format.rowGroupSize),
  };
}

export function lineEncoders(format: Serializer, gzip: boolean, ext: string): EncoderFactory {
  return {
    ext: gzip ? `${ext}.gz` : ext,
    create: (restored) =>
      format.encodeInto
        ? new LineBytesEncoder(format, gzip, restored as { written: number } | undefined)
        : new LinesEncoder(format, gzip, restored as { written: number } | undefined),
  };
}
