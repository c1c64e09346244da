/**
 * Reads a message's wire format straight into a row, for messages whose
 * columns are all plain scalars or enums (numbers, bool, string, enum names):
 * no message object, no prototype defaults looked up, no second pass turning
 * the object into a row. protobufjs's decoder and `messageReader` stay the
 * reference: the row of an empty message gives every column's default, and
 * anything this reader does not handle the same way (a wire type other than
 * the field's, groups, a truncated message) sends the record to them, so both
 * paths give the same row or the same error. Columns of other types (nested
 * messages, Timestamp, repeated, maps, bytes, JSON) keep the whole message on
 * the protobufjs path.
 */
import type protobuf from "protobufjs";
import type { Field, Row } from "../../core/plugin-api/index.ts";

const enum Kind {
  Int32,
  Uint32,
  Sint32,
  Fixed32,
  Sfixed32,
  Int64,
  Uint64,
  Sint64,
  Fixed64,
  Sfixed64,
  Bool,
  Float,
  Double,
  String,
  EnumNumber,
  EnumName,
}

/** The wire type each kind is written with: 0 varint, 1 fixed 64-bit, 2 length-delimited, 5 fixed 32-bit. */
const WIRE: Record<Kind, number> = {
  [Kind.Int32]: 0, [Kind.Uint32]: 0, [Kind.Sint32]: 0, [Kind.Fixed32]: 5, [Kind.Sfixed32]: 5,
  [Kind.Int64]: 0, [Kind.Uint64]: 0, [Kind.Sint64]: 0, [Kind.Fixed64]: 1, [Kind.Sfixed64]: 1,
  [Kind.Bool]: 0, [Kind.Float]: 5, [Kind.Double]: 1, [Kind.String]: 2, [Kind.EnumNumber]: 0, [Kind.EnumName]: 0,
};

const SCALAR: Record<string, Kind> = {
  int32: Kind.Int32, uint32: Kind.Uint32, sint32: Kind.Sint32, fixed32: Kind.Fixed32, sfixed32: Kind.Sfixed32,
  int64: Kind.Int64, uint64: Kind.Uint64, sint64: Kind.Sint64, fixed64: Kind.Fixed64, sfixed64: Kind.Sfixed64,
  bool: Kind.Bool, float: Kind.Float, double: Kind.Double, string: Kind.String,
};
const INT32S = new Set(["int32", "uint32", "sint32", "fixed32", "sfixed32"]);
const INT64S = new Set(["int64", "uint64", "sint64", "fixed64", "sfixed64"]);

interface Slot {
  column: number;
  kind: Kind;
  wire: number;
  names: Record<number, string> | null;
}

/**
 * The kind a column reads its field as, when the conversion is one this
 * reader makes exactly as `messageReader` does (same value for the same
 * bytes); null otherwise.
 */
function kindFor(pf: protobuf.Field, column: Field): Kind | null {
  if (pf.repeated || pf.map) return null;
  const t = column.type;
  const resolved = pf.resolvedType as unknown;
  if (resolved) {
    // An enum: its name in a TEXT column, its number in an integer column.
    if (!(resolved as { valuesById?: unknown }).valuesById) return null;
    return t.kind === "string" ? Kind.EnumName : t.kind === "int" ? Kind.EnumNumber : null;
  }
  const kind = SCALAR[pf.type];
  if (kind === undefined) return null;
  switch (t.kind) {
    case "boolean":
      return pf.type === "bool" ? kind : null;
    case "int":
      return INT32S.has(pf.type) || (INT64S.has(pf.type) && t.bits === 64) ? kind : null;
    case "float":
    case "decimal":
      return pf.type === "double" || pf.type === "float" || INT32S.has(pf.type) || INT64S.has(pf.type) ? kind : null;
    case "string":
      return pf.type === "string" ? kind : null;
    case "interval":
      return INT32S.has(pf.type) || INT64S.has(pf.type) ? kind : null;
    default:
      return null;
  }
}

/** Thrown inside the reader for anything it leaves to protobufjs; never escapes. */
const FALLBACK = new Error("wire-reader fallback");

const utf8Slice = (Buffer.prototype as unknown as { utf8Slice?: (this: Uint8Array, start: number, end: number) => string }).utf8Slice;
const utf8 = new TextDecoder();
// Floats are read through these views of one scratch buffer (little-endian, as the wire format and protobufjs on such hosts).
const scratch = new Uint8Array(8);
const f32 = new Float32Array(scratch.buffer, 0, 1);
const f64 = new Float64Array(scratch.buffer);
const littleEndian = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

// The message being read: module state rather than closures, so that reading a record allocates nothing
// but its row and strings (one record is read at a time: reading is synchronous).
const EMPTY = new Uint8Array(0);
let buf: Uint8Array = EMPTY;
let o = 0;
let limit = 0;
let lo = 0;
let hi = 0;

function varint32(): number {
  let b = buf[o++]!;
  let v = b & 127;
  if (b < 128) return v;
  b = buf[o++]!;
  v |= (b & 127) << 7;
  if (b < 128) return v;
  b = buf[o++]!;
  v |= (b & 127) << 14;
  if (b < 128) return v;
  b = buf[o++]!;
  v |= (b & 127) << 21;
  if (b < 128) return v;
  b = buf[o++]!;
  v |= (b & 15) << 28;
  if (b < 128) return v >>> 0;
  // Bits beyond 32 (a negative int32 is written with 10 bytes): skipped, as protobufjs does.
  for (let i = 0; i < 5; i++) if (buf[o++]! < 128) return v >>> 0;
  throw FALLBACK;
}

function varint64(): void {
  lo = 0;
  hi = 0;
  let i = 0;
  let b: number;
  for (; i < 4; i++) {
    b = buf[o++]!;
    lo = (lo | ((b & 127) << (i * 7))) >>> 0;
    if (b < 128) return;
  }
  b = buf[o++]!;
  lo = (lo | ((b & 127) << 28)) >>> 0;
  hi = (hi | ((b & 127) >> 4)) >>> 0;
  if (b < 128) return;
  for (i = 0; i < 5; i++) {
    b = buf[o++]!;
    hi = (hi | ((b & 127) << (i * 7 + 3))) >>> 0;
    if (b < 128) return;
  }
  throw FALLBACK;
}

/** protobufjs's LongBits.toNumber: one rounding of lo + hi·2³², negated through two's complement when signed. */
function toNumber(signed: boolean): number {
  if (signed && hi >>> 31) {
    const l = (~lo + 1) >>> 0;
    let h = ~hi >>> 0;
    if (!l) h = (h + 1) >>> 0;
    return -(l + h * 4294967296);
  }
  return lo + hi * 4294967296;
}

function fixed32(): number {
  if (o + 4 > limit) throw FALLBACK;
  const v = (buf[o]! | (buf[o + 1]! << 8) | (buf[o + 2]! << 16) | (buf[o + 3]! << 24)) >>> 0;
  o += 4;
  return v;
}

/**
 * A reader of `type` into rows of `fields`, or null when some column needs
 * the protobufjs path. `slow` is that path (bytes, start, end) → row, used for
 * the defaults and for every record this reader cannot read itself.
 */
export function compileWireReader(type: protobuf.Type, fields: Field[], slow: (bytes: Uint8Array, start: number, end: number) => Row): ((bytes: Uint8Array, start: number, end: number) => Row) | null {
  // Required fields (proto2) are checked by protobufjs's decoder.
  if (!littleEndian || type.fieldsArray.some((f) => f.required)) return null;
  const byNumber: (Slot | undefined)[] = [];
  for (let column = 0; column < fields.length; column++) {
    const f = fields[column]!;
    const pf = type.fields[f.name] ?? type.fieldsArray.find((x) => x.name.toLowerCase() === f.name.toLowerCase());
    // A column without a field reads NULL (the defaults give it); a NOT NULL one is refused by messageReader first.
    if (!pf) continue;
    const kind = kindFor(pf, f);
    if (kind === null) return null;
    // A field with presence (oneof member, proto3 `optional`) in a NOT NULL column must fail when absent: protobufjs's path says so.
    if (pf.partOf && !f.nullable) return null;
    if (byNumber[pf.id] !== undefined) return null;
    const names = kind === Kind.EnumName ? ((pf.resolvedType as protobuf.Enum).valuesById as Record<number, string>) : null;
    byNumber[pf.id] = { column, kind, wire: WIRE[kind], names };
  }
  if (byNumber.length > 1 << 16) return null;
  // Every column's value when its field is absent: proto3 defaults, proto2 declared defaults, NULL with presence.
  const defaults = slow(new Uint8Array(0), 0, 0);
  if (defaults.some((v) => v !== null && typeof v === "object")) return null;

  return (bytes, start, end) => {
    const row = defaults.slice();
    buf = bytes;
    o = start;
    limit = end;
    try {
      while (o < end) {
        const tag = varint32();
        const slot = byNumber[tag >>> 3];
        const wire = tag & 7;
        if (slot === undefined || slot.wire !== wire) {
          // An unknown field is skipped; a known one with another wire type goes to protobufjs (it reads by the declared type).
          if (slot !== undefined || tag >>> 3 === 0) throw FALLBACK;
          switch (wire) {
            case 0:
              varint64();
              break;
            case 1:
              o += 8;
              break;
            case 2: {
              const len = varint32();
              o += len;
              break;
            }
            case 5:
              o += 4;
              break;
            default:
              throw FALLBACK; // groups
          }
          if (o > end) throw FALLBACK;
          continue;
        }
        let v: unknown;
        switch (slot.kind) {
          case Kind.Int32:
          case Kind.EnumNumber:
            v = varint32() | 0;
            break;
          case Kind.EnumName: {
            const n = varint32() | 0;
            v = slot.names![n] ?? String(n);
            break;
          }
          case Kind.Uint32:
            v = varint32() >>> 0;
            break;
          case Kind.Sint32: {
            const u = varint32();
            v = ((u >>> 1) ^ -(u & 1)) | 0;
            break;
          }
          case Kind.Fixed32:
            v = fixed32();
            break;
          case Kind.Sfixed32:
            v = fixed32() | 0;
            break;
          case Kind.Int64:
            varint64();
            v = toNumber(true);
            break;
          case Kind.Uint64:
            varint64();
            v = toNumber(false);
            break;
          case Kind.Sint64: {
            varint64();
            const mask = -(lo & 1);
            lo = (((lo >>> 1) | (hi << 31)) ^ mask) >>> 0;
            hi = ((hi >>> 1) ^ mask) >>> 0;
            v = toNumber(true);
            break;
          }
          case Kind.Fixed64:
          case Kind.Sfixed64:
            lo = fixed32();
            hi = fixed32();
            v = toNumber(slot.kind === Kind.Sfixed64);
            break;
          case Kind.Bool:
            v = varint32() !== 0;
            break;
          case Kind.Float:
            if (o + 4 > end) throw FALLBACK;
            for (let i = 0; i < 4; i++) scratch[i] = buf[o++]!;
            v = f32[0];
            break;
          case Kind.Double:
            if (o + 8 > end) throw FALLBACK;
            for (let i = 0; i < 8; i++) scratch[i] = buf[o++]!;
            v = f64[0];
            break;
          case Kind.String: {
            const len = varint32();
            const to = o + len;
            if (to > end) throw FALLBACK;
            v = len === 0 ? "" : utf8Slice ? utf8Slice.call(buf, o, to) : utf8.decode(buf.subarray(o, to));
            o = to;
            break;
          }
        }
        if (o > end) throw FALLBACK;
        row[slot.column] = v;
      }
      if (o !== end) throw FALLBACK;
    } catch (err) {
      buf = EMPTY;
      if (err !== FALLBACK) throw err;
      return slow(bytes, start, end);
    }
    buf = EMPTY; // not kept alive (a whole fetch response) until the next record
    return row;
  };
}
