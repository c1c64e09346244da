/**
 * Readers of one file each, resumable from a position a checkpoint keeps:
 * - lines (JSON and other text record formats): decompressed byte offset of
 *   the next line and the lines taken;
 * - CSV (csv-parse): byte offset of the next record, the records taken and
 *   the header, so a resumed reader need not read the file's start again;
 * - Parquet: row group and row within it;
 * - Avro object container files: block offset and record within the block.
 *
 * Compressed files (gzip, zstd) cannot be entered in the middle: a resumed
 * reader decompresses from the start and skips to the offset.
 */
import { createGunzip, createZstdDecompress } from "node:zlib";
import { PassThrough, Transform, pipeline, type Readable } from "node:stream";
import { parse as csvParse } from "csv-parse";
import type { Deserializer, Field, Row } from "../../core/plugin-api/index.ts";
import { AvroContainerReader, type AvroContainerPosition } from "../format-avro/container.ts";
import { csvParseOptions, csvRowBuilder, type CsvOptionValues } from "../format-csv/index.ts";
import { ParquetFileDecoder } from "../format-parquet/decoder.ts";
import type { Storage, StoredFile } from "./storage.ts";

export type Compression = "none" | "gzip" | "zstd";

export interface FileReader {
  /** Up to about `max` rows (fewer where records are bad or a block ends); null at the end of the file. */
  read(max: number): Promise<Row[] | null>;
  /** Where to resume (JSON-serialisable). */
  position(): unknown;
  close(): void;
}

export interface OpenArgs {
  storage: Storage;
  file: StoredFile;
  /** The file as errors and bad-record positions name it. */
  what: string;
  /** The columns the file fills (the table's, less METADATA FROM ones). */
  fields: Field[];
  compression: Compression;
  badRecord(position: string, error: unknown): void;
  /** From the checkpoint, or undefined for a file not started. */
  at: unknown;
}

/** Drops the first `n` bytes of a stream (a compressed file resumed at a decompressed offset). */
function skipBytes(n: number): Transform {
  let left = n;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (left >= chunk.length) {
        left -= chunk.length;
        return done();
      }
      const rest = left > 0 ? chunk.subarray(left) : chunk;
      left = 0;
      done(null, rest);
    },
  });
}

/** The file's (decompressed) bytes from `offset`. */
async function openBytes(a: OpenArgs, offset: number): Promise<Readable> {
  if (a.compression === "none") return await a.storage.openRead(a.file.path, offset);
  const raw = await a.storage.openRead(a.file.path, 0);
  const inflate = a.compression === "gzip" ? createGunzip() : createZstdDecompress();
  const out = offset > 0 ? skipBytes(offset) : new PassThrough();
  // Errors of any stage reach the last one, whose reader sees them.
  return pipeline(raw, inflate, out, (err) => {
    if (err && !out.destroyed) out.destroy(err);
  }) as Readable;
}

function streamError(a: OpenArgs, err: unknown): Error {
  const e = err as { code?: string; message?: string };
  if (e?.code?.startsWith("Z_") || /incorrect header|unknown compression|zstd|invalid/i.test(e?.message ?? "")) {
    return new Error(`${a.what} does not decompress as ${a.compression} (${e?.message}); set source.compression to how it is compressed`);
  }
  return err instanceof Error ? err : new Error(String(err));
}

// ------------------------------------------------------------------ lines

export interface LinePosition {
  /** (Decompressed) byte offset of the next line. */
  offset: number;
  /** Lines taken so far. */
  line: number;
}

class LinesReader implements FileReader {
  private buf: Buffer = Buffer.alloc(0);
  private pos = 0;
  /** Offset of buf[0] in the (decompressed) file. */
  private bufStart: number;
  private ended = false;
  private line: number;
  private readonly it: AsyncIterator<Buffer>;

  constructor(
    private readonly a: OpenArgs,
    private readonly stream: Readable,
    private readonly format: Deserializer,
    at: LinePosition,
  ) {
    this.bufStart = at.offset;
    this.line = at.line;
    this.it = stream[Symbol.asyncIterator]();
  }

  private async more(): Promise<void> {
    let r;
    try {
      r = await this.it.next();
    } catch (err) {
      throw streamError(this.a, err);
    }
    if (r.done) {
      this.ended = true;
      return;
    }
    const rest = this.buf.length - this.pos;
    this.buf = rest > 0 ? Buffer.concat([this.buf.subarray(this.pos), r.value]) : r.value;
    this.bufStart += this.pos;
    this.pos = 0;
  }

  async read(max: number): Promise<Row[] | null> {
    const rows: Row[] = [];
    const format = this.format;
    let budget = max * 4;
    while (rows.length < max && budget-- > 0) {
      let nl = this.buf.indexOf(10, this.pos);
      if (nl < 0) {
        if (!this.ended) {
          if (rows.length > 0 && this.buf.length - this.pos === 0) break; // hand over what we have before waiting
          await this.more();
          continue;
        }
        if (this.pos >= this.buf.length) return rows.length > 0 ? rows : null;
        nl = this.buf.length; // the last line, without a newline
      }
      const start = this.pos;
      let stop = nl;
      if (stop > start && this.buf[stop - 1] === 13) stop--; // CRLF
      this.pos = Math.min(nl + 1, this.buf.length);
      const lineNumber = ++this.line;
      if (stop === start) continue;
      const text = this.buf.toString("utf8", start, stop);
      if (text.charCodeAt(0) <= 32 && text.trim() === "") continue;
      const ready = format.prepare?.(text);
      if (ready) await ready;
      try {
        const row = format.deserialize(text);
        if (row !== null) rows.push(row);
      } catch (err) {
        this.a.badRecord(`${this.a.what}:${lineNumber}`, err);
      }
    }
    return rows;
  }

  position(): LinePosition {
    return { offset: this.bufStart + this.pos, line: this.line };
  }

  close(): void {
    this.stream.destroy();
  }
}

// ------------------------------------------------------------------ csv

export interface CsvPosition {
  offset: number;
  record: number;
  /** The header row, once read (null: the file has none). */
  header: string[] | null;
}

class CsvReader implements FileReader {
  private readonly it: AsyncIterator<{ record: (string | null)[]; info: { bytes: number } }>;
  private build: ((record: (string | null)[]) => Row) | null;
  private offset: number;
  private record: number;
  private header: string[] | null;
  /** Offset where the parser started: record byte counts are relative to it. */
  private readonly parseStart: number;

  constructor(
    private readonly a: OpenArgs,
    private readonly stream: Readable,
    hasHeader: boolean,
    at: CsvPosition,
  ) {
    this.parseStart = at.offset;
    this.it = stream[Symbol.asyncIterator]();
    this.offset = at.offset;
    this.record = at.record;
    this.header = at.header;
    this.build = !hasHeader || at.header ? csvRowBuilder(a.fields, at.header) : null;
  }

  async read(max: number): Promise<Row[] | null> {
    const rows: Row[] = [];
    while (rows.length < max) {
      let r;
      try {
        r = await this.it.next();
      } catch (err) {
        throw new Error(`${this.a.what}: ${(err as Error).message ?? String(err)}`);
      }
      if (r.done) return rows.length > 0 ? rows : null;
      const { record, info } = r.value;
      this.offset = this.parseStart + info.bytes;
      this.record++;
      if (this.build === null) {
        this.header = record.map((h) => h ?? "");
        try {
          this.build = csvRowBuilder(this.a.fields, this.header);
        } catch (err) {
          throw new Error(`${this.a.what}: ${(err as Error).message}`);
        }
        continue;
      }
      try {
        rows.push(this.build(record));
      } catch (err) {
        this.a.badRecord(`${this.a.what}: record ${this.record}`, err);
      }
    }
    return rows;
  }

  position(): CsvPosition {
    return { offset: this.offset, record: this.record, header: this.header };
  }

  close(): void {
    this.stream.destroy();
  }
}

// ------------------------------------------------------------------ parquet

export interface ParquetPosition {
  group: number;
  row: number;
}

class ParquetReader implements FileReader {
  private rows: Row[] | null = null;
  constructor(
    private readonly decoder: ParquetFileDecoder,
    private group: number,
    private row: number,
  ) {}

  async read(max: number): Promise<Row[] | null> {
    for (;;) {
      if (this.group >= this.decoder.rowGroups) return null;
      if (this.row >= this.decoder.rowsIn(this.group)) {
        this.group++;
        this.row = 0;
        this.rows = null;
        continue;
      }
      this.rows ??= await this.decoder.readRowGroup(this.group);
      const out = this.rows.slice(this.row, this.row + max);
      this.row += out.length;
      return out;
    }
  }

  position(): ParquetPosition {
    return { group: this.group, row: this.row };
  }

  close(): void {
    this.rows = null;
  }
}

// ------------------------------------------------------------------ open

export type FileKind =
  | { kind: "lines"; format: Deserializer }
  | { kind: "csv"; options: CsvOptionValues }
  | { kind: "parquet" }
  | { kind: "avro" };

export async function openFileReader(kind: FileKind, a: OpenArgs): Promise<FileReader> {
  switch (kind.kind) {
    case "lines": {
      const at = (a.at as LinePosition | undefined) ?? { offset: 0, line: 0 };
      return new LinesReader(a, await openBytes(a, at.offset), kind.format, at);
    }
    case "csv": {
      const at = (a.at as CsvPosition | undefined) ?? { offset: 0, record: 0, header: null };
      const parser = csvParse({ ...csvParseOptions(kind.options), info: true });
      const bytes = await openBytes(a, at.offset);
      const stream = pipeline(bytes, parser, (err) => {
        if (err && !parser.destroyed) parser.destroy(streamError(a, err));
      }) as unknown as Readable;
      return new CsvReader(a, stream, kind.options.header !== false, at);
    }
    case "parquet": {
      const at = (a.at as ParquetPosition | undefined) ?? { group: 0, row: 0 };
      const decoder = await ParquetFileDecoder.open(
        { size: a.file.size, read: (start, length) => a.storage.readRange(a.file.path, start, length) },
        a.fields,
        a.what,
      );
      return new ParquetReader(decoder, at.group, at.row);
    }
    case "avro": {
      const reader = await AvroContainerReader.open(
        (offset) => a.storage.openRead(a.file.path, offset),
        a.fields,
        a.what,
        a.badRecord,
        a.at as AvroContainerPosition | undefined,
      );
      return reader;
    }
  }
}
