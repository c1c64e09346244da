/**
 * A keyed table larger than memory: entries live in an embedded SQLite database
 * (bun:sqlite, in a scratch folder) with the recently used ones cached in memory,
 * up to a byte budget shared by the tables of a process. The cache is the heap
 * table itself, kept in least-recently-used order; between batches (never inside
 * one, where operators hold entries) the least recently used entries are written
 * back and dropped.
 *
 * Checkpoints are the same files the heap backend writes, streamed a chunk at a
 * time so none is held in memory whole:
 * - a delta is the epoch's change log (what left memory during the epoch, in
 *   order) followed by the cached entries changed in the epoch;
 * - a full file is the database read through a second connection whose read
 *   transaction, begun at the barrier, sees it as it was then (SQLite's WAL gives
 *   that snapshot while writes go on), in key-group order (the primary key leads
 *   with it), followed by the cached entries the database doesn't hold as they are.
 * The database is scratch: a restore rebuilds it from checkpoint files.
 */
import { heapSize } from "bun:jsc";
import { Database, type Statement } from "bun:sqlite";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ChangeLog } from "./change-log.ts";
import { DELETE, forEachRecord, GroupedRecords, PUT, packPutFromPacked, packr, packSequence, unpackr, type StateChunk, type StateRecord } from "./file-format.ts";
import type { RestoredFile } from "./operator-state.ts";
import { keyGroupOf } from "./key-groups.ts";
import { Slicer } from "./slicer.ts";
import { KeyedTable, restoreOrder, StateEntry, type StateCodec } from "./tables.ts";

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

/**
 * Memory shared by every disk table's cache in this process: the budget bounds
 * the JS heap the cache makes, garbage included. Entries the cache drops are
 * garbage until a full collection, which the collector on its own leaves until
 * the heap has about doubled; so the cache fills a share of the budget, leaving
 * the rest for garbage, and the budget watches the heap, collecting once it
 * passes the budget. When the heap is still over its share after a collection
 * (the estimate is low for these entries, other state is large), the cache's
 * share shrinks by the excess.
 */
export class CacheBudget {
  used = 0;
  /** Taken off the cache's share while the heap stays too full after a collection. */
  private shrink = 0;
  private checks = 0;
  /** The heap before any state: the process's own (code, plans, buffers), which the budget is on top of. */
  private readonly base = heapSize();
  constructor(readonly bytes: number) {}

  /** What the cache may hold now. */
  get limit(): number {
    return this.bytes * CACHE_SHARE - this.shrink;
  }

  /** Between batches: collects when the heap passes the budget over the base (checked every few calls; reading its size is cheap). */
  watchHeap(): void {
    // A budget smaller than the heap's own swings (tests' tiny caches) is left to the estimate alone.
    if (this.bytes < WATCHED_BUDGET || (++this.checks & 15) !== 0 || heapSize() <= this.base + this.bytes) return;
    Bun.gc(true);
    this.shrink = Math.min(this.bytes * 0.5, Math.max(0, this.shrink + heapSize() - this.base - this.bytes * LIVE_SHARE));
  }
}

/** Budgets from this size on watch the heap. */
const WATCHED_BUDGET = 64 * 1024 * 1024;
/** The share of the budget the cache's entries fill; the rest is room for the garbage they leave. */
const CACHE_SHARE = 0.75;
/** The heap after a collection should stay under this share of the budget, or the cache's share shrinks. */
const LIVE_SHARE = 0.85;

/** Bytes gathered before a full file's chunks read from the database go to the writer. */
const SCAN_BYTES = 256 * 1024;
/**
 * Rough bytes a cached entry takes in the JS heap beyond its encoded size: the
 * entry, its key and value objects, its map and LRU slots. Measured: an updating
 * aggregate's group (two accumulators) takes about 650 bytes after a full GC.
 */
const ENTRY_OVERHEAD = 640;
/** Eviction brings the cache this far under the budget, so it runs now and then rather than after every batch. */
const LOW_WATER = 0.97;
/** Entries evicted per call between batches, unless the cache is well over its budget. */
const EVICT_PER_CALL = 25_000;

/**
 * Which key hashes may have a row in the database: a bit per hash slot, never
 * a false "no", so a key that was never written back (a new one) costs no
 * database lookup. It doubles as rows are added, each old bit copied into both
 * halves (a hash's slot in the larger map is one of the two), up to a cap past
 * which more false "maybe"s only cost lookups.
 */
class MaybeStored {
  private words = new Uint32Array(1 << 15);
  private added = 0;
  private static readonly MAX_WORDS = 1 << 23; // 2^28 bits, 32 MB

  has(hash: number): boolean {
    const slot = (hash >>> 0) & (this.words.length * 32 - 1);
    return (this.words[slot >>> 5]! & (1 << (slot & 31))) !== 0;
  }

  add(hash: number): void {
    // Kept under one bit in sixteen set, so a new key is told apart from stored ones 15 times in 16.
    if (++this.added > this.words.length * 2 && this.words.length < MaybeStored.MAX_WORDS) {
      const grown = new Uint32Array(this.words.length * 2);
      grown.set(this.words, 0);
      grown.set(this.words, this.words.length);
      this.words = grown;
    }
    const slot = (hash >>> 0) & (this.words.length * 32 - 1);
    this.words[slot >>> 5]! |= 1 << (slot & 31);
  }
}

interface DiskMeta {
  /** Estimated bytes in memory. */
  bytes: number;
  /** When it was last put at the young end of the LRU order. */
  queuedAt: number;
  /** The database has a row for this key. */
  inDb: boolean;
  /** The cached value differs from the database row (or there is none). */
  dirty: boolean;
}

export class DiskKeyedTable<V> extends KeyedTable<V> {
  private readonly db: Database;
  private readonly reader: Database;
  /** Cached entries, least recently used first (a Map keeps insertion order). */
  private readonly lru = new Map<StateEntry<V>, DiskMeta>();
  private readonly stored = new MaybeStored();
  private tick = 0;
  private count = 0;
  /** What leaves memory in the current epoch. */
  private log: ChangeLog;
  private readonly sql: {
    get: Statement;
    put: Statement;
    remove: Statement;
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
    const file = join(dir, `${this.fileStem}.db`);
    for (const suffix of ["", "-wal", "-shm"]) rmSync(file + suffix, { force: true });
    this.db = new Database(file, { create: true });
    // Scratch data rebuilt from checkpoints on restore: no fsync; WAL for the barrier's read snapshot.
    // journal_size_limit: a WAL that grew during a long full-snapshot read is cut back once SQLite has folded it in.
    this.db.exec(
      "PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY; PRAGMA journal_size_limit = 268435456;",
    );
    // Key group first: a full snapshot reads the rows in the order its file holds them.
    this.db.exec("CREATE TABLE kv (kg INTEGER NOT NULL, hash INTEGER NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, time REAL, PRIMARY KEY (kg, hash, key)) WITHOUT ROWID");
    if (options.expiryGranularity) this.db.exec("CREATE INDEX kv_time ON kv (time)");
    this.reader = new Database(file, { readonly: true });
    this.sql = {
      get: this.db.prepare("SELECT value, time FROM kv WHERE kg = ? AND hash = ? AND key = ?"),
      put: this.db.prepare("INSERT OR REPLACE INTO kv (kg, hash, key, value, time) VALUES (?, ?, ?, ?, ?)"),
      remove: this.db.prepare("DELETE FROM kv WHERE kg = ? AND hash = ? AND key = ?"),
      byTime: this.db.prepare("SELECT hash, key FROM kv WHERE time < ?"),
    };
    this.log = this.logFor(this.epoch);
  }

  override get size(): number {
    return this.count;
  }

  /** The table's name as a file name in its scratch folder. */
  private get fileStem(): string {
    return this.name.replace(/[^A-Za-z0-9_-]/g, "_");
  }

  /** A new change log for `epoch`'s changes. */
  private logFor(epoch: number): ChangeLog {
    return new ChangeLog(join(this.dir, `${this.fileStem}-${epoch}.log`));
  }

  private kg(hash: number): number {
    return keyGroupOf(hash, this.maxParallelism);
  }

  private use(entry: StateEntry<V>, bytes: number, inDb: boolean, dirty: boolean): void {
    this.lru.set(entry, { bytes, queuedAt: ++this.tick, inDb, dirty });
    this.budget.used += bytes;
  }

  /** Moves an entry to the young end of the LRU order, unless it is in the younger half already (cheap approximation). */
  private used(entry: StateEntry<V>): DiskMeta | undefined {
    const m = this.lru.get(entry);
    if (m && this.tick - m.queuedAt > this.lru.size >> 1) {
      this.lru.delete(entry);
      this.lru.set(entry, m);
      m.queuedAt = ++this.tick;
    }
    return m;
  }

  protected override miss(hash: number, key: readonly unknown[]): StateEntry<V> | undefined {
    if (!this.stored.has(hash)) return undefined;
    const row = this.sql.get.get(this.kg(hash), hash, packr.pack(key)) as { value: Uint8Array; time: number | null } | null;
    if (!row) return undefined;
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
    this.use(entry, ENTRY_OVERHEAD + 32, false, true);
  }

  override touch(entry: StateEntry<V>): void {
    super.touch(entry);
    const m = this.used(entry);
    if (m) m.dirty = true;
  }

  protected override reusesBuffers(): boolean {
    return false;
  }

  protected override heldElsewhere(entry: StateEntry<V>): boolean {
    // Checked before the change that would make it dirty: clean now means clean at the barrier.
    const m = this.lru.get(entry);
    return m !== undefined && m.inDb && !m.dirty;
  }

  override get(hash: number, key: readonly unknown[]): StateEntry<V> | undefined {
    const e = super.get(hash, key);
    if (e) this.used(e);
    return e;
  }

  protected override forget(entry: StateEntry<V>): void {
    this.release(entry);
    // The key may be in a checkpoint file, or in this epoch's log: the deletion follows it there.
    if (entry.persisted || this.lru.get(entry)?.inDb) {
      this.log.add(this.kg(entry.hash), packSequence([[DELETE, entry.time, entry.hash, entry.key] satisfies StateRecord]), false);
    }
  }

  override delete(entry: StateEntry<V>): void {
    const m = this.lru.get(entry);
    super.delete(entry);
    this.count--;
    if (m?.inDb) this.sql.remove.run(this.kg(entry.hash), entry.hash, packr.pack(entry.key));
    if (m) this.budget.used -= m.bytes;
    this.lru.delete(entry);
  }

  /** Writes back and drops the least recently used cached entries while the shared budget is exceeded. */
  override maintain(): void {
    this.budget.watchHeap();
    const limit = this.budget.limit;
    if (this.budget.used <= limit || this.lru.size === 0) return;
    const target = limit * LOW_WATER;
    const uncapped = this.budget.used > limit * 1.05;
    const victims: [StateEntry<V>, DiskMeta][] = [];
    let freeing = 0;
    for (const [e, m] of this.lru) {
      if (this.budget.used - freeing <= target || (!uncapped && victims.length >= EVICT_PER_CALL)) break;
      victims.push([e, m]);
      freeing += m.bytes;
    }
    // In primary-key order, each page of the database's tree is visited once per batch (measured: a quarter less CPU per row than in use order).
    victims.sort(([a], [b]) => this.kg(a.hash) - this.kg(b.hash) || a.hash - b.hash);
    this.db.transaction(() => {
      for (const [e, m] of victims) {
        const changedNow = this.changedNow(e);
        // A running snapshot still needing this entry encodes it first.
        this.release(e);
        if (m.dirty || !m.inDb) {
          const kg = this.kg(e.hash);
          const key = packr.pack(e.key);
          const value = packr.pack(this.codec ? this.codec.save(e.value) : e.value);
          this.sql.put.run(kg, e.hash, key, value, e.time);
          if (!m.inDb) this.stored.add(e.hash);
          // Changed in this epoch: the delta closing it finds the change in the log.
          if (changedNow) this.log.add(kg, packPutFromPacked(e.time, e.hash, key, value), true);
        }
        this.budget.used -= m.bytes;
        this.lru.delete(e);
        this.map.remove(e);
        this.expiry?.remove(e);
      }
    })();
  }

  override *entries(): IterableIterator<StateEntry<V>> {
    yield* this.map.entries();
    // Rows not cached, as read-only entries.
    for (const row of this.db.prepare("SELECT hash, key, value, time FROM kv").iterate() as IterableIterator<{
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
    // The database holds the others as they are (and a full file reads it first).
    const lru = this.lru;
    const now = this.map.entriesNow();
    return (function* () {
      for (const e of now) {
        const m = lru.get(e);
        if (!m || m.dirty || !m.inDb) yield e;
      }
    })();
  }

  override expire(cutoff: number, visit: (entry: StateEntry<V>) => boolean): number {
    // Bring the rows due for expiry into the cache, so the visit works on cached entries as usual.
    for (const row of this.sql.byTime.all(cutoff) as { hash: number; key: Uint8Array }[]) {
      const key = unpackr.unpack(row.key) as unknown[];
      if (!this.map.get(row.hash, key)) this.miss(row.hash, key);
    }
    return super.expire(cutoff, visit);
  }

  /** Set while a full snapshot reads the database; a newer snapshot ends an abandoned one's read. */
  private reading: { stop: boolean } | null = null;

  override get pendingChanges(): number {
    // Entries evicted after changing are in the log (the base counts no released entry).
    return super.pendingChanges + this.log.records;
  }

  protected override beginSnapshot(closing: number, full: boolean): AsyncIterable<StateChunk> | null {
    const log = this.log;
    this.log = this.logFor(this.epoch);
    if (!full) return log.drain();
    log.discard();
    if (this.reading) {
      this.reading.stop = true;
      this.reader.exec("ROLLBACK");
    }
    const reading = (this.reading = { stop: false });
    // Begin the read snapshot now, at the barrier: rows written after this are not seen.
    this.reader.exec("BEGIN");
    this.reader.prepare("SELECT 1 FROM kv LIMIT 1").get();
    const scan = this.reader.prepare("SELECT kg, hash, key, value, time FROM kv");
    const self = this;
    return (async function* () {
      // Most of the time goes to the scan while it runs: every page processing writes meanwhile is appended to
      // the WAL, which SQLite cannot fold back into the database until this read ends. With a third of the time,
      // rebasing a 50M-key table read for over 10 minutes while the WAL grew to 17 GB.
      const slicer = new Slicer(20, 500, 0.8);
      // Rows come in key-group order (the primary key leads with it), so each round holds one or two groups.
      const grouped = new GroupedRecords();
      try {
        for (const row of scan.iterate() as IterableIterator<{ kg: number; hash: number; key: Uint8Array; value: Uint8Array; time: number | null }>) {
          grouped.add(row.kg, packPutFromPacked(row.time, row.hash, row.key, row.value), 1, 0);
          if (grouped.bytes < SCAN_BYTES) continue;
          yield* grouped.take();
          await slicer.maybeYield();
          if (reading.stop) throw new Error(`snapshot for checkpoint epoch ${closing} of ${self.name} was abandoned`);
        }
        yield* grouped.take();
      } finally {
        if (self.reading === reading) {
          self.reader.exec("COMMIT");
          self.reading = null;
        }
      }
    })();
  }

  override applyRestored(files: RestoredFile[]): void {
    // Straight into the database (already in a checkpoint), not through the cache.
    const apply = (r: StateRecord): void => {
      const kg = this.kg(r[2]);
      const key = packr.pack(r[3]);
      if (r[0] === DELETE) this.sql.remove.run(kg, r[2], key);
      else {
        this.sql.put.run(kg, r[2], key, packr.pack(r[4]), r[1]);
        this.stored.add(r[2]);
      }
    };
    // Keyed tables drop nothing by time: the order holds only chunks.
    this.db.transaction(() => {
      for (const step of restoreOrder(files)) if (typeof step !== "number") forEachRecord(step, apply);
    })();
    this.count = (this.db.prepare("SELECT count(*) AS n FROM kv").get() as { n: number }).n;
  }

  override close(): void {
    for (const m of this.lru.values()) this.budget.used -= m.bytes;
    this.lru.clear();
    this.log.discard();
    this.reader.close();
    this.db.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
