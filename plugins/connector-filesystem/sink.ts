/**
 * The filesystem sink's writer: one open file per partition, rolled by size,
 * age or inactivity, made visible exactly once through the engine's two-phase
 * commit.
 *
 * At a barrier every open file ends its current block (a Parquet row group),
 * its storage uploads what fills whole parts (S3) or fsyncs (local), and the
 * checkpoint keeps what finishing it needs: storage progress (upload id, part
 * ETags, the bytes not yet uploaded) and the encoder's footer state. Files
 * rolled since the last barrier are fully written but invisible; they are the
 * prepared commit, made visible (CompleteMultipartUpload / rename) once the
 * checkpoint is complete. After a crash the restored writer finishes every file
 * the checkpoint had open from that state (a file finished before is detected
 * and left alone), and aborts unfinished uploads / deletes staging files of
 * its own that no checkpoint knows.
 */
import { crashPoint, type Batch, type SinkContext, type SinkWriter } from "../../core/plugin-api/index.ts";
import type { EncoderFactory, FileEncoder } from "./encoders.ts";
import { compileTimePattern, FileNamer, partitionValue } from "./paths.ts";
import { readyFrom, stateId, type FileTarget, type ReadyFile, type Storage, type TargetState } from "./storage.ts";

export interface RollingPolicy {
  /** Roll once a file holds this many bytes. */
  fileSize: number | null;
  /** Roll a file this long (µs) after it was opened. */
  intervalMicros: number | null;
  /** Roll a file that got no row for this long (µs). */
  inactivityMicros: number | null;
}

export interface SinkSettings {
  rolling: RollingPolicy;
  timePattern: string | null;
  partitionFields: string[];
  prefix: string;
  suffix: string;
  /** Replaces the time pattern and fields: a table format's own partition key (a directory path) per row; null: unpartitioned. */
  partitioner?: (ctx: SinkContext<unknown>) => ((batch: Batch, i: number) => string) | null;
  /** Publishes finished files through a table format's log (Delta Lake, Iceberg) instead of by name alone. */
  log?: FileCommitLog;
}

/** A finished file as a table format's log describes it. */
export interface FinishedFile {
  /** Path under the sink's `path` (partition directories included). */
  relPath: string;
  partition: string;
  size: number;
  /** The encoder's state after the last row group (Parquet: row groups with their statistics). */
  encoderState: unknown;
}

/**
 * A table format's transaction log over the sink's files. Files are described
 * when finished (the description travels in the checkpoint, in `ReadyFile.meta`)
 * and published by one log commit per completed checkpoint, after the files
 * themselves were made visible. `writer` says whose commit it is (the state
 * `state()` returned when it was prepared), so commits prepared by another
 * subtask or an earlier run are recognised when they are made again.
 */
export interface FileCommitLog {
  describe(file: FinishedFile): unknown;
  /** Publishes a completed checkpoint's files; idempotent (a restore commits the restored checkpoint again). */
  commit(checkpointId: number, files: ReadyFile[], writer: unknown): Promise<void>;
  /**
   * Files a restore finished from checkpoint `checkpointId`'s open files (made visible already): returns those
   * the log does not hold yet, which the next checkpoint publishes.
   */
  recovered(checkpointId: number, files: ReadyFile[], writer: unknown): Promise<ReadyFile[]>;
  /** Publishes the files finished when the job ends right after checkpoint `checkpointId`. */
  close(checkpointId: number, files: ReadyFile[]): Promise<void>;
  /** This writer's identity in the log, kept in checkpoints and prepared commits. */
  state(): unknown;
}

interface OpenFile {
  partition: string;
  relPath: string;
  target: FileTarget;
  encoder: FileEncoder;
  openedAt: number;
  lastWriteAt: number;
  /** The first checkpoint whose snapshot held this file open. */
  heldSince?: number;
}

interface OpenFileState {
  partition: string;
  /** Absent in checkpoints taken before table formats. */
  relPath?: string;
  target: TargetState;
  encoder: unknown;
}

/** What the checkpoint keeps of this writer (besides the prepared commit). */
export interface FileSinkSnapshot {
  version: 1;
  open: OpenFileState[];
  /** The files prepared at this checkpoint, so a restore does not take their uploads for orphans. */
  committing: ReadyFile[];
  /** With a table format: the checkpoint taken, and the log's writer state. */
  checkpointId?: number;
  log?: unknown;
}

export interface FileSinkPrepared {
  version: 1;
  files: ReadyFile[];
  log?: unknown;
}

export class FileSystemSinkWriter implements SinkWriter {
  private readonly files = new Map<string, OpenFile>();
  private ready: ReadyFile[] = [];
  private lastPrepared: FileSinkPrepared | null = null;
  private lastPreparedId = -1;
  /** Checkpoints whose snapshot held open files: a kill in their commit leaves a file for recovery to finish. */
  private readonly snapshotsWithOpenFiles = new Set<number>();
  private wroteSincePrepare = false;
  /** With a log: prepared commits not committed yet (close publishes only after the last one). */
  private uncommitted = 0;
  /** The checkpoint restored from, when the log needs to know (-1: none). */
  private restoredId = -1;
  private readonly namer: FileNamer;
  private readonly partitionOf: ((batch: Batch, i: number) => string) | null;

  private constructor(
    private readonly ctx: SinkContext<unknown>,
    private readonly storage: Storage,
    private readonly encoders: EncoderFactory,
    private readonly settings: SinkSettings,
  ) {
    this.namer = new FileNamer(settings.prefix, settings.suffix, encoders.ext, ctx.subtaskIndex);
    this.partitionOf = settings.partitioner ? settings.partitioner(ctx) : compilePartitioner(ctx, settings);
  }

  static async create(ctx: SinkContext<unknown>, storage: Storage, encoders: EncoderFactory, settings: SinkSettings): Promise<FileSystemSinkWriter> {
    await storage.check();
    const w = new FileSystemSinkWriter(ctx, storage, encoders, settings);
    // After a restart with fewer subtasks, this one finishes the files of every subtask it takes over.
    const states = (ctx.restoredAll ?? (ctx.restored ? [ctx.restored] : [])) as (FileSinkSnapshot | null)[];
    await w.recover(states);
    return w;
  }

  /** Finishes the files the restored checkpoint had open, then removes what no checkpoint knows. */
  private async recover(restored: (FileSinkSnapshot | null)[]): Promise<void> {
    const known = new Set<string>();
    for (const snap of restored) {
      if (!snap) continue;
      if (snap.version !== 1) throw new Error(`filesystem sink: the checkpoint holds sink state of an unknown version (${String(snap.version)})`);
      for (const f of snap.committing) known.add(stateId(f));
      const finished: ReadyFile[] = [];
      for (const f of snap.open) {
        known.add(stateId(f.target));
        const encoder = this.encoders.create(f.encoder);
        const ready = await this.storage.finishFrom(f.target, encoder.footer());
        crashPoint("filesystem-recovery-before-complete");
        if (ready) await this.storage.complete(ready);
        crashPoint("filesystem-recovery-after-complete");
        const log = this.settings.log;
        if (log) {
          // Finished before (null) or now: either way the log may not hold it yet.
          const file = ready ?? readyFrom(f.target);
          const size = encoder.writtenBytes + encoder.footer().length;
          file.meta = log.describe({ relPath: f.relPath ?? this.storage.relative(f.target), partition: f.partition, size, encoderState: f.encoder });
          finished.push(file);
        }
      }
      if (this.settings.log && snap.checkpointId !== undefined) {
        this.restoredId = Math.max(this.restoredId, snap.checkpointId);
        if (finished.length > 0) this.ready.push(...(await this.settings.log.recovered(snap.checkpointId, finished, snap.log)));
      }
    }
    const { subtaskIndex, parallelism } = this.ctx;
    const removed = await this.storage.cleanup(known, (name) => {
      const owner = this.namer.ownerOf(name);
      return owner !== null && owner % parallelism === subtaskIndex;
    });
    if (removed > 0) this.ctx.log.info(`filesystem sink ${this.ctx.tableName}[${subtaskIndex}]: removed ${removed} unfinished file(s) of an earlier run that no checkpoint covers`);
  }

  async write(batch: Batch): Promise<void> {
    const n = batch.rows.length;
    if (n === 0) return;
    this.wroteSincePrepare = true;
    const now = Date.now() * 1000;
    if (this.partitionOf === null) {
      const file = this.files.get("") ?? (await this.openFile("", now));
      const enc = file.encoder;
      for (let i = 0; i < n; i++) {
        enc.add(batch, i);
        if (enc.full) await this.flush(file);
      }
      file.lastWriteAt = now;
      await this.maybeRoll(file, now);
      return;
    }
    const touched = new Set<OpenFile>();
    for (let i = 0; i < n; i++) {
      const partition = this.partitionOf(batch, i);
      const file = this.files.get(partition) ?? (await this.openFile(partition, now));
      file.encoder.add(batch, i);
      touched.add(file);
      if (file.encoder.full) await this.flush(file);
    }
    for (const file of touched) {
      file.lastWriteAt = now;
      await this.maybeRoll(file, now);
    }
  }

  private async openFile(partition: string, now: number): Promise<OpenFile> {
    const name = this.namer.next();
    const relPath = partition ? `${partition}/${name}` : name;
    const target = await this.storage.open(relPath);
    const file: OpenFile = { partition, relPath, target, encoder: this.encoders.create(), openedAt: now, lastWriteAt: now };
    this.files.set(partition, file);
    return file;
  }

  private async flush(file: OpenFile): Promise<void> {
    const bytes = file.encoder.flush();
    if (bytes) await file.target.append(bytes);
  }

  private async maybeRoll(file: OpenFile, now: number): Promise<boolean> {
    const r = this.settings.rolling;
    if (
      (r.fileSize !== null && file.target.size >= r.fileSize) ||
      (r.intervalMicros !== null && now - file.openedAt >= r.intervalMicros) ||
      (r.inactivityMicros !== null && now - file.lastWriteAt >= r.inactivityMicros)
    ) {
      await this.roll(file);
      return true;
    }
    return false;
  }

  /** Writes the file's last bytes; it becomes visible when the next checkpoint commits. */
  private async roll(file: OpenFile): Promise<void> {
    this.files.delete(file.partition);
    const rest = file.encoder.flush();
    const footer = file.encoder.footer();
    const last = rest ? Buffer.concat([rest, footer]) : footer;
    const ready = await file.target.finish(last);
    if (this.settings.log) {
      ready.meta = this.settings.log.describe({ relPath: file.relPath, partition: file.partition, size: file.target.size, encoderState: file.encoder.state() });
    }
    crashPoint("filesystem-during-rollover");
    this.ready.push(ready);
  }

  async prepareCommit(checkpointId: number): Promise<FileSinkPrepared | null> {
    const now = Date.now() * 1000;
    for (const file of [...this.files.values()]) {
      if (await this.maybeRoll(file, now)) continue;
      await this.flush(file);
    }
    const prepared: FileSinkPrepared = { version: 1, files: this.ready };
    if (this.settings.log) {
      prepared.log = this.settings.log.state();
      if (prepared.files.length > 0) this.uncommitted++;
    }
    this.ready = [];
    this.lastPrepared = prepared;
    this.lastPreparedId = checkpointId;
    this.wroteSincePrepare = false;
    return prepared.files.length > 0 ? prepared : null;
  }

  /** Synchronous: the engine stores what it returns. Whole parts were uploaded as they filled. */
  snapshot(): FileSinkSnapshot {
    const open: OpenFileState[] = [];
    for (const file of this.files.values()) {
      file.heldSince ??= this.lastPreparedId;
      open.push({ partition: file.partition, relPath: file.relPath, target: file.target.checkpoint(), encoder: file.encoder.state() });
    }
    // Only a checkpoint with files to publish gets a commit call (which forgets the ids up to it), so the set stays small.
    if (open.length > 0 && this.lastPrepared && this.lastPrepared.files.length > 0) this.snapshotsWithOpenFiles.add(this.lastPreparedId);
    const snap: FileSinkSnapshot = { version: 1, open, committing: this.lastPrepared?.files ?? [] };
    if (this.settings.log) {
      snap.checkpointId = this.lastPreparedId;
      snap.log = this.settings.log.state();
    }
    return snap;
  }

  onCheckpointComplete(checkpointId: number): void {
    // Every checkpoint from then on holds these files open too, until they roll and the next prepare takes them.
    for (const file of this.files.values()) if (file.heldSince !== undefined && file.heldSince <= checkpointId) file.target.recoverable = true;
  }

  async commit(checkpointId: number, prepared: unknown): Promise<void> {
    const p = prepared as FileSinkPrepared;
    if (p?.version !== 1) throw new Error(`filesystem sink: checkpoint ${checkpointId} holds a prepared commit of an unknown version`);
    if (this.snapshotsWithOpenFiles.has(checkpointId)) crashPoint("filesystem-commit-with-open-files");
    for (const id of this.snapshotsWithOpenFiles) if (id <= checkpointId) this.snapshotsWithOpenFiles.delete(id);
    for (const f of p.files) {
      crashPoint("filesystem-before-complete");
      await this.storage.complete(f);
      crashPoint("filesystem-after-complete");
    }
    if (this.settings.log) {
      await this.settings.log.commit(checkpointId, p.files, p.log);
      // Restored commits (of an earlier run) were never counted; this run's are.
      if (checkpointId > this.restoredId) this.uncommitted = Math.max(0, this.uncommitted - 1);
    }
  }

  /**
   * After the final checkpoint committed and nothing was written since, the
   * open files hold exactly what that checkpoint covers: finishing them now is
   * what a restore from it would do. Otherwise (a failure) they are left for
   * the restore, which finishes them from the checkpoint.
   */
  async close(): Promise<void> {
    // A failed job aborts the signal before closing its operators.
    if (this.ctx.signal.aborted || this.wroteSincePrepare) return;
    const log = this.settings.log;
    // With a log, files recovered at start are published even when no checkpoint came after; and only once
    // every prepared commit was, so the log's order (one transaction version per checkpoint) holds.
    const last = log ? Math.max(this.lastPreparedId, this.restoredId) : this.lastPreparedId;
    if (last < 0 || (log && this.uncommitted > 0)) return;
    for (const file of [...this.files.values()]) {
      await this.roll(file);
    }
    const ready = this.ready;
    this.ready = [];
    for (const f of ready) await this.storage.complete(f);
    if (log && ready.length > 0) await log.close(last, ready);
  }
}

function compilePartitioner(ctx: SinkContext<unknown>, s: SinkSettings): ((batch: Batch, i: number) => string) | null {
  const time = s.timePattern ? compileTimePattern(s.timePattern) : null;
  const cols = s.partitionFields.map((name) => {
    const at = ctx.fields.findIndex((f) => f.name === name);
    const idx = at >= 0 ? at : ctx.fields.findIndex((f) => f.name.toLowerCase() === name.toLowerCase());
    if (idx < 0) {
      throw new Error(
        `filesystem sink ${ctx.tableName}: option 'partitioning.fields' names column '${name}', which the table does not have; columns: ${ctx.fields.map((f) => f.name).join(", ")}`,
      );
    }
    return { name: ctx.fields[idx]!.name, idx };
  });
  if (!time && cols.length === 0) return null;
  // Rows in a row mostly share their partition: when the time part and every column's value equal the last row's, so does the path.
  let lastTime: string | null = null;
  const lastValues: unknown[] = cols.map(() => undefined);
  let lastPath: string | null = null;
  const at = cols.map((c) => c.idx);
  const sameValues = (row: unknown[]) => {
    for (let k = 0; k < at.length; k++) if (row[at[k]!] !== lastValues[k]) return false;
    return true;
  };
  return (batch, i) => {
    const row = batch.rows[i]!;
    const timePart = time ? time(batch.times[i]!) : null;
    if (lastPath !== null && timePart === lastTime && sameValues(row)) return lastPath;
    const parts: string[] = [];
    if (timePart !== null) parts.push(timePart);
    cols.forEach((c, k) => {
      lastValues[k] = row[c.idx];
      parts.push(`${c.name}=${partitionValue(row[c.idx])}`);
    });
    lastTime = timePart;
    lastPath = parts.join("/");
    return lastPath;
  };
}
