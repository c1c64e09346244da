/**
 * The exchange's encoding of a batch: column by column rather than row by row,
 * because MessagePack of whole rows cost more per shuffled row than the
 * operators did (q5 at parallelism 2: 2.6x the CPU per event of one process).
 *
 *   [u32 rows][u16 width][u8 flags] times, (ops), (before), column × width
 *
 * Numbers of a column that holds only numbers travel as raw float64 or int32
 * arrays. Any other column is cut into runs of consecutive identical values
 * (=== : equal primitives, the same object), whose values go as one MessagePack
 * array: a window struct shared by a fired window's rows crosses once and
 * arrives shared again, so the receiver's key comparisons keep their
 * same-reference fast path. Rows of unequal widths (none today) go as
 * MessagePack rows. Values decode as they were sent.
 */
import { Packr, Unpackr } from "msgpackr";
import type { Batch, Row, RowOp } from "../plugin-api/index.ts";

// As the frames' bodies: plain values, arrays and structs; no records.
const packr = new Packr({ useRecords: false, moreTypes: true });
const unpackr = new Unpackr({ useRecords: false, moreTypes: true });

const HAS_OPS = 1;
const HAS_BEFORE = 2;
const RAGGED = 0xffff;

const enum Col {
  Null = 0,
  F64 = 1,
  I32 = 2,
  Runs = 3,
  /** Runs of one: the values alone. */
  Values = 4,
}

/** Collects the parts of one encoded batch; `finish` joins them behind a header of `headerBytes`. */
export class Parts {
  readonly list: Uint8Array[] = [];
  bytes = 0;
  add(p: Uint8Array): void {
    this.list.push(p);
    this.bytes += p.byteLength;
  }
  u32(n: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, n, true);
    this.add(b);
  }
  /** A length-prefixed section. */
  section(p: Uint8Array): void {
    this.u32(p.byteLength);
    this.add(p);
  }
}

const asBytes = (a: Float64Array | Int32Array | Uint32Array | Uint8Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

function encodeColumn(rows: Row[], c: number, out: Parts): void {
  const n = rows.length;
  let numbers = true;
  let ints = true;
  let nulls = true;
  for (let i = 0; i < n; i++) {
    const v = rows[i]![c];
    if (typeof v === "number") {
      nulls = false;
      // -0 is not an int32 (it would come back as 0).
      if (ints && ((v | 0) !== v || (v === 0 && 1 / v < 0))) ints = false;
    } else {
      numbers = false;
      if (v !== null) nulls = false;
      if (!nulls) break;
    }
  }
  if (nulls) {
    out.add(new Uint8Array([Col.Null]));
    return;
  }
  if (numbers) {
    const a = ints ? new Int32Array(n) : new Float64Array(n);
    for (let i = 0; i < n; i++) a[i] = rows[i]![c] as number;
    out.add(new Uint8Array([ints ? Col.I32 : Col.F64]));
    out.section(asBytes(a));
    return;
  }
  const values: unknown[] = [];
  const lengths: number[] = [];
  let prev: unknown = rows[0]![c];
  let run = 1;
  for (let i = 1; i < n; i++) {
    const v = rows[i]![c];
    if (v === prev) run++;
    else {
      values.push(prev);
      lengths.push(run);
      prev = v;
      run = 1;
    }
  }
  values.push(prev);
  lengths.push(run);
  if (values.length === n) {
    out.add(new Uint8Array([Col.Values]));
  } else {
    out.add(new Uint8Array([Col.Runs]));
    out.section(asBytes(Uint32Array.from(lengths)));
  }
  out.section(packr.pack(values));
}

/** The parts of a batch's encoding, in order, and their total size. */
export function encodeBatch(batch: Batch): Parts {
  const { rows, times, ops, before } = batch;
  const n = rows.length;
  // The receiver refuses such a batch as malformed; here the fault is ours, so say which part is off.
  if (times.length !== n || (ops && ops.length !== n) || (before && before.length !== n)) {
    throw new Error(`an operator emitted a batch of ${n} rows with ${times.length} times${ops ? `, ${ops.length} ops` : ""}${before ? `, ${before.length} before images` : ""}: a Runnel bug, please report it`);
  }
  const width = n > 0 ? rows[0]!.length : 0;
  let ragged = width >= RAGGED;
  for (let i = 1; i < n && !ragged; i++) if (rows[i]!.length !== width) ragged = true;
  const out = new Parts();
  const head = new Uint8Array(7);
  const view = new DataView(head.buffer);
  view.setUint32(0, n, true);
  view.setUint16(4, ragged ? RAGGED : width, true);
  head[6] = (ops ? HAS_OPS : 0) | (before ? HAS_BEFORE : 0);
  out.add(head);
  out.section(asBytes(Float64Array.from(times)));
  if (ops) out.section(Uint8Array.from(ops));
  if (before) out.section(packr.pack(before));
  if (ragged) out.section(packr.pack(rows));
  else for (let c = 0; c < width; c++) encodeColumn(rows, c, out);
  return out;
}

/** Reads sections of an encoded batch; typed arrays are copied out (the frame's offset is not aligned). */
class Cursor {
  private at = 0;
  private readonly view: DataView;
  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u8(): number {
    return this.bytes[this.at++]!;
  }
  u16(): number {
    const v = this.view.getUint16(this.at, true);
    this.at += 2;
    return v;
  }
  u32(): number {
    const v = this.view.getUint32(this.at, true);
    this.at += 4;
    return v;
  }
  section(): Uint8Array {
    const len = this.u32();
    check(this.at + len <= this.bytes.byteLength);
    const s = this.bytes.subarray(this.at, this.at + len);
    this.at += len;
    return s;
  }
  /** A section copied into its own buffer, so typed arrays can view it aligned. */
  aligned(): ArrayBuffer {
    // A copy: a socket's chunk is a Buffer, whose slice() is a view of the same memory.
    const s = this.section();
    const copy = new Uint8Array(s.byteLength);
    copy.set(s);
    return copy.buffer;
  }
}

/** A peer's frame that does not add up is refused before anything is sized by it. */
function check(ok: boolean): void {
  if (!ok) throw new Error("a peer sent a malformed batch: are all the job's workers the same Runnel version?");
}

function decodeColumn(cur: Cursor, n: number): ArrayLike<unknown> {
  const col = decodeColumnOnce(cur, n);
  check(col.length === n);
  return col;
}

function decodeColumnOnce(cur: Cursor, n: number): ArrayLike<unknown> {
  switch (cur.u8() as Col) {
    case Col.Null:
      return new Array(n).fill(null);
    case Col.F64:
      return new Float64Array(cur.aligned());
    case Col.I32:
      return new Int32Array(cur.aligned());
    case Col.Values: {
      const values = unpackr.unpack(cur.section()) as unknown[];
      check(Array.isArray(values));
      return values;
    }
    case Col.Runs: {
      const lengths = new Uint32Array(cur.aligned());
      const values = unpackr.unpack(cur.section()) as unknown[];
      let total = 0;
      for (let r = 0; r < lengths.length; r++) total += lengths[r]!;
      check(Array.isArray(values) && values.length === lengths.length && total === n);
      const out = new Array(n);
      let i = 0;
      for (let r = 0; r < lengths.length; r++) {
        const v = values[r];
        for (let end = i + lengths[r]!; i < end; i++) out[i] = v;
      }
      return out;
    }
    default:
      throw new Error("a peer sent a batch column of an unknown kind: are all the job's workers the same Runnel version?");
  }
}

export function decodeBatch(bytes: Uint8Array): Batch {
  const cur = new Cursor(bytes);
  const n = cur.u32();
  const width = cur.u16();
  const flags = cur.u8();
  const t = new Float64Array(cur.aligned());
  check(t.length === n);
  const times: number[] = new Array(n);
  for (let i = 0; i < n; i++) times[i] = t[i]!;
  const batch: Batch = { rows: [], times };
  if (flags & HAS_OPS) {
    batch.ops = Array.from(cur.section()) as RowOp[];
    check(batch.ops.length === n);
  }
  if (flags & HAS_BEFORE) {
    batch.before = unpackr.unpack(cur.section()) as (Row | null)[];
    check(Array.isArray(batch.before) && batch.before.length === n);
  }
  if (width === RAGGED) {
    batch.rows = unpackr.unpack(cur.section()) as Row[];
    check(Array.isArray(batch.rows) && batch.rows.length === n);
    return batch;
  }
  const cols: ArrayLike<unknown>[] = [];
  for (let c = 0; c < width; c++) cols.push(decodeColumn(cur, n));
  batch.rows = rowsOf(cols, n);
  return batch;
}

/** Rows from columns; literals for the narrow rows shuffles mostly carry (pruned to the keys and arguments). */
function rowsOf(cols: ArrayLike<unknown>[], n: number): Row[] {
  const rows: Row[] = new Array(n);
  const [a, b, c] = cols;
  switch (cols.length) {
    case 1:
      for (let i = 0; i < n; i++) rows[i] = [a![i]];
      return rows;
    case 2:
      for (let i = 0; i < n; i++) rows[i] = [a![i], b![i]];
      return rows;
    case 3:
      for (let i = 0; i < n; i++) rows[i] = [a![i], b![i], c![i]];
      return rows;
  }
  const width = cols.length;
  for (let i = 0; i < n; i++) {
    const row = new Array(width);
    for (let k = 0; k < width; k++) row[k] = cols[k]![i];
    rows[i] = row;
  }
  return rows;
}
