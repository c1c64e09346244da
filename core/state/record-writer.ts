/**
 * Writes checkpoint records as MessagePack straight into a key group's buffer.
 * A snapshot encodes millions of small records; packing each through msgpackr
 * cost a record array, a call, a view of msgpackr's buffer and a copy into the
 * key group's buffer, about three times the encoding itself (1.4 µs a record,
 * against 0.45 µs for msgpackr on the same values in a loop). The values state
 * holds are mostly numbers, strings, nulls, arrays and plain objects: those are
 * written here; anything else (bigints, dates, bytes, maps, undefined) goes
 * through msgpackr and its bytes are copied in, which MessagePack allows as it
 * is compositional. Any MessagePack reader (msgpackr's, on restore) reads both.
 * Unlike msgpackr, -0 stays -0 (written as a float64).
 */
import { RESET_BUFFER_MODE } from "msgpackr";
import { packr } from "./packr.ts";

/** A growable byte buffer records are written to (`view` over the same bytes). */
export interface ByteBuffer {
  buf: Uint8Array;
  view: DataView;
  n: number;
}

export function byteBuffer(size = 1024): ByteBuffer {
  const buf = new Uint8Array(size);
  return { buf, view: new DataView(buf.buffer), n: 0 };
}

// The buffer being written, held in module variables while a record is written (no property loads in the hot path).
let buf: Uint8Array = new Uint8Array(0);
let view: DataView = new DataView(buf.buffer);
let pos = 0;
let target: ByteBuffer | null = null;
const encoder = new TextEncoder();

/** Makes room for `bytes` more (the check is inlined where it is hot; growing is not). */
function room(bytes: number): void {
  if (pos + bytes > buf.length) grow(bytes);
}

function grow(bytes: number): void {
  const grown = new Uint8Array(Math.max(buf.length * 2, pos + bytes, 1024));
  grown.set(buf.subarray(0, pos));
  buf = grown;
  view = new DataView(buf.buffer);
}

function begin(into: ByteBuffer): void {
  target = into;
  buf = into.buf;
  view = into.view;
  pos = into.n;
}

function end(): void {
  target!.buf = buf;
  target!.view = view;
  target!.n = pos;
  target = null;
}

// The hot writers below read the module's buffer and position into locals once and store the position once:
// each access to a module variable is a scope load or store, and per byte they made numbers 1.7x slower.

function writeNumber(v: number): void {
  room(9);
  const b = buf;
  let p = pos;
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
  pos = p;
}

function writeString(s: string): void {
  const n = s.length;
  if (n < 32) {
    // ASCII is one byte a character: write it with a fixstr header, or start over the long way at the first other character.
    room(1 + n);
    const at = pos;
    let i = 0;
    for (; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      buf[at + 1 + i] = c;
    }
    if (i === n) {
      buf[at] = 0xa0 | n;
      pos = at + 1 + n;
      return;
    }
  }
  // Header of 5 bytes reserved, then moved down once the UTF-8 length is known.
  room(5 + n * 3);
  const { written } = encoder.encodeInto(s, buf.subarray(pos + 5));
  const header = written < 32 ? 1 : written < 0x100 ? 2 : written < 0x10000 ? 3 : 5;
  if (header !== 5) buf.copyWithin(pos + header, pos + 5, pos + 5 + written);
  if (header === 1) buf[pos] = 0xa0 | written;
  else if (header === 2) (buf[pos] = 0xd9), (buf[pos + 1] = written);
  else if (header === 3) (buf[pos] = 0xda), view.setUint16(pos + 1, written);
  else (buf[pos] = 0xdb), view.setUint32(pos + 1, written);
  pos += header + written;
}

function writeArrayHeader(n: number): void {
  room(5);
  const b = buf;
  const p = pos;
  if (n < 16) (b[p] = 0x90 | n), (pos = p + 1);
  else if (n < 0x10000) (b[p] = 0xdc), (b[p + 1] = n >>> 8), (b[p + 2] = n), (pos = p + 3);
  else (b[p] = 0xdd), (b[p + 1] = n >>> 24), (b[p + 2] = n >>> 16), (b[p + 3] = n >>> 8), (b[p + 4] = n), (pos = p + 5);
}

/** A plain object (a struct value) as a map of its own enumerable keys, as msgpackr writes one. */
function writeObject(o: Record<string, unknown>): void {
  let n = 0;
  for (const _ in o) n++;
  room(5);
  if (n < 16) buf[pos++] = 0x80 | n;
  else if (n < 0x10000) (buf[pos++] = 0xde), view.setUint16(pos, n), (pos += 2);
  else (buf[pos++] = 0xdf), view.setUint32(pos, n), (pos += 4);
  for (const k in o) {
    writeString(k);
    writeValue(o[k]);
  }
}

function writeValue(v: unknown): void {
  if (typeof v === "number") return writeNumber(v);
  if (typeof v === "string") return writeString(v);
  if (v === null) {
    room(1);
    buf[pos++] = 0xc0;
    return;
  }
  if (typeof v === "boolean") {
    room(1);
    buf[pos++] = v ? 0xc3 : 0xc2;
    return;
  }
  if (Array.isArray(v)) {
    const n = v.length;
    writeArrayHeader(n);
    for (let i = 0; i < n; i++) writeValue(v[i]);
    return;
  }
  if (typeof v === "object" && (v as object).constructor === Object) return writeObject(v as Record<string, unknown>);
  const bytes = packr.pack(v, RESET_BUFFER_MODE);
  room(bytes.byteLength);
  buf.set(bytes, pos);
  pos += bytes.byteLength;
}

/** Starts a record in `into`: the array header of `length` elements, the kind, time, hash and key. */
function beginRecord(into: ByteBuffer, length: number, kind: number, time: number | null, hash: number, key: readonly unknown[]): void {
  begin(into);
  room(3);
  const b = buf;
  const p = pos;
  b[p] = 0x90 | length;
  b[p + 1] = kind;
  if (time === null) (b[p + 2] = 0xc0), (pos = p + 3);
  else (pos = p + 2), writeNumber(time);
  writeNumber(hash);
  writeValue(key);
}

/** Appends `[1, time, hash, key, value]` (a put). */
export function writePut(into: ByteBuffer, time: number | null, hash: number, key: readonly unknown[], value: unknown): void {
  beginRecord(into, 5, 0x01, time, hash, key);
  writeValue(value);
  end();
}

/** Appends `[0, time, hash, key]` (a deletion). */
export function writeDelete(into: ByteBuffer, time: number | null, hash: number, key: readonly unknown[]): void {
  beginRecord(into, 4, 0x00, time, hash, key);
  end();
}
