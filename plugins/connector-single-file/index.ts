/**
 * `single_file` (Arroyo-compatible): a source reading one file of
 * newline-delimited records, and an exactly-once sink appending records to one
 * file. For tests and small jobs.
 *
 * The sink stages rows in memory; at a checkpoint barrier `prepareCommit`
 * describes them as `{ offset, data }` (stored in the checkpoint), and `commit`
 * writes them at exactly that offset after truncating the file there, so
 * replaying a commit after a crash gives the same file.
 */
import { closeSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readSync, statSync, writeFileSync, writeSync, constants } from "node:fs";
import { dirname } from "node:path";
import {
  defineConnector,
  definePlugin,
  opt,
  type Batch,
  type Row,
  type SinkContext,
  type SinkWriter,
  type SourceContext,
  type SourcePoll,
  type SourceReader,
  type FileAccess,
} from "../../core/plugin-api/index.ts";

const options = {
  path: opt.string({ required: true, description: "The file to read (source) or write (sink)" }),
  overwrite: opt.boolean({ default: false, description: "Sink: replace the file when it exists and is not empty (otherwise the job refuses to start)" }),
};

type Options = { path: string; overwrite?: boolean };

/** The path checked against the job's file policy (the control plane confines it; the CLI does not). */
const allowedPath = (files: FileAccess | undefined, path: string) => (files ? files.resolve(path, "path") : path);

export const SPLIT = "file";
const CHUNK = 1 << 20;

export interface FilePosition {
  /** Byte offset of the next unread line. */
  offset: number;
  /** Lines consumed so far (the next line is number line + 1). */
  line: number;
}

function fileError(role: string, path: string, err: unknown): Error {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === "ENOENT") return new Error(`single_file ${role}: file '${path}' (option 'path') does not exist`);
  if (e?.code === "EISDIR") return new Error(`single_file ${role}: '${path}' (option 'path') is a directory, not a file`);
  return new Error(`single_file ${role}: cannot use '${path}' (option 'path'): ${e?.message ?? String(err)}`);
}

// ------------------------------------------------------------------ source

export class SingleFileReader implements SourceReader {
  private readonly owner: boolean;
  private fd: number | null = null;
  private buf: Buffer;
  /** File offset of buf[0]. */
  private bufStart: number;
  private bufLen = 0;
  private pos = 0;
  private eof = false;
  private line: number;
  private done = false;
  private readonly path: string;

  constructor(
    private readonly ctx: SourceContext<Options>,
    chunkSize = CHUNK,
  ) {
    this.path = allowedPath(ctx.files, ctx.options.path);
    this.owner = ctx.subtaskIndex === 0;
    this.buf = Buffer.allocUnsafe(chunkSize);
    const restored = ctx.restored[SPLIT] as FilePosition | undefined;
    this.bufStart = restored?.offset ?? 0;
    this.line = restored?.line ?? 0;
    if (!this.owner) return;
    if (!ctx.format) throw new Error(`single_file source '${ctx.tableName}' needs a format (e.g. format = 'json')`);
    try {
      this.fd = openSync(this.path, "r");
      if (fstatSync(this.fd).isDirectory()) throw Object.assign(new Error("is a directory"), { code: "EISDIR" });
    } catch (err) {
      this.closeFile();
      throw fileError("source", this.path, err);
    }
  }

  splits(): string[] {
    return this.owner ? [SPLIT] : [];
  }

  /** Reads the file from bufStart + pos into the buffer, growing it when one line fills it. */
  private refill(): void {
    const from = this.bufStart + this.pos;
    if (this.pos === 0 && this.bufLen === this.buf.length) {
      const bigger = Buffer.allocUnsafe(this.buf.length * 2);
      this.buf = bigger;
    }
    let filled = 0;
    try {
      while (filled < this.buf.length) {
        const n = readSync(this.fd!, this.buf, filled, this.buf.length - filled, from + filled);
        if (n === 0) break;
        filled += n;
      }
    } catch (err) {
      throw fileError("source", this.path, err);
    }
    this.bufStart = from;
    this.pos = 0;
    this.bufLen = filled;
    this.eof = filled < this.buf.length;
  }

  poll(maxRows: number): SourcePoll | Promise<SourcePoll> {
    if (this.done || !this.owner) {
      this.closeFile();
      return { end: true };
    }
    const rows: Row[] = [];
    const format = this.ctx.format!;
    // Bounded work per poll even when most lines are blank or bad.
    let budget = maxRows * 4;
    while (rows.length < maxRows && budget-- > 0) {
      if (this.pos >= this.bufLen) {
        // Buffer consumed: read on, or stop at the end of the file.
        if (this.eof) {
          this.done = true;
          break;
        }
        this.refill();
        continue;
      }
      let nl = this.buf.indexOf(10, this.pos);
      if (nl >= this.bufLen) nl = -1;
      let end: number;
      let next: number;
      if (nl >= 0) {
        end = nl;
        next = nl + 1;
      } else if (!this.eof) {
        // A line continues past the buffer: read again from its start.
        this.refill();
        continue;
      } else {
        // The last line, without a trailing newline.
        end = this.bufLen;
        next = this.bufLen;
      }
      let stop = end;
      if (stop > this.pos && this.buf[stop - 1] === 13) stop--; // CRLF
      const lineNumber = ++this.line;
      const start = this.pos;
      this.pos = next;
      if (stop === start) continue;
      const text = this.buf.toString("utf8", start, stop);
      if (text.charCodeAt(0) <= 32 && text.trim() === "") continue;
      // The format needs async work first (a schema fetched by id): finish this poll
      // after it, reading the same line again.
      const ready = format.prepare?.(text);
      if (ready) {
        this.pos = start;
        this.line--;
        return ready.then(() => (rows.length > 0 ? { batches: [{ split: SPLIT, rows }] } : this.poll(maxRows)));
      }
      try {
        const row = format.deserialize(text);
        if (row !== null) rows.push(row);
      } catch (err) {
        this.ctx.badRecord(`${this.path}:${lineNumber}`, err);
      }
    }
    if (rows.length === 0 && this.done) {
      this.closeFile();
      return { end: true };
    }
    return { batches: [{ split: SPLIT, rows }] };
  }

  snapshot(): Record<string, unknown> {
    if (!this.owner) return {};
    return { [SPLIT]: { offset: this.bufStart + this.pos, line: this.line } satisfies FilePosition };
  }

  private closeFile(): void {
    if (this.fd !== null) {
      closeSync(this.fd);
      this.fd = null;
    }
  }

  close(): void {
    this.closeFile();
  }
}

// ------------------------------------------------------------------ sink

export interface PreparedWrite {
  /** Where `data` starts in the committed file. */
  offset: number;
  data: string;
}

export interface SinkState {
  nextOffset: number;
}

const textDecoder = new TextDecoder();

export class SingleFileWriter implements SinkWriter {
  private pending: string[] = [];
  /** Where the next prepared data will start (after everything prepared so far). */
  private nextOffset: number;
  private lastCommitted = -Infinity;
  private readonly path: string;

  constructor(private readonly ctx: SinkContext<Options>) {
    this.path = allowedPath(ctx.files, ctx.options.path);
    if (!ctx.format) throw new Error(`single_file sink '${ctx.tableName}' needs a format (e.g. format = 'json')`);
    const restored = ctx.restored as SinkState | undefined | null;
    if (restored && typeof restored.nextOffset === "number") {
      // The engine re-commits the restored checkpoint, which truncates any later, uncommitted output.
      this.nextOffset = restored.nextOffset;
    } else {
      // A fresh job never replaces someone's data unasked (an empty file, e.g. left by a run that crashed before its first checkpoint, is fine).
      if (!ctx.options.overwrite && sizeOf(this.path) > 0) {
        throw new Error(
          `single_file sink '${ctx.tableName}': '${this.path}' (option 'path') exists and is not empty; ` +
            `add overwrite = 'true' to the table's options to replace it, or write to another path`,
        );
      }
      try {
        mkdirSync(dirname(this.path), { recursive: true });
        writeFileSync(this.path, "");
      } catch (err) {
        throw fileError("sink", this.path, err);
      }
      this.nextOffset = 0;
    }
  }

  write(batch: Batch): void {
    const format = this.ctx.format!;
    const { rows, ops, before } = batch;
    let text = "";
    for (let i = 0; i < rows.length; i++) {
      const encoded = format.serialize(rows[i]!, ops?.[i], before?.[i]);
      text += (typeof encoded === "string" ? encoded : textDecoder.decode(encoded)) + "\n";
    }
    if (text) this.pending.push(text);
  }

  prepareCommit(_checkpointId: number): PreparedWrite {
    const data = this.pending.length === 1 ? this.pending[0]! : this.pending.join("");
    this.pending = [];
    const prepared = { offset: this.nextOffset, data };
    this.nextOffset += Buffer.byteLength(data);
    return prepared;
  }

  snapshot(): SinkState {
    return { nextOffset: this.nextOffset };
  }

  commit(checkpointId: number, prepared: unknown): void {
    if (checkpointId < this.lastCommitted) return; // a later commit already includes this state
    const { offset, data } = prepared as PreparedWrite;
    let fd: number;
    try {
      fd = openSync(this.path, constants.O_RDWR | constants.O_CREAT, 0o644);
    } catch (err) {
      throw fileError("sink", this.path, err);
    }
    try {
      const size = fstatSync(fd).size;
      if (size < offset) {
        throw new Error(
          `single_file sink: '${this.path}' has ${size} bytes but checkpoint ${checkpointId} expects ${offset} committed bytes before its data; ` +
            `the file was truncated or replaced outside Runnel, so the output is inconsistent with the job state. ` +
            `Restore the file or start the job without its saved state.`,
        );
      }
      if (size !== offset) ftruncateSync(fd, offset);
      const bytes = Buffer.from(data, "utf8");
      let written = 0;
      while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written, offset + written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.lastCommitted = checkpointId;
  }

  close(): void {
    // Data becomes visible only at commits; the engine takes a final checkpoint at the end of input.
  }
}

/** Size of the file at `path`; 0 when there is none (or it is not a file: opening it reports that). */
function sizeOf(path: string): number {
  try {
    const st = statSync(path);
    return st.isFile() ? st.size : 0;
  } catch {
    return 0;
  }
}

export const singleFile = defineConnector({
  name: "single_file",
  description: "One file of newline-delimited records: a source, or an exactly-once sink",
  options,
  needsFormat: true,
  validate(table) {
    const o = table.options as Options;
    // `{{ VAR }}` left for the worker to resolve is checked there, when the sink or source opens the file.
    if (!o.path.includes("{{")) allowedPath(table.files, o.path);
  },
  source: {
    create: (ctx) => new SingleFileReader(ctx as SourceContext<Options>),
  },
  sink: {
    create: (ctx) => new SingleFileWriter(ctx as SinkContext<Options>),
    maxParallelism: 1,
    updating: true,
  },
});

export default definePlugin({ name: "connector-single-file", version: "0.1.0", connectors: [singleFile] });
