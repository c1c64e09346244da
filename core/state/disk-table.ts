/**
 * A keyed table larger than memory: entries live in an embedded SQLite database
 * (bun:sqlite, in a scratch folder) with the recently used ones cached in memory,
 * up to a byte budget shared by the tables of a process. The cache is the heap
 * table itself; between batches (never inside one, where operators hold entries)
 * the least recently used entries are written back and dropped.
 *
 * Checkpoints are the same files the heap backend writes: a row records the
 * checkpoint epoch it last changed in (the table's epoch), so a delta is the cached changes plus the
 * rows of the closing epoch, read through a second connection whose read
 * transaction, begun at the barrier, sees the database as it was then (SQLite's
 * WAL gives that snapshot while writes go on). The database is scratch: a
 * restore rebuilds it from checkpoint files.
 */
import { Database, type Statement } from "bun:sqlite";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { DELETE, PUT, packr, packSequence, unpackr, type StateRecord } from "./file-format.ts";
import { keyGroupOf } from "./key-groups.ts";
import { Slicer } from "./slicer.ts";
import { KeyedTable, StateEntry, type StateCodec, type TableSnapshot } from "./tables.ts";

/** The scratch folder of a job's disk tables in this process (under `parent`), named so a later run can tell whose it was. */
export function scratchDir(parent: string, jobId: string): string {
  removeStaleScratch(parent);
  return join(parent, `runnel-disk-state-${jobId}-pid${process.pid}`);
}

/** Scratch folders of processes that are gone (killed before they could clean up): their databases can be gigabytes. */
function removeStaleScratch(parent: string): void {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(/^runnel-disk-state-.*-pid(\d+)$/.exec(name)?.[1]);
    if (!pid || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch (err) {
      // ESRCH: no such process. EPERM means one lives (another user's): leave it.
      if ((err as NodeJS.ErrnoException).code === "ESRCH") rmSync(join(parent, name), { recursive: true, force: true });
    }
  }
}

/** Memory shared by every disk table's cache in this process. */
export class CacheBudget {
  used = 0;
  constructor(readonly bytes: number) {}
}

const SLICE = 500;
/** Rough bytes a cached entry takes in the JS heap beyond its encoded size. */
const ENTRY_OVERHEAD = 160;

interface DiskMeta {
  /** Estimated bytes in memory. */
  bytes: number;
  lastUsed: number;
  /** The database has a row for this key. */
  inDb: boolean;
  /** The cached value differs from the database row (or there is none). */
  dirty: boolean;
}

export class DiskKeyedTable<V> extends KeyedTable<V> {
  private readonly db: Database;
  private readonly reader: Database;
  private readonly meta = new WeakMap<StateEntry<V>, DiskMeta>();
  private tick = 0;
  private count = 0;
  private readonly sql: {
    get: Statement;
    put: Statement;
    tombstone: Statement;
    deleteTombstones: Statement;
    byTime: Statement;
  };

  constructor(
    name: string,
    codec: StateCodec<V> | null,
    maxParallelism: number,
    options: { expiryGranularity?: number },
    private readonly dir: string,
    private readonly budget: CacheBudget,
  ) {
    super(name, codec, maxParallelism, options);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${name.replace(/[^A-Za-z0-9_-]/g, "_")}.db`);
    for (const suffix of ["", "-wal", "-shm"]) rmSync(file + suffix, { force: true });
    this.db = new Database(file, { create: true });
    // Scratch data rebuilt from checkpoints on restore: no fsync; WAL for the barrier's read snapshot.
    this.db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY;");
    this.db.exec(
      "CREATE TABLE kv (hash INTEGER NOT NULL, key BLOB NOT NULL, kg INTEGER NOT NULL, value BLOB, time REAL, epoch INTEGER NOT NULL, PRIMARY KEY (hash, key)) WITHOUT ROWID",
    );
    this.db.exec("CREATE INDEX kv_epoch ON kv (epoch)");
    if (options.expiryGranularity) this.db.exec("CREATE INDEX kv_time ON kv (time) WHERE value IS NOT NULL");
    this.reader = new Database(file, { readonly: true });
    this.sql = {
      get: this.db.prepare("SELECT value, time FROM kv WHERE hash = ? AND key = ?"),
      put: this.db.prepare("INSERT OR REPLACE INTO kv (hash, key, kg, value, time, epoch) VALUES (?, ?, ?, ?, ?, ?)"),
      tombstone: this.db.prepare("UPDATE kv SET value = NULL, epoch = ? WHERE hash = ? AND key = ?"),
      deleteTombstones: this.db.prepare("DELETE FROM kv WHERE value IS NULL AND epoch <= ?"),
      byTime: this.db.prepare("SELECT hash, key, value, time FROM kv WHERE value IS NOT NULL AND time < ?"),
    };
  }

  override get size(): number {
    return this.count;
  }

  private use(entry: StateEntry<V>, bytes: number, inDb: boolean, dirty: boolean): void {
    this.meta.set(entry, { bytes, lastUsed: ++this.tick, inDb, dirty });
    this.budget.used += bytes;
  }

  protected override miss(hash: number, key: readonly unknown[]): StateEntry<V> | undefined {
    const row = this.sql.get.get(hash, packr.pack(key)) as { value: Uint8Array | null; time: number | null } | null;
    if (!row || row.value === null) return undefined;
    const saved = unpackr.unpack(row.value);
    const entry = new StateEntry<V>(hash, key.slice(), this.codec ? this.codec.load(saved) : (saved as V), row.time);
    entry.persisted = true;
    this.arrived(entry);
    this.map.add(entry);
    this.expiry?.place(entry);
    this.use(entry, row.value.byteLength + ENTRY_OVERHEAD, true, false);
    return entry;
  }

  protected override created(entry: StateEntry<V>): void {
    this.count++;
    this.use(entry, ENTRY_OVERHEAD * 2, false, true);
  }

  override touch(entry: StateEntry<V>): void {
    super.touch(entry);
    const m = this.meta.get(entry);
    if (m) {
      m.lastUsed = ++this.tick;
      m.dirty = true;
    }
  }

  override get(hash: number, key: readonly unknown[]): StateEntry<V> | undefined {
    const e = super.get(hash, key);
    if (e) {
      const m = this.meta.get(e);
      if (m) m.lastUsed = ++this.tick;
    }
    return e;
  }

  override delete(entry: StateEntry<V>): void {
    const m = this.meta.get(entry);
    super.delete(entry);
    this.count--;
    // The row stays as a tombstone until the checkpoint holding the deletion is written.
    if (m?.inDb) this.sql.tombstone.run(this.epoch, entry.hash, packr.pack(entry.key));
    if (m) this.budget.used -= m.bytes;
    this.meta.delete(entry);
  }

  /** Writes back and drops the least recently used cached entries while the shared budget is exceeded. */
  override maintain(): void {
    if (this.budget.used <= this.budget.bytes || this.map.size === 0) return;
    // Evict about a fifth of this table's cache at a time: the oldest by last use, found by sampling.
    const sample: number[] = [];
    let n = 0;
    for (const e of this.map.entries()) {
      if (n++ % 16 === 0) sample.push(this.meta.get(e)?.lastUsed ?? 0);
    }
    sample.sort((a, b) => a - b);
    const threshold = sample[Math.floor(sample.length / 5)] ?? Infinity;
    const victims: StateEntry<V>[] = [];
    for (const e of this.map.entries()) if ((this.meta.get(e)?.lastUsed ?? 0) <= threshold) victims.push(e);
    this.db.transaction(() => {
      for (const e of victims) {
        const m = this.meta.get(e)!;
        const changedNow = this.changedNow(e);
        // A running snapshot still needing this entry encodes it first; the row's epoch carries the change from now on.
        this.release(e);
        if (m.dirty || !m.inDb) {
          // Changed since the last barrier: the next delta reads it back from here.
          const epoch = changedNow ? this.epoch : 0;
          const value = packr.pack(this.codec ? this.codec.save(e.value) : e.value);
          this.sql.put.run(e.hash, packr.pack(e.key), keyGroupOf(e.hash, this.maxParallelism), value, e.time, epoch);
        }
        this.budget.used -= m.bytes;
        this.meta.delete(e);
        this.map.remove(e);
        this.expiry?.remove(e);
      }
    })();
  }

  override *entries(): IterableIterator<StateEntry<V>> {
    yield* this.map.entries();
    // Rows not cached, as read-only entries.
    for (const row of this.db.prepare("SELECT hash, key, value, time FROM kv WHERE value IS NOT NULL").iterate() as IterableIterator<{
      hash: number;
      key: Uint8Array;
      value: Uint8Array;
      time: number | null;
    }>) {
      const key = unpackr.unpack(row.key) as unknown[];
      if (this.map.get(row.hash, key)) continue;
      const saved = unpackr.unpack(row.value);
      yield new StateEntry<V>(row.hash, key, this.codec ? this.codec.load(saved) : (saved as V), row.time);
    }
  }

  protected override snapshotEntries(): IterableIterator<StateEntry<V>> {
    return this.map.entriesNow();
  }

  override expire(cutoff: number, visit: (entry: StateEntry<V>) => boolean): number {
    // Bring the rows due for expiry into the cache, so the visit works on cached entries as usual.
    for (const row of this.sql.byTime.all(cutoff) as { hash: number; key: Uint8Array }[]) {
      const key = unpackr.unpack(row.key) as unknown[];
      if (!this.map.get(row.hash, key)) this.miss(row.hash, key);
    }
    return super.expire(cutoff, visit);
  }

  /** Set while a snapshot reads the database; a newer snapshot ends an abandoned one's read. */
  private reading: { stop: boolean } | null = null;

  override snapshot(checkpoint: number, full: boolean): TableSnapshot {
    const closing = this.epoch; // super.snapshot turns it
    if (this.reading) {
      this.reading.stop = true;
      this.reader.exec("ROLLBACK");
    }
    const reading = (this.reading = { stop: false });
    // Begin the read snapshot now, at the barrier: rows written after this are not seen.
    this.reader.exec("BEGIN");
    this.reader.prepare("SELECT 1 FROM kv LIMIT 1").get();
    const cached = super.snapshot(checkpoint, full);
    const scan = full
      ? this.reader.prepare("SELECT kg, hash, key, value, time FROM kv WHERE value IS NOT NULL")
      : this.reader.prepare("SELECT kg, hash, key, value, time FROM kv WHERE epoch = ?");
    const done = (async () => {
      const slicer = new Slicer();
      const fromDb = new Map<number, StateRecord[]>();
      let n = 0;
      for (const row of (full ? scan.iterate() : scan.iterate(closing)) as IterableIterator<{
        kg: number;
        hash: number;
        key: Uint8Array;
        value: Uint8Array | null;
        time: number | null;
      }>) {
        const key = unpackr.unpack(row.key) as unknown[];
        const record: StateRecord = row.value === null ? [DELETE, row.time, row.hash, key] : [PUT, row.time, row.hash, key, unpackr.unpack(row.value)];
        const list = fromDb.get(row.kg);
        if (list) list.push(record);
        else fromDb.set(row.kg, [record]);
        if (++n % SLICE === 0) {
          await slicer.maybeYield();
          if (reading.stop) throw new Error(`snapshot for checkpoint ${checkpoint} of ${this.name} was abandoned`);
        }
      }
      this.reader.exec("COMMIT");
      this.reading = null;
      this.sql.deleteTombstones.run(closing);
      // Per key group: the database's rows first, then the cache's (newer where both hold a key).
      const sections = new Map((await cached.done).map((s) => [s.kg, s]));
      for (const [kg, records] of fromDb) {
        const section = sections.get(kg) ?? { kg, bytes: [], puts: 0, deletes: 0 };
        section.bytes.unshift(packSequence(records));
        for (const r of records) r[0] === PUT ? section.puts++ : section.deletes++;
        sections.set(kg, section);
      }
      return [...sections.values()].sort((a, b) => a.kg - b.kg);
    })();
    done.catch(() => {});
    return { ...cached, done };
  }

  override applyRestored(records: StateRecord[], _droppedUpTo: number | null): void {
    // Straight into the database (epoch 0: already in a checkpoint), not through the cache.
    const remove = this.db.prepare("DELETE FROM kv WHERE hash = ? AND key = ?");
    this.db.transaction(() => {
      for (const r of records) {
        const key = packr.pack(r[3]);
        if (r[0] === DELETE) remove.run(r[2], key);
        else this.sql.put.run(r[2], key, keyGroupOf(r[2], this.maxParallelism), packr.pack(r[4]), r[1], 0);
      }
    })();
    this.count = (this.db.prepare("SELECT count(*) AS n FROM kv WHERE value IS NOT NULL").get() as { n: number }).n;
  }

  override close(): void {
    for (const e of this.map.entries()) this.budget.used -= this.meta.get(e)?.bytes ?? 0;
    this.reader.close();
    this.db.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
