/**
 * The filesystem source: every file under a directory or S3 prefix (or those
 * a glob / regex picks), each file a split.
 *
 * A file belongs to subtask hash(path) mod parallelism, so subtasks list the
 * same location and agree without talking; each reads its files one at a time
 * in name or modification-time order. The checkpoint keeps, per file, either
 * that it is finished or where its reader stands (byte offset and line,
 * record, row group and row, Avro block and record: see file-readers.ts). A
 * restored subtask, whatever the parallelism, skips finished files and resumes
 * started ones at their position, so every record is read once. With
 * `source.watch` the location is listed again every `source.watch_interval`
 * and new files are read as they appear; without it the source ends when its
 * files are read.
 *
 * Files are taken to be immutable once visible (S3 objects are; our sink
 * renames finished files into place): a file that grows after it was read is
 * not read again.
 */
import type { Row, SourceContext, SourcePoll, SourceReader } from "../../core/plugin-api/index.ts";
import { openFileReader, type Compression, type FileKind, type FileReader } from "./file-readers.ts";
import type { Storage, StoredFile } from "./storage.ts";

export interface SourceSettings {
  storage: Storage;
  /** Whether a listed path (relative to the location) is read. */
  match: (path: string) => boolean;
  order: "name" | "modification_time";
  /** How often to list again (ms), or null to read what is there and end. */
  watchMs: number | null;
  compression: "auto" | Compression;
  kind: FileKind;
}

/** What the checkpoint keeps per file. */
export type FileSplitState = { v: 1; done: true } | { v: 1; at: unknown };

/** FNV-1a: a stable hash of the path, so every subtask assigns a file to the same owner. */
export function ownerOf(path: string, parallelism: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < path.length; i++) {
    h ^= path.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % parallelism;
}

function compressionOf(setting: SourceSettings["compression"], path: string): Compression {
  if (setting !== "auto") return setting;
  if (/\.gz$/i.test(path)) return "gzip";
  if (/\.zst(d)?$/i.test(path)) return "zstd";
  return "none";
}

export class FileSystemSourceReader implements SourceReader {
  private readonly done = new Set<string>();
  /** Positions of started files of ours, from the checkpoint, until they are opened. */
  private readonly started = new Map<string, unknown>();
  /** Paths queued, being read or done: not queued again. */
  private readonly seen = new Set<string>();
  private queue: StoredFile[] = [];
  private current: { file: StoredFile; reader: FileReader } | null = null;
  private listedAt = -Infinity;
  private readonly withPath: boolean;

  constructor(
    private readonly ctx: SourceContext<unknown>,
    private readonly s: SourceSettings,
  ) {
    for (const [path, state] of Object.entries(ctx.restored)) {
      if (!this.owns(path)) continue;
      const st = state as FileSplitState;
      if (st?.v !== 1) throw new Error(`filesystem source ${ctx.tableName}: the checkpoint holds a file position of an unknown version for '${path}'`);
      if ("done" in st) {
        this.done.add(path);
        this.seen.add(path);
      } else this.started.set(path, st.at); // queued again by the first listing, resumed at its position
    }
    this.withPath = (ctx.metadata ?? []).includes("path");
    if (ctx.metadata?.some((m) => m !== "path")) throw new Error(`filesystem source ${ctx.tableName}: METADATA FROM keys are 'path' only`);
  }

  private owns(path: string): boolean {
    return ownerOf(path, this.ctx.parallelism) === this.ctx.subtaskIndex;
  }

  splits(): string[] {
    return this.current ? [this.current.file.path] : [];
  }

  /** Lists the location and queues the files of ours not seen yet, in the configured order (called with an empty queue). */
  private async relist(): Promise<void> {
    this.listedAt = Date.now();
    const listed = await this.s.storage.list();
    const fresh = listed.filter((f) => this.s.match(f.path) && this.owns(f.path) && !this.seen.has(f.path));
    // Started files first (a restore resumes them before anything new), then the order asked for.
    const byName = (a: StoredFile, b: StoredFile) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
    const cmp =
      this.s.order === "name" ? byName : (a: StoredFile, b: StoredFile) => a.mtimeMs - b.mtimeMs || byName(a, b);
    fresh.sort((a, b) => Number(this.started.has(b.path)) - Number(this.started.has(a.path)) || cmp(a, b));
    for (const f of fresh) this.seen.add(f.path);
    // Restored positions of files that are gone stay as they are (kept in the checkpoint, never reopened).
    this.queue = fresh;
    this.ctx.metrics.set("files_pending", this.queue.length);
  }

  private async openNext(): Promise<boolean> {
    const file = this.queue.shift();
    if (!file) return false;
    const what = `'${file.path}' (${this.s.storage.describe})`;
    const at = this.started.get(file.path);
    const reader = await openFileReader(this.s.kind, {
      storage: this.s.storage,
      file,
      what,
      fields: this.withPath ? this.ctx.fields.slice(0, -1) : this.ctx.fields,
      compression: compressionOf(this.s.compression, file.path),
      badRecord: (position, error) => this.ctx.badRecord(position, error),
      at,
    });
    this.current = { file, reader };
    return true;
  }

  async poll(maxRows: number): Promise<SourcePoll> {
    if (!this.current) {
      const watch = this.s.watchMs;
      if (this.queue.length === 0 && (this.listedAt === -Infinity || (watch !== null && Date.now() - this.listedAt >= watch))) {
        await this.relist();
      }
      if (!(await this.openNext())) {
        if (watch === null) return { end: true };
        // Nothing to read until the next listing: wait a little, not past what the engine allows a poll.
        await new Promise((r) => setTimeout(r, Math.min(100, Math.max(1, this.listedAt + watch - Date.now()))));
        return { batches: [] };
      }
    }
    const cur = this.current!;
    const rows = await cur.reader.read(maxRows);
    if (rows === null) {
      cur.reader.close();
      this.done.add(cur.file.path);
      this.started.delete(cur.file.path);
      this.current = null;
      this.ctx.metrics.add("files_total");
      this.ctx.metrics.set("files_pending", this.queue.length);
      return { batches: [] };
    }
    if (this.withPath) for (const r of rows as Row[]) r.push(cur.file.path);
    return { batches: [{ split: cur.file.path, rows }] };
  }

  snapshot(): Record<string, unknown> {
    const out: Record<string, FileSplitState> = {};
    for (const path of this.done) out[path] = { v: 1, done: true };
    for (const [path, at] of this.started) out[path] = { v: 1, at };
    if (this.current) out[this.current.file.path] = { v: 1, at: this.current.reader.position() };
    return out;
  }

  close(): void {
    this.current?.reader.close();
    this.current = null;
  }
}
