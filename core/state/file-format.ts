/**
 * The binary format of a state table's checkpoint file: chunks, each a sequence
 * of MessagePack records of one key group, and a footer indexing the chunks, so
 * a restoring subtask reads only the key groups it owns. A key group may have
 * several chunks; a restore applies them in the footer's order (the order they
 * were written in, which puts a key's older records first). Files are written
 * a chunk at a time, so encoding never holds a whole file in memory. A file is
 * either full (the table's whole content for its key groups) or a delta (what
 * changed since the previous checkpoint).
 *
 *   [chunk]...[footer: MessagePack][footer length: u32 LE]["RNST"]
 *   put    = [1, time | null, hash, key, value]
 *   delete = [0, time | null, hash, key]
 *
 * Version 1 files had one chunk per key group, deletions first; they read the same.
 */
import { packr, unpackr } from "./packr.ts";
import { ByteBuffer, writeDelete, writePut } from "./record-writer.ts";
import type { ShapedWriter } from "./shaped-writer.ts";

export { packr, unpackr };

const MAGIC = 0x54534e52; // "RNST" little-endian
export const STATE_FILE_VERSION = 2;
const READABLE_VERSIONS = [1, 2];

export interface StateFileFooter {
  v: number;
  table: string;
  checkpoint: number;
  full: boolean;
  /** Time tables: entries with time ≤ this were dropped (applies before this file's own entries). */
  droppedUpTo: number | null;
  /** [key group, offset, length, puts, deletes] per chunk, in the order a restore applies them. */
  groups: [number, number, number, number, number][];
}

export const PUT = 1;
export const DELETE = 0;
export type StateRecord = [typeof PUT, number | null, number, unknown[], unknown] | [typeof DELETE, number | null, number, unknown[]];

/** The bytes of a packed array after its header: the bare sequence of its elements. */
function withoutArrayHeader(whole: Uint8Array): Uint8Array {
  const first = whole[0]!;
  return whole.subarray(first >= 0x90 && first <= 0x9f ? 1 : first === 0xdc ? 3 : 5);
}

/** Packs values as a bare sequence (the encoding of an array without its header). */
export function packSequence(values: unknown[]): Uint8Array {
  if (values.length === 0) return new Uint8Array(0);
  return withoutArrayHeader(packr.pack(values)).slice();
}

export function unpackSequence(bytes: Uint8Array): unknown[] {
  if (bytes.byteLength === 0) return [];
  return unpackr.unpackMultiple(bytes) as unknown[];
}

/** Calls `each` with every record of a chunk, in order, without gathering them. */
export function forEachRecord(bytes: Uint8Array, each: (record: StateRecord) => void): void {
  if (bytes.byteLength === 0) return;
  unpackr.unpackMultiple(bytes, (r: unknown) => {
    each(r as StateRecord);
  });
}

/** A run of records of one key group, as a file holds it. */
export interface StateChunk {
  kg: number;
  bytes: Uint8Array;
  puts: number;
  deletes: number;
}

/** The footer and tail that end a file whose chunks (in `groups`) were written before them. */
export function encodeFooter(meta: Omit<StateFileFooter, "v">): Uint8Array {
  const footer = packr.pack({ v: STATE_FILE_VERSION, ...meta } satisfies StateFileFooter);
  const out = new Uint8Array(footer.byteLength + 8);
  out.set(footer, 0);
  const view = new DataView(out.buffer, out.byteOffset + footer.byteLength, 8);
  view.setUint32(0, footer.byteLength, true);
  view.setUint32(4, MAGIC, true);
  return out;
}

/** A five-element array (0x95) whose first element is PUT (the positive fixint 0x01). */
const PUT_HEADER = new Uint8Array([0x95, PUT]);

/**
 * A put record built from a key and a value already packed (as a disk table
 * keeps them), without unpacking and packing them again: MessagePack is
 * compositional, so the bytes equal packing the record whole.
 */
export function packPutFromPacked(time: number | null, hash: number, key: Uint8Array, value: Uint8Array): Uint8Array {
  const t = packr.pack(time);
  const h = packr.pack(hash);
  const out = new Uint8Array(2 + t.byteLength + h.byteLength + key.byteLength + value.byteLength);
  out.set(PUT_HEADER, 0);
  let at = 2;
  out.set(t, at);
  at += t.byteLength;
  out.set(h, at);
  at += h.byteLength;
  out.set(key, at);
  at += key.byteLength;
  out.set(value, at);
  return out;
}

/** Reads the footer, given the file's last bytes (at least the footer and 8 more). */
export function decodeFooter(tail: Uint8Array, fileSize: number, where: string): { footer: StateFileFooter; start: number } {
  const view = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  if (tail.byteLength < 8 || view.getUint32(tail.byteLength - 4, true) !== MAGIC) throw new Error(`${where} is not a Runnel state file (or is cut short)`);
  const length = view.getUint32(tail.byteLength - 8, true);
  if (length + 8 > tail.byteLength) return { footer: null as never, start: fileSize - 8 - length };
  const footer = unpackr.unpack(tail.subarray(tail.byteLength - 8 - length, tail.byteLength - 8)) as StateFileFooter;
  if (!READABLE_VERSIONS.includes(footer.v)) throw new Error(`${where} has state file version ${footer.v}; this Runnel reads versions ${READABLE_VERSIONS.join(" and ")}: restore it with the Runnel that wrote it`);
  return { footer, start: fileSize - 8 - length };
}

/** How GroupedRecords counts a record: one put, one deletion, or records whose counts were given. */
const ONE_PUT = 0;
const ONE_DELETE = 1;
const COUNTED = 2;

/**
 * Encoded records gathered by key group, handed out as chunks a round at a time.
 * A snapshot encodes entries in the order memory holds them (visiting 4M entries
 * in key-group order, scattered over the heap, took five times as long as
 * encoding them). Records are written one after another into one buffer, kept
 * for the whole snapshot, noting each record's key group and end; a round's end
 * sorts the bytes into key groups in one pass, keeping each group's records in
 * the order written. Writing into a buffer per key group instead cost a third
 * more per record (128 buffers, each grown and copied, each a write stream the
 * caches lose), and left 128 garbage buffers per round.
 */
export class GroupedRecords {
  /** The round's records, in the order written (reused from round to round). */
  private readonly scratch = new ByteBuffer(64 * 1024);
  /** Per record: where it ends in `scratch`, and its key group and kind (`kg * 4 + ONE_PUT | ONE_DELETE | COUNTED`). */
  private ends = new Int32Array(1024);
  private codes = new Int32Array(1024);
  private count = 0;
  /** Puts and deletions per key group of the records added with their counts (`add`), by key group. */
  private readonly counted = new Map<number, [number, number]>();

  /** Bytes held since the last round. */
  get bytes(): number {
    return this.scratch.n;
  }

  /** Notes the record just written to `scratch` (the round's sums per key group wait for `take`). */
  private noted(code: number): void {
    const i = this.count++;
    if (i === this.ends.length) {
      const ends = new Int32Array(i * 2);
      ends.set(this.ends);
      this.ends = ends;
      const codes = new Int32Array(i * 2);
      codes.set(this.codes);
      this.codes = codes;
    }
    this.ends[i] = this.scratch.n;
    this.codes[i] = code;
  }

  /** Adds encoded records of key group `kg`: `puts` puts and `deletes` deletions. */
  add(kg: number, records: Uint8Array, puts: number, deletes: number): void {
    const b = this.scratch;
    b.room(records.byteLength);
    b.buf.set(records, b.n);
    b.n += records.byteLength;
    const c = this.counted.get(kg);
    if (c) (c[0] += puts), (c[1] += deletes);
    else this.counted.set(kg, [puts, deletes]);
    this.noted(kg * 4 + COUNTED);
  }

  /** `writer`: the table's writer for the shapes of its records, which puts go through (else the generic writer). */
  constructor(private readonly writer: ShapedWriter | null = null) {}

  /** Writes a put of key group `kg`. */
  put(kg: number, time: number | null, hash: number, key: readonly unknown[], value: unknown): void {
    const writer = this.writer;
    if (writer) writer.put(this.scratch, time, hash, key, value);
    else writePut(this.scratch, time, hash, key, value);
    this.noted(kg * 4 + ONE_PUT);
  }

  /** Writes one record of key group `kg`. */
  addRecord(kg: number, record: StateRecord): void {
    if (record[0] === PUT) {
      writePut(this.scratch, record[1], record[2], record[3], record[4]);
      this.noted(kg * 4 + ONE_PUT);
    } else {
      writeDelete(this.scratch, record[1], record[2], record[3]);
      this.noted(kg * 4 + ONE_DELETE);
    }
  }

  /** What was gathered, one chunk per key group in ascending order (views of one new buffer); starts the next round empty. */
  take(): StateChunk[] {
    const sorting = this.sort();
    sorting.copy(Infinity);
    return sorting.chunks;
  }

  /**
   * take() a step at a time, for a caller that lets processing run between
   * steps: sorting a 16 MB round at once stopped processing for 33 ms, and for
   * 50-110 ms in a job's first checkpoint. Nothing may be added until the
   * returned sort's `copy` has reported it done; then this starts the next round empty.
   */
  sort(): RoundSort {
    const { ends, codes, count } = this;
    // Per key group: bytes, puts and deletions.
    let groups = 0;
    for (let i = 0; i < count; i++) groups = Math.max(groups, (codes[i]! >> 2) + 1);
    const sizes = new Int32Array(groups);
    const puts = new Int32Array(groups);
    const deletes = new Int32Array(groups);
    let start = 0;
    for (let i = 0; i < count; i++) {
      const end = ends[i]!;
      const code = codes[i]!;
      const kg = code >> 2;
      sizes[kg] += end - start;
      if ((code & 3) === ONE_PUT) puts[kg]++;
      else if ((code & 3) === ONE_DELETE) deletes[kg]++;
      start = end;
    }
    for (const [kg, [p, d]] of this.counted) (puts[kg] += p), (deletes[kg] += d);
    // Where each key group's next record goes, groups laid out in ascending order.
    const out = new Uint8Array(start);
    const at = new Int32Array(groups);
    const chunks: StateChunk[] = [];
    let offset = 0;
    for (let kg = 0; kg < groups; kg++) {
      const size = sizes[kg]!;
      if (size === 0) continue;
      at[kg] = offset;
      chunks.push({ kg, bytes: out.subarray(offset, offset + size), puts: puts[kg]!, deletes: deletes[kg]! });
      offset += size;
    }
    return new RoundSort(this.scratch, ends, codes, count, out, at, chunks, () => this.clear());
  }

  /** Drops what was gathered. */
  clear(): void {
    this.count = 0;
    this.scratch.n = 0;
    this.counted.clear();
  }
}

/** A round of GroupedRecords being sorted into its key groups' chunks (see GroupedRecords.sort). */
export class RoundSort {
  /** The next record to copy, and where it starts. */
  private next = 0;
  private start = 0;
  private readonly into: DataView;

  constructor(
    private readonly scratch: ByteBuffer,
    private readonly ends: Int32Array,
    private readonly codes: Int32Array,
    private readonly count: number,
    private readonly out: Uint8Array,
    /** Where each key group's next record goes. */
    private readonly at: Int32Array,
    /** Complete once `copy` has returned true. */
    readonly chunks: StateChunk[],
    private readonly done: () => void,
  ) {
    this.into = new DataView(out.buffer);
  }

  /** Copies up to `limit` more records into their chunks; true once all are. */
  copy(limit: number): boolean {
    const { ends, codes, out, at, into } = this;
    const src = this.scratch.buf;
    const from = this.scratch.view;
    const last = Math.min(this.count, this.next + limit);
    let start = this.start;
    for (let i = this.next; i < last; i++) {
      const end = ends[i]!;
      const kg = codes[i]! >> 2;
      let to = at[kg]!;
      // Records are mostly a few dozen bytes: four at a time (never past the record's end, where another
      // group's records may already be), then byte by byte, beats making a subarray for set().
      if (end - start <= 64) {
        let j = start;
        for (; j + 4 <= end; j += 4, to += 4) into.setInt32(to, from.getInt32(j));
        for (; j < end; j++) out[to++] = src[j]!;
      } else {
        out.set(src.subarray(start, end), to);
        to += end - start;
      }
      at[kg] = to;
      start = end;
    }
    this.next = last;
    this.start = start;
    if (last < this.count) return false;
    this.done();
    return true;
  }
}
