/**
 * Reads a flat JSON object's bytes straight into the columns' raw values: no
 * text of the whole record, no parsed object, only the values of the table's
 * columns made (strings sliced from the bytes, integers read from the digits).
 * It accepts a strict subset of JSON that it reads exactly as JSON.parse does:
 * an object whose keys have no escapes and whose values are strings without
 * escapes, numbers, true, false or null. Anything else (nested values, escapes,
 * a BOM, invalid JSON) goes to the JSON.parse path, so both give the same row
 * or the same error.
 */
import type { Row } from "../../core/plugin-api/index.ts";

/** Thrown inside the scanner for what it leaves to JSON.parse; never escapes. */
const FALLBACK = new Error("json scanner fallback");

interface Slices {
  latin1Slice(this: Uint8Array, start: number, end: number): string;
  utf8Slice(this: Uint8Array, start: number, end: number): string;
}
const slices = Buffer.prototype as unknown as Partial<Slices>;

const isSpace = (b: number) => b === 32 || b === 10 || b === 13 || b === 9;

/** Reads a column's final value from a string's ASCII bytes, or undefined to have the text made and converted as usual. */
export type BytesReader = (buf: Uint8Array, from: number, to: number) => number | undefined;

/**
 * A reader of JSON object records into rows, or null where this runtime lacks
 * Buffer's slicing methods. `names` are the columns' names in order;
 * `toRow` converts their raw values (undefined: absent) into a row, taking a
 * column's value from `read` where a `readers` entry gave one; `slow` reads a
 * record through JSON.parse.
 */
export function compileJsonScanner(
  names: string[],
  toRow: (values: unknown[], read: unknown[]) => Row,
  slow: (buf: Uint8Array, start: number, end: number) => Row,
  readers: (BytesReader | null)[] = [],
): ((buf: Uint8Array, start: number, end: number) => Row) | null {
  const latin1 = slices.latin1Slice;
  const utf8 = slices.utf8Slice;
  if (!latin1 || !utf8) return null;
  const keys = names.map((n) => Buffer.from(n, "utf8"));
  const n = names.length;

  /** The column whose name is buf[from, to), or -1; `hint` (the column after the last one found) is tried first. */
  const column = (buf: Uint8Array, from: number, to: number, hint: number): number => {
    const len = to - from;
    for (let k = 0; k < n; k++) {
      const c = hint + k < n ? hint + k : hint + k - n;
      const key = keys[c]!;
      if (key.length !== len) continue;
      let i = 0;
      while (i < len && key[i] === buf[from + i]) i++;
      if (i === len) return c;
    }
    return -1;
  };

  // Reused for every record: toRow makes the row and keeps neither (a scan never runs inside another).
  const values: unknown[] = new Array(n);
  const read: unknown[] = new Array(n);
  return (buf, start, end) => {
    for (let k = 0; k < n; k++) values[k] = read[k] = undefined;
    let o = start;
    try {
      while (o < end && isSpace(buf[o]!)) o++;
      if (buf[o] !== 123) throw FALLBACK; // {
      o++;
      while (o < end && isSpace(buf[o]!)) o++;
      if (buf[o] === 125) o++; // } of an empty object
      else {
        let hint = 0;
        for (;;) {
          // A key: ASCII text without escapes (others compare as JSON.parse's strings do only through it).
          if (buf[o] !== 34) throw FALLBACK;
          const keyStart = ++o;
          for (;;) {
            if (o >= end) throw FALLBACK;
            const b = buf[o]!;
            if (b === 34) break;
            if (b === 92 || b < 32 || b >= 128) throw FALLBACK;
            o++;
          }
          const c = column(buf, keyStart, o, hint);
          o++;
          while (o < end && isSpace(buf[o]!)) o++;
          if (buf[o] !== 58) throw FALLBACK; // :
          o++;
          while (o < end && isSpace(buf[o]!)) o++;
          if (o >= end) throw FALLBACK;
          // A value.
          let v: unknown;
          let byBytes = false;
          const b = buf[o]!;
          if (b === 34) {
            const from = ++o;
            let ascii = true;
            for (;;) {
              if (o >= end) throw FALLBACK;
              const x = buf[o]!;
              if (x === 34) break;
              if (x === 92 || x < 32) throw FALLBACK;
              if (x >= 128) ascii = false;
              o++;
            }
            // Only a column's strings are made; a quote byte never sits inside a multi-byte character.
            if (c >= 0) {
              // A column with a bytes reader (timestamps) takes its value without its text where it can.
              const reader = ascii ? readers[c] : undefined;
              const x = reader ? reader(buf, from, o) : undefined;
              if (x !== undefined) {
                v = x;
                byBytes = true;
              } else v = from === o ? "" : ascii ? latin1.call(buf, from, o) : utf8.call(buf, from, o);
            }
            o++;
          } else if (b === 45 || (b >= 48 && b <= 57)) {
            // JSON's number grammar: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
            const from = o;
            if (b === 45) o++;
            let digits = 0;
            let whole = 0;
            if (buf[o] === 48) {
              o++;
              digits = 1;
            } else {
              while (o < end && buf[o]! >= 48 && buf[o]! <= 57) {
                whole = whole * 10 + (buf[o]! - 48);
                o++;
                digits++;
              }
            }
            if (digits === 0) throw FALLBACK;
            let plain = true;
            if (buf[o] === 46) {
              plain = false;
              o++;
              const f = o;
              while (o < end && buf[o]! >= 48 && buf[o]! <= 57) o++;
              if (o === f) throw FALLBACK;
            }
            if (buf[o] === 101 || buf[o] === 69) {
              plain = false;
              o++;
              if (buf[o] === 43 || buf[o] === 45) o++;
              const e = o;
              while (o < end && buf[o]! >= 48 && buf[o]! <= 57) o++;
              if (o === e) throw FALLBACK;
            }
            if (o > end) throw FALLBACK;
            // Up to 15 digits an integer is exact as accumulated; anything longer or with a fraction or exponent is converted as JSON.parse converts it.
            if (c >= 0) v = plain && digits <= 15 ? (b === 45 ? -whole : whole) : Number(latin1.call(buf, from, o));
          } else if (b === 116 && buf[o + 1] === 114 && buf[o + 2] === 117 && buf[o + 3] === 101) {
            v = true;
            o += 4;
          } else if (b === 102 && buf[o + 1] === 97 && buf[o + 2] === 108 && buf[o + 3] === 115 && buf[o + 4] === 101) {
            v = false;
            o += 5;
          } else if (b === 110 && buf[o + 1] === 117 && buf[o + 2] === 108 && buf[o + 3] === 108) {
            v = null;
            o += 4;
          } else throw FALLBACK; // objects, arrays, invalid JSON
          if (o > end) throw FALLBACK;
          // A repeated key: the last value wins, as in JSON.parse.
          if (c >= 0) {
            if (byBytes) {
              read[c] = v;
              values[c] = undefined;
            } else {
              values[c] = v;
              read[c] = undefined;
            }
            hint = c + 1 < n ? c + 1 : 0;
          }
          while (o < end && isSpace(buf[o]!)) o++;
          const sep = buf[o];
          if (o >= end) throw FALLBACK;
          o++;
          if (sep === 125) break; // }
          if (sep !== 44) throw FALLBACK; // ,
          while (o < end && isSpace(buf[o]!)) o++;
        }
      }
      while (o < end && isSpace(buf[o]!)) o++;
      if (o !== end) throw FALLBACK;
    } catch (err) {
      if (err !== FALLBACK) throw err;
      return slow(buf, start, end);
    }
    return toRow(values, read);
  };
}
