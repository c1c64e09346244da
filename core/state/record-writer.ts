/**
 * Writes checkpoint records as MessagePack straight into a byte buffer.
 * A snapshot encodes millions of small records; packing each through msgpackr
 * cost a record array, a call, a view of msgpackr's buffer and a copy into the
 * snapshot's buffer, about three times the encoding itself (1.4 µs a record,
 * against 0.45 µs for msgpackr on the same values in a loop). The values state
 * holds are mostly numbers, strings, nulls, arrays and plain objects: those are
 * written here; anything else (bigints, dates, bytes, maps, undefined) goes
 * through msgpackr and its bytes are copied in, which MessagePack allows as it
 * is compositional. Any MessagePack reader (msgpackr's, on restore) reads both.
 * Unlike msgpackr, -0 stays -0 (written as a float64).
 */
import { RESET_BUFFER_MODE } from "msgpackr";
import { packr } from "./packr.ts";

const encoder = new TextEncoder();

/** A growable byte buffer records are written to (`view` over the same bytes, `n` bytes used). */
export class ByteBuffer {
  buf: Uint8Array;
  view: DataView;
  n = 0;
  constructor(size = 1024, bytes: Uint8Array = new Uint8Array(size)) {
    this.buf = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  /** A buffer writing over `bytes` from their start (bytes handed out before and no longer read). */
  static over(bytes: Uint8Array): ByteBuffer {
    return new ByteBuffer(bytes.byteLength, bytes);
  }
  /** Makes room for `bytes` more. */
  room(bytes: number): void {
    if (this.n + bytes > this.buf.length) this.grow(bytes);
  }
  private grow(bytes: number): void {
    const grown = new Uint8Array(Math.max(this.buf.length * 2, this.n + bytes, 1024));
    grown.set(this.buf.subarray(0, this.n));
    this.buf = grown;
    this.view = new DataView(grown.buffer);
  }
}

// Each writer reads the buffer's fields into locals once and stores the position once: per number,
// reading and writing them through the object (or module variables) at every byte was 1.7x slower.

/** Writes `v` at `p` of `b` (9 bytes of room there), returning where it ends. */
export function writeNumberAt(b: Uint8Array, view: DataView, p: number, v: number): number {
  if ((v | 0) === v && (v !== 0 || 1 / v > 0)) {
    if (v >= 0) {
      if (v < 0x80) b[p++] = v;
      else if (v < 0x100) (b[p] = 0xcc), (b[p + 1] = v), (p += 2);
      else if (v < 0x10000) (b[p] = 0xcd), (b[p + 1] = v >>> 8), (b[p + 2] = v), (p += 3);
      else (b[p] = 0xce), (b[p + 1] = v >>> 24), (b[p + 2] = v >>> 16), (b[p + 3] = v >>> 8), (b[p + 4] = v), (p += 5);
    } else if (v >= -32) b[p++] = v & 0xff;
    else if (v >= -128) (b[p] = 0xd0), (b[p + 1] = v), (p += 2);
    else if (v >= -32768) (b[p] = 0xd1), (b[p + 1] = v >> 8), (b[p + 2] = v), (p += 3);
    else (b[p] = 0xd2), (b[p + 1] = v >> 24), (b[p + 2] = v >> 16), (b[p + 3] = v >> 8), (b[p + 4] = v), (p += 5);
  } else if (v >>> 0 === v && v !== 0) {
    (b[p] = 0xce), (b[p + 1] = v >>> 24), (b[p + 2] = v >>> 16), (b[p + 3] = v >>> 8), (b[p + 4] = v), (p += 5);
  } else {
    b[p] = 0xcb;
    view.setFloat64(p + 1, v);
    p += 9;
  }
  return p;
}

function writeNumber(w: ByteBuffer, v: number): void {
  w.room(9);
  w.n = writeNumberAt(w.buf, w.view, w.n, v);
}

export function writeString(w: ByteBuffer, s: string): void {
  const n = s.length;
  if (n < 32) {
    w.room(1 + n);
    const b = w.buf;
    const at = w.n;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      b[at + 1 + i] = c;
    }
    if (i === n) {
      b[at] = 0xa0 | n;
      w.n = at + 1 + n;
      return;
    }
  }
  w.room(5 + n * 3);
  const b = w.buf;
  const pos = w.n;
  const { written } = encoder.encodeInto(s, b.subarray(pos + 5));
  const header = written < 32 ? 1 : written < 0x100 ? 2 : written < 0x10000 ? 3 : 5;
  if (header !== 5) b.copyWithin(pos + header, pos + 5, pos + 5 + written);
  if (header === 1) b[pos] = 0xa0 | written;
  else if (header === 2) (b[pos] = 0xd9), (b[pos + 1] = written);
  else if (header === 3) (b[pos] = 0xda), w.view.setUint16(pos + 1, written);
  else (b[pos] = 0xdb), w.view.setUint32(pos + 1, written);
  w.n = pos + header + written;
}

function writeArrayHeader(w: ByteBuffer, n: number): void {
  w.room(5);
  const b = w.buf;
  const p = w.n;
  if (n < 16) (b[p] = 0x90 | n), (w.n = p + 1);
  else if (n < 0x10000) (b[p] = 0xdc), (b[p + 1] = n >>> 8), (b[p + 2] = n), (w.n = p + 3);
  else (b[p] = 0xdd), (b[p + 1] = n >>> 24), (b[p + 2] = n >>> 16), (b[p + 3] = n >>> 8), (b[p + 4] = n), (w.n = p + 5);
}

function writeByte(w: ByteBuffer, x: number): void {
  w.room(1);
  w.buf[w.n++] = x;
}

/** A plain object (a struct value) as a map of its own enumerable keys, as msgpackr writes one. */
function writeObject(w: ByteBuffer, o: Record<string, unknown>): void {
  let n = 0;
  for (const _ in o) n++;
  w.room(5);
  if (n < 16) w.buf[w.n++] = 0x80 | n;
  else if (n < 0x10000) (w.buf[w.n] = 0xde), w.view.setUint16(w.n + 1, n), (w.n += 3);
  else (w.buf[w.n] = 0xdf), w.view.setUint32(w.n + 1, n), (w.n += 5);
  for (const k in o) {
    writeString(w, k);
    writeValue(w, o[k]);
  }
}

export function writeValue(w: ByteBuffer, v: unknown): void {
  if (typeof v === "number") return writeNumber(w, v);
  if (typeof v === "string") return writeString(w, v);
  if (v === null) return writeByte(w, 0xc0);
  if (typeof v === "boolean") return writeByte(w, v ? 0xc3 : 0xc2);
  if (Array.isArray(v)) {
    const n = v.length;
    writeArrayHeader(w, n);
    for (let i = 0; i < n; i++) {
      // Numbers (most of what state holds) are written here rather than through another call of this recursive function.
      const x = v[i];
      if (typeof x === "number") writeNumber(w, x);
      else writeValue(w, x);
    }
    return;
  }
  if (typeof v === "object" && (v as object).constructor === Object) return writeObject(w, v as Record<string, unknown>);
  const bytes = packr.pack(v, RESET_BUFFER_MODE);
  w.room(bytes.byteLength);
  w.buf.set(bytes, w.n);
  w.n += bytes.byteLength;
}

/** Starts a record: the array header of `length` elements, the kind, time, hash and key. */
function beginRecord(w: ByteBuffer, length: number, kind: number, time: number | null, hash: number, key: readonly unknown[]): void {
  w.room(3);
  const b = w.buf;
  const p = w.n;
  b[p] = 0x90 | length;
  b[p + 1] = kind;
  if (time === null) (b[p + 2] = 0xc0), (w.n = p + 3);
  else (w.n = p + 2), writeNumber(w, time);
  writeNumber(w, hash);
  writeValue(w, key);
}

/** Appends `[1, time, hash, key, value]` (a put). */
export function writePut(w: ByteBuffer, time: number | null, hash: number, key: readonly unknown[], value: unknown): void {
  beginRecord(w, 5, 0x01, time, hash, key);
  writeValue(w, value);
}

/** Appends `[0, time, hash, key]` (a deletion). */
export function writeDelete(w: ByteBuffer, time: number | null, hash: number, key: readonly unknown[]): void {
  beginRecord(w, 4, 0x00, time, hash, key);
}
