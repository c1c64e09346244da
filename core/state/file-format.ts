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

/** The most bytes of written buffers a GroupedRecords keeps for reuse (a table's largest snapshots keep up to this). */
const MAX_SPARE_BYTES = 256 * 1024 * 1024;

/** A key group's records of the round, and how many puts and deletions they are. */
interface GroupBytes {
  records: ByteBuffer;
  puts: number;
  deletes: number;
}

/**
 * Encoded records gathered by key group, handed out as chunks a round at a time.
 * A snapshot encodes entries in the order memory holds them (visiting 4M entries
 * in key-group order, scattered over the heap, took five times as long as
 * encoding them), so each record goes to its key group's buffer as it is
 * written. A round's end hands each group's buffer out as its chunk and gives
 * the group a new one as large, so buffers grow only in a table's first large
 * round. Writing every record into one buffer and sorting the records into key
 * groups at the round's end instead cost 55 ns a record more (a copy per
 * record, and each record's end and group noted), about a third of a
 * checkpoint's time on the processing thread; copying the groups' buffers
 * into one new buffer of the round stopped processing for 12-19 ms a 16 MB
 * round (the new buffer's pages faulted in at once).
 *
 * The buffers handed out come back (reuse) once the backend has written them,
 * and the next rounds write into them instead of new ones: a table changed
 * throughout took 95 MB of new buffers per checkpoint of 4M keys, which the
 * collector counts toward its next full collection of the whole heap, and
 * whose pages faulted in again as they were written.
 */
export class GroupedRecords {
  /** By key group: its buffer, once it has had a record. */
  private readonly groups: (GroupBytes | undefined)[] = [];
  private held = 0;
  /** Buffers handed out and written, for the next rounds; `spareBytes` in all. */
  private readonly spares: Uint8Array[] = [];
  private spareBytes = 0;

  /** `writer`: the table's writer for the shapes of its records, which puts go through (else the generic writer). */
  constructor(private readonly writer: ShapedWriter | null = null) {}

  /** Bytes held since the last round. */
  get bytes(): number {
    return this.held;
  }

  // A round's groups are found by its end (take, clear) walking the groups, rather than noted at every record.
  private groupOf(kg: number): GroupBytes {
    return this.groups[kg] ?? this.newGroup(kg);
  }

  private newGroup(kg: number): GroupBytes {
    // Filled in key-group order up to kg, so the array stays dense (holes make its reads slow).
    while (this.groups.length < kg) this.groups.push(undefined);
    return (this.groups[kg] = { records: new ByteBuffer(256), puts: 0, deletes: 0 });
  }

  /** Adds encoded records of key group `kg`: `puts` puts and `deletes` deletions. */
  add(kg: number, records: Uint8Array, puts: number, deletes: number): void {
    const g = this.groupOf(kg);
    const b = g.records;
    b.room(records.byteLength);
    b.buf.set(records, b.n);
    b.n += records.byteLength;
    this.held += records.byteLength;
    g.puts += puts;
    g.deletes += deletes;
  }

  /** Writes a put of key group `kg`. */
  put(kg: number, time: number | null, hash: number, key: readonly unknown[], value: unknown): void {
    const g = this.groupOf(kg);
    const b = g.records;
    const before = b.n;
    const writer = this.writer;
    if (writer) writer.put(b, time, hash, key, value);
    else writePut(b, time, hash, key, value);
    this.held += b.n - before;
    g.puts++;
  }

  /** Writes one record of key group `kg`. */
  addRecord(kg: number, record: StateRecord): void {
    const g = this.groupOf(kg);
    const b = g.records;
    const before = b.n;
    if (record[0] === PUT) {
      writePut(b, record[1], record[2], record[3], record[4]);
      g.puts++;
    } else {
      writeDelete(b, record[1], record[2], record[3]);
      g.deletes++;
    }
    this.held += b.n - before;
  }

  /** What was gathered, one chunk per key group in ascending order (each the group's own buffer); starts the next round empty. */
  take(): StateChunk[] {
    const chunks: StateChunk[] = [];
    const groups = this.groups;
    for (let kg = 0; kg < groups.length; kg++) {
      const g = groups[kg];
      if (g === undefined) continue;
      const records = g.records;
      if (records.n === 0) continue;
      chunks.push({ kg, bytes: records.buf.subarray(0, records.n), puts: g.puts, deletes: g.deletes });
      g.records = this.nextBuffer(records.buf.length);
    }
    this.clear();
    return chunks;
  }

  /** A group's buffer for the next round: one handed out before and written since, else a new one of `size`. */
  private nextBuffer(size: number): ByteBuffer {
    const spare = this.spares.pop();
    if (spare === undefined) return new ByteBuffer(size);
    this.spareBytes -= spare.byteLength;
    return ByteBuffer.over(spare);
  }

  /**
   * Takes back buffers of chunks this handed out, once nothing reads them (the
   * backend wrote them), up to MAX_SPARE_BYTES held.
   */
  reuse(chunks: readonly StateChunk[]): void {
    for (const c of chunks) {
      // A chunk is the start of its group's own buffer (take): the buffer is reused whole.
      const whole = new Uint8Array(c.bytes.buffer);
      if (this.spareBytes + whole.byteLength > MAX_SPARE_BYTES) return;
      this.spares.push(whole);
      this.spareBytes += whole.byteLength;
    }
  }

  /** Drops what was gathered. */
  clear(): void {
    for (const g of this.groups) {
      if (g === undefined) continue;
      g.records.n = 0;
      g.puts = 0;
      g.deletes = 0;
    }
    this.held = 0;
  }
}
