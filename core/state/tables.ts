/**
 * State tables in memory (the heap backend). Operators declare them through
 * their StateContext and keep entries in them instead of their own maps; the
 * table tracks what changed since the last checkpoint, so a checkpoint writes
 * only that (a delta), and snapshots copy-on-write: a checkpoint closes an
 * epoch and encodes the entries it changed in the background while processing
 * goes on, except that an entry about to be changed or deleted is encoded first.
 * Nothing at the barrier visits entries (4M of them took 0.6 s to mark), so the
 * barrier costs the same whatever the state's size.
 *
 * KeyedTable: key → value. TimeKeyedTable: (time, key) → value, iterated and
 * dropped by time (window panes, joined windows), so expiry is one range
 * deletion rather than one per key.
 */
import { keysEqual } from "./hash.ts";
import { DEFAULT_MAX_PARALLELISM, keyGroupOf } from "./key-groups.ts";
import { DELETE, forEachRecord, GroupedRecords, PUT, type StateChunk, type StateRecord } from "./file-format.ts";
import type { RestoredFile } from "./operator-state.ts";
import { ShapedWriter } from "./shaped-writer.ts";
import { Slicer } from "./slicer.ts";

/**
 * How a table's values are stored: `save` gives a MessagePack-able form, `load`
 * reads it back. What `save` returns is encoded at once and never kept, so a
 * codec may return the same scratch array every time (a full snapshot of 4M
 * groups otherwise allocates 4M short-lived arrays).
 */
export interface StateCodec<V> {
  save(value: V): unknown;
  load(saved: unknown): V;
}

export class StateEntry<V> {
  /** The epoch (checkpoint interval) of its last change, so the delta closing that epoch holds it; 0 when none is owed. */
  dirty = 0;
  /** The epoch of the snapshot that has encoded it (or that must not: it was made after that snapshot's barrier). */
  saved = 0;
  /** In a checkpoint file already: deleting it needs a tombstone. */
  persisted = false;
  constructor(
    readonly hash: number,
    readonly key: unknown[],
    public value: V,
    /** Time tables: the entry's time. Keyed tables with expiry: the time its expiry is judged by. */
    public time: number | null,
  ) {}
}

/** Entries per chunk of an EntryMap's entry list (a power of two). */
const CHUNK_BITS = 12;
const CHUNK = 1 << CHUNK_BITS;

/** An index slot whose entry was moved to the grown index, or deleted from the index being drained: probes go past it. */
const MOVED = -1;
/**
 * Index slots moved from the previous index to the grown one per addition and
 * per lookup. An index grows from C to 2C slots when C/2 entries are in it, and
 * grows again only after C/2 more additions, so moving 2 per addition is enough
 * to finish in time; 8 finishes well before.
 */
const MOVE_PER_ADD = 8;
const MOVE_PER_GET = 2;

/** The hash bits that are its key group with the default 128 groups (`keyGroupOf` takes the hash modulo the groups). */
const GROUP_BITS = Math.log2(DEFAULT_MAX_PARALLELISM);
const GROUP_MASK = DEFAULT_MAX_PARALLELISM - 1;

/**
 * Where a hash's probe starts in an index of `mask + 1` slots: the hash's key
 * group bits pick the index's top bits, so one key group's entries share a
 * small stretch of the index. A restore applies a key group at a time: a
 * 4M-entry index is 64 MB, and a group's stretch of it (0.5 MB) stays in the
 * processor's caches. Lookups of random keys cost the same either way.
 */
export function slotOf(h: number, mask: number): number {
  return mask < GROUP_MASK ? h & mask : ((h & GROUP_MASK) * ((mask + 1) >>> GROUP_BITS)) | ((h >>> GROUP_BITS) & (mask >>> GROUP_BITS));
}

/**
 * Entries by key hash: an open-addressing index in a typed array (slot pairs
 * of [hash, entry number + 1], linear probing, deletion by shifting back) over
 * a list of entries kept in chunks. A JavaScript Map of a few million number
 * keys measured 3x slower to insert into and look up in (345 and 400 ns
 * against 123 and 133 ns at 4M keys): its storage is scattered, while a probe
 * here reads one slot pair. The index holds no pointers, so the collector never
 * scans it, and appending an entry writes only the last chunk of the list.
 * Entries keep their number for life, and the list gives them in the order
 * they were made (numbers freed by deletions are reused).
 *
 * The index grows incrementally: rehashing 2M entries at once stopped
 * processing for 270 ms, so a grown index is filled from the previous one a
 * few slots per operation, and until it is drained an entry is in exactly one
 * of the two (lookups probe both).
 */
export class EntryMap<V> {
  private slots = new Int32Array(16);
  private mask = 7;
  /** The previous index while it is drained into `slots`, or null. */
  private old: Int32Array | null = null;
  private oldMask = 0;
  /** The next slot of `old` to move. */
  private moved = 0;
  private readonly chunks: (StateEntry<V> | undefined)[][] = [];
  /** Entry numbers handed out so far (the list's length, holes included). */
  private end = 0;
  private readonly free: number[] = [];
  size = 0;

  private at(n: number): StateEntry<V> {
    return this.chunks[n >>> CHUNK_BITS]![n & (CHUNK - 1)]!;
  }

  get(hash: number, key: readonly unknown[]): StateEntry<V> | undefined {
    const h = hash | 0;
    if (this.old !== null) this.move(MOVE_PER_GET);
    const slots = this.slots;
    const mask = this.mask;
    for (let i = slotOf(h, mask); ; i = (i + 1) & mask) {
      const n = slots[2 * i + 1]!;
      if (n === 0) break;
      if (slots[2 * i] === h) {
        const e = this.at(n - 1);
        if (keysEqual(e.key, key)) return e;
      }
    }
    const old = this.old;
    if (old === null) return undefined;
    const oldMask = this.oldMask;
    for (let i = slotOf(h, oldMask); ; i = (i + 1) & oldMask) {
      const n = old[2 * i + 1]!;
      if (n === 0) return undefined;
      if (n !== MOVED && old[2 * i] === h) {
        const e = this.at(n - 1);
        if (keysEqual(e.key, key)) return e;
      }
    }
  }

  add(entry: StateEntry<V>): void {
    if (this.old !== null) this.move(MOVE_PER_ADD);
    // At most half full: probes stay short.
    if (2 * (this.size + 1) > this.mask + 1) this.grow();
    let n: number;
    if (this.free.length > 0) {
      n = this.free.pop()!;
      this.chunks[n >>> CHUNK_BITS]![n & (CHUNK - 1)] = entry;
    } else {
      n = this.end++;
      if ((n & (CHUNK - 1)) === 0) this.chunks.push([]);
      this.chunks[n >>> CHUNK_BITS]!.push(entry);
    }
    this.place(entry.hash | 0, n + 1);
    this.size++;
  }

  private place(h: number, slotValue: number): void {
    const slots = this.slots;
    const mask = this.mask;
    let i = slotOf(h, mask);
    while (slots[2 * i + 1] !== 0) i = (i + 1) & mask;
    slots[2 * i] = h;
    slots[2 * i + 1] = slotValue;
  }

  /** Makes room for `n` entries at once: a restore knows how many come, and filling a grown index a few slots at a time is for processing. */
  reserve(n: number): void {
    if (2 * n <= this.mask + 1) return;
    if (this.old !== null) this.move(Infinity);
    let capacity = this.mask + 1;
    while (2 * n > capacity) capacity *= 2;
    const previous = this.slots;
    this.slots = new Int32Array(capacity * 2);
    this.mask = capacity - 1;
    for (let j = 0; j < previous.length; j += 2) if (previous[j + 1]! > 0) this.place(previous[j]!, previous[j + 1]!);
  }

  private grow(): void {
    // Not reached at the rates above; if it were, the previous index is finished first.
    if (this.old !== null) this.move(Infinity);
    const capacity = (this.mask + 1) * 2;
    this.old = this.slots;
    this.oldMask = this.mask;
    this.moved = 0;
    this.slots = new Int32Array(capacity * 2);
    this.mask = capacity - 1;
  }

  /** Moves up to `count` slots of the previous index into the grown one. */
  private move(count: number): void {
    const old = this.old!;
    const last = Math.min(this.oldMask + 1, this.moved + count);
    for (let j = this.moved; j < last; j++) {
      const n = old[2 * j + 1]!;
      if (n > 0) {
        this.place(old[2 * j]!, n);
        old[2 * j + 1] = MOVED;
      }
    }
    this.moved = last;
    if (last > this.oldMask) this.old = null;
  }

  private release(n: number): void {
    this.chunks[n >>> CHUNK_BITS]![n & (CHUNK - 1)] = undefined;
    this.free.push(n);
    this.size--;
  }

  remove(entry: StateEntry<V>): void {
    const h = entry.hash | 0;
    const old = this.old;
    if (old !== null) {
      // In the previous index, it is marked moved: nothing is ever added there, so no run needs shifting.
      const oldMask = this.oldMask;
      for (let i = slotOf(h, oldMask); ; i = (i + 1) & oldMask) {
        const n = old[2 * i + 1]!;
        if (n === 0) break;
        if (n !== MOVED && old[2 * i] === h && this.at(n - 1) === entry) {
          old[2 * i + 1] = MOVED;
          this.release(n - 1);
          return;
        }
      }
    }
    const slots = this.slots;
    const mask = this.mask;
    let i = slotOf(h, mask);
    for (; ; i = (i + 1) & mask) {
      const n = slots[2 * i + 1]!;
      if (n === 0) return;
      if (slots[2 * i] === h && this.at(n - 1) === entry) {
        this.release(n - 1);
        break;
      }
    }
    // Shift the rest of the run back over the hole, so a probe never stops short of an entry.
    for (let j = (i + 1) & mask; slots[2 * j + 1] !== 0; j = (j + 1) & mask) {
      const home = slotOf(slots[2 * j]!, mask);
      const stays = j > i ? home > i && home <= j : home > i || home <= j;
      if (stays) continue;
      slots[2 * i] = slots[2 * j]!;
      slots[2 * i + 1] = slots[2 * j + 1]!;
      i = j;
    }
    slots[2 * i] = 0;
    slots[2 * i + 1] = 0;
  }

  entries(): IterableIterator<StateEntry<V>> {
    return new EntryCursor(this.chunks, () => this.end, Infinity);
  }

  /**
   * The entries as of now, for a snapshot that reads them over many slices while
   * entries come and go: it stops at the entry numbers handed out now, so it
   * never chases new entries forever. A new entry that reuses a freed number is
   * visited; the snapshot skips it.
   */
  entriesNow(): IterableIterator<StateEntry<V>> {
    return new EntryCursor(this.chunks, () => this.end, this.end);
  }
}

/**
 * Walks an EntryMap's list up to `limit` (and the list's end as it is at each
 * step). A class rather than a generator: resuming a generator per entry was
 * about a seventh of encoding a snapshot.
 */
class EntryCursor<V> implements IterableIterator<StateEntry<V>> {
  private n = 0;
  /** Reused for every step: callers read it before the next. */
  private readonly result: IteratorResult<StateEntry<V>> = { done: false, value: undefined as unknown as StateEntry<V> };
  constructor(
    private readonly chunks: readonly (StateEntry<V> | undefined)[][],
    private readonly end: () => number,
    private readonly limit: number,
  ) {}
  /** Where the list ended when last asked: asked again only on reaching it (asking at every entry added about 60 ms to a delta walking 4M entries). */
  private stop = 0;
  next(): IteratorResult<StateEntry<V>> {
    if (this.n >= this.stop) this.stop = Math.min(this.end(), this.limit);
    const stop = this.stop;
    while (this.n < stop) {
      const n = this.n++;
      const e = this.chunks[n >>> CHUNK_BITS]![n & (CHUNK - 1)];
      if (e) {
        this.result.value = e;
        return this.result;
      }
    }
    return { done: true, value: undefined };
  }
  [Symbol.iterator](): IterableIterator<StateEntry<V>> {
    return this;
  }
}

/** A snapshot being encoded: its file's chunks come as the backend writes them. */
export interface TableSnapshot {
  table: string;
  checkpoint: number;
  full: boolean;
  /** A full file that replaces a chain of deltas (a rebase: the backend's compaction), not a table's first. */
  rebase?: true;
  droppedUpTo: number | null;
  /** The chunks in file order (a restore applies them in it), encoded as they are pulled. */
  chunks: AsyncIterable<StateChunk>;
  /** Called once every chunk is written and nothing reads them any more: the table writes later snapshots into their bytes. */
  written?(): void;
}

/** Runs a snapshot nobody will write to its end, dropping its chunks (its end releases what it holds). */
export async function discardSnapshot(snapshot: TableSnapshot): Promise<void> {
  try {
    for await (const _ of snapshot.chunks);
  } catch {
    // Superseded by a newer snapshot: nothing left to release.
  }
}

/** Entries visited per slice of the background encoder; a slice is a few milliseconds. */
const SLICE = 2000;

/**
 * roundBytes: encoded bytes a snapshot gathers before handing them to the
 * writer as one round of key-group chunks. A file holds a few rounds, so a
 * restoring subtask reads its key groups in a few ranges while memory stays
 * bounded. (Tests lower it to make files of many rounds.)
 */
export const snapshotTuning = {
  roundBytes: 16 * 1024 * 1024,
  /** The shortest slice of background work before processing gets a turn (tests set 0: a turn after every slice). */
  minSliceMs: 4,
  /** The fewest changes (a power of two) past which a table stops listing them (LIST_SHARE); tests lower it. */
  listFloor: 1 << 16,
};

/** Writes the record a checkpoint file holds for `entry` as it is now, marking it saved by the snapshot closing `epoch`. */
function saveRecord<V>(entry: StateEntry<V>, into: GroupedRecords, codec: StateCodec<V> | null, epoch: number, maxParallelism: number): void {
  entry.saved = epoch;
  entry.persisted = true;
  into.put(keyGroupOf(entry.hash, maxParallelism), entry.time, entry.hash, entry.key, codec ? codec.save(entry.value) : entry.value);
}

/** Whether the snapshot closing `epoch` still has to write `entry`: not written by it yet and, for a delta, changed in that epoch. */
function dueIn<V>(entry: StateEntry<V>, epoch: number, full: boolean): boolean {
  return entry.saved !== epoch && (full || entry.dirty === epoch);
}

/**
 * Encodes up to `limit` entries of `source` still due in a snapshot (full, or
 * a delta that walks the table), visited in the order it gives them (the order
 * memory holds them) and written into their key group's bytes; false once
 * `source` is exhausted.
 */
function encodeSlice<V>(source: Iterator<StateEntry<V>>, into: GroupedRecords, epoch: number, full: boolean, codec: StateCodec<V> | null, maxParallelism: number, limit: number): boolean {
  for (let n = 0; n < limit; n++) {
    const next = source.next();
    if (next.done) return false;
    if (dueIn(next.value, epoch, full)) saveRecord(next.value, into, codec, epoch, maxParallelism);
  }
  return true;
}

/**
 * A change list stops being kept once it holds more than this share of the
 * table's entries (and at least snapshotTuning.listFloor): the delta then
 * walks the table for the entries changed. With every one of 4M entries
 * changed in an interval, the pushes (into a list the collector rescans while
 * it grows) cost the processing about 150 ms more than the walk costs the
 * encoder.
 */
const LIST_SHARE = 4;

/**
 * encodeSlice over a delta's change list, read by index from `from`: where
 * the next slice starts (the list's length once it is done). An array's
 * iterator cost 10% of a 4M-entry delta's encoding.
 */
function encodeListSlice<V>(list: readonly StateEntry<V>[], from: number, into: GroupedRecords, epoch: number, codec: StateCodec<V> | null, maxParallelism: number, limit: number): number {
  const end = Math.min(list.length, from + limit);
  for (let i = from; i < end; i++) {
    const e = list[i]!;
    if (dueIn(e, epoch, false)) saveRecord(e, into, codec, epoch, maxParallelism);
  }
  return end;
}

interface Encoding {
  /** The epoch the snapshot closed: it holds the entries as they were at its end. */
  epoch: number;
  full: boolean;
  /** Copy-on-write: entries encoded before they changed, per key group. */
  early: GroupedRecords;
}

export abstract class TrackedTable<V> {
  /** Changes made now belong to this epoch; a snapshot closes it and opens the next. */
  protected epoch = 1;
  /** The entries changed in this epoch, in the order they first changed; null once too many to list (LIST_SHARE). */
  protected changedList: StateEntry<V>[] | null = [];
  /** Entries changed in this epoch and not released since. */
  private changed = 0;
  /** Entries of `changedList` released since it was taken or filtered: they are owed nothing and only hold memory. */
  private releasedListed = 0;
  protected tombstones: StateRecord[] = [];
  protected droppedUpTo: number | null = null;
  /** Set while a snapshot is being encoded; a newer snapshot (after an abandoned checkpoint) replaces it. */
  private encoding: Encoding | null = null;
  /** Writes this table's records, compiled for the shapes they have. */
  private readonly writer = new ShapedWriter();
  /**
   * The last snapshot's buffers, kept for the next: grown to a round's size in a
   * table's first large snapshot, they are not grown again (growing them anew
   * cost 8% of a 4M-entry delta's encoding). Their pages are touched only as
   * records are written, so a table that once had a large snapshot holds
   * mostly address space (128 new buffers of 256 KB added 5.5 MB of RSS).
   */
  private keptRecords: GroupedRecords | null = null;
  /**
   * Whether a snapshot's buffers, once written, are kept for the next snapshots
   * (GroupedRecords.reuse). A disk table's memory is bounded by its cache
   * budget, which buffers kept between checkpoints would go past.
   */
  protected reusesBuffers(): boolean {
    return true;
  }

  constructor(
    readonly name: string,
    protected readonly codec: StateCodec<V> | null,
    protected readonly maxParallelism: number,
  ) {}

  abstract entries(): IterableIterator<StateEntry<V>>;
  abstract get size(): number;
  protected abstract insertRestored(entry: StateEntry<V>): void;
  protected abstract findRestored(time: number | null, hash: number, key: unknown[]): StateEntry<V> | undefined;
  protected abstract removeRestored(entry: StateEntry<V>): void;
  protected abstract dropRestored(upTo: number): void;
  /** A restored entry got a newer value (and time). */
  protected replacedRestored(_entry: StateEntry<V>): void {}

  /** Whether the running snapshot still has to encode `entry` as it was at its barrier. */
  private owed(entry: StateEntry<V>): boolean {
    const e = this.encoding;
    return e !== null && dueIn(entry, e.epoch, e.full);
  }

  /** Before `entry` changes or goes: a running snapshot still owed it gets it as it was at the barrier. */
  private settle(entry: StateEntry<V>): void {
    if (!this.owed(entry)) return;
    // A full snapshot reading it from elsewhere (a disk table's database) needs no copy.
    if (this.encoding!.full && this.heldElsewhere(entry)) entry.saved = this.encoding!.epoch;
    else this.encodeEarly(entry);
  }

  /** Whether a full snapshot finds `entry`, unchanged since the barrier, outside memory (a disk table's database). */
  protected heldElsewhere(_entry: StateEntry<V>): boolean {
    return false;
  }

  /** Records that `entry` is about to change (call before mutating its value). */
  touch(entry: StateEntry<V>): void {
    // Only the first change in an epoch has anything to do: later ones find the entry encoded and listed.
    if (entry.dirty === this.epoch) return;
    this.settle(entry);
    entry.dirty = this.epoch;
    this.changed++;
    const list = this.changedList;
    if (list === null) return;
    list.push(entry);
    if ((list.length & (snapshotTuning.listFloor - 1)) === 0 && list.length > this.size / LIST_SHARE) this.changedList = null;
  }

  /** About how many records a delta taken now would hold (entries released since, deleted ones too, count only by their tombstones). */
  get pendingChanges(): number {
    return this.changed + this.tombstones.length;
  }

  /** Whether `entry` changed since the last snapshot. */
  protected changedNow(entry: StateEntry<V>): boolean {
    return entry.dirty === this.epoch;
  }

  /** An entry new to memory: a full snapshot running now must not write it (it did not exist at the barrier, or a disk table's read of its database holds it). */
  protected arrived(entry: StateEntry<V>): void {
    if (this.encoding?.full) entry.saved = this.encoding.epoch;
  }

  /** Lets go of `entry` without a tombstone: encoded first if a running snapshot still needs it. */
  release(entry: StateEntry<V>): void {
    this.settle(entry);
    const listed = entry.dirty === this.epoch;
    entry.dirty = 0;
    if (!listed) return;
    this.changed--;
    // The change list would keep released entries alive until the barrier (every pane a window fired since the
    // last checkpoint, every entry a disk table evicted): they go once they are half of it.
    const list = this.changedList;
    if (list !== null && ++this.releasedListed > list.length >> 1) {
      this.changedList = list.filter((e) => e.dirty === this.epoch);
      this.releasedListed = 0;
    }
  }

  /** Records that `entry` leaves the table. */
  protected forget(entry: StateEntry<V>): void {
    this.release(entry);
    if (entry.persisted) this.tombstones.push([DELETE, entry.time, entry.hash, entry.key]);
  }

  private encodeEarly(entry: StateEntry<V>): void {
    const e = this.encoding!;
    saveRecord(entry, e.early, this.codec, e.epoch, this.maxParallelism);
  }

  /**
   * The entries a full snapshot encodes from memory (a disk table adds its
   * database's rows itself), fixed at the barrier: iterated over many slices, it
   * must not chase entries made since.
   */
  protected abstract snapshotEntries(): IterableIterator<StateEntry<V>>;

  /** Between batches: a table that keeps entries elsewhere moves some there. */
  maintain(): void {}

  close(): void {}

  /**
   * At a barrier, before the entries in memory: chunks a table that keeps
   * entries elsewhere writes first (a disk table's database rows or log).
   */
  protected beginSnapshot(_closing: number, _full: boolean): AsyncIterable<StateChunk> | null {
    return null;
  }

  /**
   * Starts a snapshot at a barrier: what changed since the previous one (or, when
   * `full`, everything), encoded in the background as the backend pulls its
   * chunks. One runs at a time; a newer one (after an abandoned checkpoint)
   * makes the older one fail.
   */
  snapshot(checkpoint: number, full: boolean): TableSnapshot {
    // At the barrier only the epoch turns and the lists are swapped; the entries are visited in the background.
    const closing = this.epoch++;
    const changed = this.changedList;
    this.changedList = [];
    this.changed = 0;
    this.releasedListed = 0;
    const tombstones = full ? [] : this.tombstones;
    this.tombstones = [];
    const droppedUpTo = full ? null : this.droppedUpTo;
    this.droppedUpTo = null;
    const encoding: Encoding = (this.encoding = { epoch: closing, full, early: new GroupedRecords(this.writer) });
    const before = this.beginSnapshot(closing, full);
    // A full snapshot visits every entry (through the table's iterator); a delta, its change list, or every entry
    // when there were too many changes to list.
    const entries = full || changed === null ? this.snapshotEntries() : null;
    const self = this;
    async function* chunks(): AsyncGenerator<StateChunk> {
      const slicer = new Slicer(snapshotTuning.minSliceMs);
      const abandoned = () => {
        // A newer snapshot took over (this one's checkpoint was abandoned): its marks must not be disturbed.
        if (self.encoding !== encoding) throw new Error(`snapshot of ${self.name} for checkpoint ${checkpoint} was superseded`);
      };
      if (before) for await (const c of before) yield c;
      // Deletions before puts: a key deleted and made again in the interval must end up present.
      const deletes = new GroupedRecords();
      for (const t of tombstones) deletes.addRecord(keyGroupOf(t[2], self.maxParallelism), t);
      yield* deletes.take();
      // Hot loops run in plain functions, a slice at a time (JSC optimizes them better than an async body).
      const grouped = self.keptRecords ?? new GroupedRecords(self.writer);
      self.keptRecords = null;
      lentBy = grouped;
      for (let at = 0; ; ) {
        let more: boolean;
        if (entries) more = encodeSlice(entries, grouped, closing, full, self.codec, self.maxParallelism, SLICE);
        else more = (at = encodeListSlice(changed!, at, grouped, closing, self.codec, self.maxParallelism, SLICE)) < changed!.length;
        if (grouped.bytes >= snapshotTuning.roundBytes || (!more && grouped.bytes > 0)) {
          const round = grouped.take();
          lent.push(...round);
          yield* round;
        }
        // Records encoded early go out in rounds too, rather than gathering whole (60 MB in bench:state pauses).
        if (encoding.early.bytes >= snapshotTuning.roundBytes) yield* encoding.early.take();
        if (!more) break;
        await slicer.maybeYield();
        abandoned();
      }
      abandoned();
      // Entries changed or deleted while this ran were encoded early, as they were at the barrier.
      self.encoding = null;
      self.keptRecords = grouped;
      yield* encoding.early.take();
    }
    // The chunks of `grouped` go back to it once written (those encoded early are few, and new each time).
    let lentBy: GroupedRecords | null = null;
    const lent: StateChunk[] = [];
    const written = () => {
      if (this.reusesBuffers()) lentBy?.reuse(lent.splice(0));
    };
    return { table: this.name, checkpoint, full, droppedUpTo, chunks: chunks(), written };
  }

  /** Makes room for about `n` more restored entries. */
  protected reserveRestored(_n: number): void {}

  /** Applies the records of a chain of checkpoint files, restoring entries as persisted. */
  applyRestored(files: RestoredFile[]): void {
    // The largest file is about the entries a chain ends with (its full file); more arrive by growing.
    this.reserveRestored(Math.max(0, ...files.map((f) => f.puts)));
    const apply = (r: StateRecord): void => this.applyRecord(r);
    for (const step of restoreOrder(files)) {
      if (typeof step === "number") this.dropRestored(step);
      else forEachRecord(step, apply);
    }
  }

  private applyRecord(r: StateRecord): void {
    const existing = this.findRestored(r[1], r[2], r[3]);
    if (r[0] === DELETE) {
      if (existing) this.removeRestored(existing);
      return;
    }
    const value = this.codec ? this.codec.load(r[4]) : (r[4] as V);
    if (existing) {
      existing.value = value;
      existing.time = r[1];
      this.replacedRestored(existing);
    } else {
      const entry = new StateEntry<V>(r[2], r[3], value, r[1]);
      entry.persisted = true;
      this.insertRestored(entry);
    }
  }
}

/**
 * The order a chain of files is applied in: each chunk's records in order,
 * every file's chunks of one key group before the next group's, files in
 * checkpoint order within a group. A key is in one group, so each key's
 * records keep their order, and the entries a delta finds again were made
 * moments before, still in the processor's caches: file by file, each lookup
 * of a 4M-key table's delta missed them. Files of time tables that dropped
 * entries are applied whole, in order (a number in the order: the drop that
 * comes before a file's own records).
 */
export function* restoreOrder(files: readonly RestoredFile[]): Generator<Uint8Array | number> {
  if (files.some((f) => f.droppedUpTo !== null)) {
    for (const f of files) {
      if (f.droppedUpTo !== null) yield f.droppedUpTo;
      yield* f.chunks;
    }
    return;
  }
  // Files hold rounds of ascending groups: every chunk by (group, file, place in the file).
  const order: [group: number, file: number, chunk: number][] = [];
  files.forEach((f, file) => f.groups.forEach((group, chunk) => order.push([group, file, chunk])));
  order.sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
  for (const [, file, chunk] of order) yield files[file]!.chunks[chunk]!;
}

/**
 * Entries by the time their expiry is judged by, in buckets of `granularity`
 * µs, so expiring visits only the buckets the cutoff has passed.
 */
export class ExpiryIndex<V> {
  private readonly buckets = new Map<number, Set<StateEntry<V>>>();
  private sorted: number[] = [];
  private readonly bucketOf = new WeakMap<StateEntry<V>, number>();

  constructor(private readonly granularity: number) {}

  place(entry: StateEntry<V>): void {
    if (entry.time === null) return;
    const b = Math.floor(entry.time / this.granularity);
    const was = this.bucketOf.get(entry);
    if (was === b) return;
    if (was !== undefined) this.buckets.get(was)?.delete(entry);
    let set = this.buckets.get(b);
    if (!set) {
      this.buckets.set(b, (set = new Set()));
      const s = this.sorted;
      if (s.length === 0 || s[s.length - 1]! < b) s.push(b);
      else {
        let lo = 0;
        let hi = s.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (s[mid]! < b) lo = mid + 1;
          else hi = mid;
        }
        s.splice(lo, 0, b);
      }
    }
    set.add(entry);
    this.bucketOf.set(entry, b);
  }

  remove(entry: StateEntry<V>): void {
    const was = this.bucketOf.get(entry);
    if (was !== undefined) this.buckets.get(was)?.delete(entry);
    this.bucketOf.delete(entry);
  }

  /** Entries whose time is before `cutoff` (others in the same buckets are left). */
  *before(cutoff: number): IterableIterator<StateEntry<V>> {
    const last = Math.floor(cutoff / this.granularity);
    let n = 0;
    for (; n < this.sorted.length && this.sorted[n]! <= last; n++) {
      const set = this.buckets.get(this.sorted[n]!)!;
      for (const e of [...set]) if (e.time !== null && e.time < cutoff) yield e;
    }
    // Drop emptied buckets at the front.
    let k = 0;
    while (k < this.sorted.length && (this.buckets.get(this.sorted[k]!)?.size ?? 0) === 0) this.buckets.delete(this.sorted[k++]!);
    if (k > 0) this.sorted.splice(0, k);
  }
}

export class KeyedTable<V> extends TrackedTable<V> {
  /** The entries held in memory (all of them, unless a subclass keeps more elsewhere). */
  protected readonly map = new EntryMap<V>();
  protected readonly expiry: ExpiryIndex<V> | null;

  constructor(name: string, codec: StateCodec<V> | null, maxParallelism: number, options: { expiryGranularity?: number } = {}) {
    super(name, codec, maxParallelism);
    this.expiry = options.expiryGranularity ? new ExpiryIndex<V>(Math.max(1, options.expiryGranularity)) : null;
  }

  /** Sets the time an entry's expiry is judged by (its last change, its oldest row...); the entry must be touched. */
  setTime(entry: StateEntry<V>, time: number | null): void {
    this.touch(entry);
    entry.time = time;
    this.expiry?.place(entry);
  }

  /**
   * Visits entries whose time is before `cutoff`; `visit` returns true to delete
   * the entry, or changes it (touching it first) and sets a later time to keep it.
   */
  expire(cutoff: number, visit: (entry: StateEntry<V>) => boolean): number {
    if (!this.expiry) throw new Error(`table ${this.name} was declared without expiry`);
    let dropped = 0;
    for (const e of this.expiry.before(cutoff)) {
      if (visit(e)) {
        this.delete(e);
        dropped++;
      } else this.expiry.place(e);
    }
    return dropped;
  }

  get size(): number {
    return this.map.size;
  }

  /** An entry not in memory: a table that keeps entries elsewhere loads it here. */
  protected miss(_hash: number, _key: readonly unknown[]): StateEntry<V> | undefined {
    return undefined;
  }

  /** A new entry was made. */
  protected created(_entry: StateEntry<V>): void {}

  /** The entry for `key`, for reading only. */
  get(hash: number, key: readonly unknown[]): StateEntry<V> | undefined {
    return this.map.get(hash, key) ?? this.miss(hash, key);
  }

  /** The entry for `key` (made with `make()` and a copy of the key when absent), which the caller may change. */
  update(hash: number, key: readonly unknown[], make: () => V): StateEntry<V> {
    let e = this.map.get(hash, key) ?? this.miss(hash, key);
    if (!e) {
      e = new StateEntry(hash, key.slice(), make(), null);
      this.arrived(e);
      this.map.add(e);
      this.created(e);
    }
    this.touch(e);
    return e;
  }

  /** Marks an entry got with `get` as changed, before changing it. */
  modify(entry: StateEntry<V>): void {
    this.touch(entry);
  }

  delete(entry: StateEntry<V>): void {
    this.forget(entry);
    this.map.remove(entry);
    this.expiry?.remove(entry);
  }

  entries(): IterableIterator<StateEntry<V>> {
    return this.map.entries();
  }

  protected snapshotEntries(): IterableIterator<StateEntry<V>> {
    return this.map.entriesNow();
  }

  protected override reserveRestored(n: number): void {
    this.map.reserve(this.map.size + n);
  }
  protected insertRestored(entry: StateEntry<V>): void {
    this.map.add(entry);
    this.expiry?.place(entry);
  }
  protected findRestored(_time: number | null, hash: number, key: unknown[]): StateEntry<V> | undefined {
    return this.map.get(hash, key);
  }
  protected removeRestored(entry: StateEntry<V>): void {
    this.map.remove(entry);
    this.expiry?.remove(entry);
  }
  protected override replacedRestored(entry: StateEntry<V>): void {
    this.expiry?.place(entry);
  }
  protected dropRestored(): void {}
}

const EMPTY_MAP = new EntryMap<never>();

export class TimeKeyedTable<V> extends TrackedTable<V> {
  private readonly byTime = new Map<number, EntryMap<V>>();
  /** Times present, ascending. */
  private sorted: number[] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Times that hold entries, ascending (do not modify). */
  times(): readonly number[] {
    return this.sorted;
  }

  /** Entries the time dropped last held: a new time's index is made for as many at once. */
  private sizeHint = 0;

  private bucketAt(time: number, create: boolean): EntryMap<V> | undefined {
    let b = this.byTime.get(time);
    if (!b && create) {
      b = new EntryMap();
      // A window's panes hold about as many keys as the one before: grown index by index, a pane spent much of its life
      // filling a grown index from the previous one, a few slots per lookup.
      b.reserve(this.sizeHint);
      this.byTime.set(time, b);
      const s = this.sorted;
      if (s.length === 0 || s[s.length - 1]! < time) s.push(time);
      else {
        let lo = 0;
        let hi = s.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (s[mid]! < time) lo = mid + 1;
          else hi = mid;
        }
        s.splice(lo, 0, time);
      }
    }
    return b;
  }

  get(time: number, hash: number, key: readonly unknown[]): StateEntry<V> | undefined {
    return this.bucketAt(time, false)?.get(hash, key);
  }

  update(time: number, hash: number, key: readonly unknown[], make: () => V): StateEntry<V> {
    const bucket = this.bucketAt(time, true)!;
    let e = bucket.get(hash, key);
    if (!e) {
      e = new StateEntry(hash, key.slice(), make(), time);
      this.arrived(e);
      bucket.add(e);
      this.count++;
    }
    this.touch(e);
    return e;
  }

  modify(entry: StateEntry<V>): void {
    this.touch(entry);
  }

  /** Entries at `time` (for reading; use `modify` before changing one). */
  at(time: number): IterableIterator<StateEntry<V>> {
    // The bucket's own cursor: delegating to it from a generator cost a resumption per entry.
    return (this.bucketAt(time, false) ?? EMPTY_MAP).entries() as IterableIterator<StateEntry<V>>;
  }

  delete(entry: StateEntry<V>): void {
    const b = this.byTime.get(entry.time!);
    if (!b) return;
    this.forget(entry);
    b.remove(entry);
    this.count--;
    if (b.size === 0) this.removeTime(entry.time!);
  }

  private removeTime(time: number): void {
    this.byTime.delete(time);
    const i = this.sorted.indexOf(time);
    if (i >= 0) this.sorted.splice(i, 1);
  }

  /** Drops every entry with time ≤ `upTo`: one range deletion in the next checkpoint, not one per entry. */
  dropUpTo(upTo: number): void {
    let n = 0;
    while (n < this.sorted.length && this.sorted[n]! <= upTo) n++;
    if (n === 0) return;
    for (const time of this.sorted.slice(0, n)) {
      const b = this.byTime.get(time)!;
      // The range deletion covers them; a running snapshot still gets their values as they were.
      for (const e of b.entries()) this.release(e);
      this.count -= b.size;
      this.sizeHint = b.size;
      this.byTime.delete(time);
    }
    this.sorted.splice(0, n);
    this.droppedUpTo = Math.max(this.droppedUpTo ?? -Infinity, upTo);
  }

  entries(): IterableIterator<StateEntry<V>> {
    const self = this;
    return (function* () {
      for (const time of self.sorted) yield* self.byTime.get(time)!.entries();
    })();
  }

  protected snapshotEntries(): IterableIterator<StateEntry<V>> {
    // Each time's entries as of the barrier (windows are few); a time dropped meanwhile was encoded as it went.
    const now = this.sorted.map((time) => this.byTime.get(time)!.entriesNow());
    return (function* () {
      for (const entries of now) yield* entries;
    })();
  }

  protected insertRestored(entry: StateEntry<V>): void {
    this.bucketAt(entry.time!, true)!.add(entry);
    this.count++;
  }
  protected findRestored(time: number | null, hash: number, key: unknown[]): StateEntry<V> | undefined {
    return time === null ? undefined : this.byTime.get(time)?.get(hash, key);
  }
  protected removeRestored(entry: StateEntry<V>): void {
    const b = this.byTime.get(entry.time!)!;
    b.remove(entry);
    this.count--;
    if (b.size === 0) this.removeTime(entry.time!);
  }
  protected dropRestored(upTo: number): void {
    let n = 0;
    while (n < this.sorted.length && this.sorted[n]! <= upTo) n++;
    for (const time of this.sorted.slice(0, n)) {
      this.count -= this.byTime.get(time)!.size;
      this.byTime.delete(time);
    }
    this.sorted.splice(0, n);
  }
}
