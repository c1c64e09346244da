/**
 * Rows as RFC 4180 CSV lines (without the line end, which the sink adds).
 *
 * A field is quoted when it holds the delimiter, the quote, the escape, CR or
 * LF, and a quote inside is doubled (or preceded by `escape` when that is
 * another character). NULL is an empty unquoted field and the empty string a
 * quoted one (""), which is how this format's reader and DuckDB tell them
 * apart. Values are printed as the json format prints them, so the reader
 * reads back what was written: numbers as JavaScript prints them (shortest
 * text that reads back to the same double; NaN, Infinity), timestamps as
 * RFC 3339 UTC text, intervals as microseconds, JSON as its text.
 */
import { typeName, type ByteSink, type Field, type Row, type SqlType } from "../../core/plugin-api/index.ts";
import { formatTimestamp } from "../shared/time.ts";

export interface CsvWriteOptions {
  delimiter: string;
  quote: string;
  escape: string;
}

/** Every character the unquoted text of a value of this kind can hold; a delimiter among them forces the quoting check. */
const RENDERED_CHARS: Partial<Record<SqlType["kind"], string>> = {
  boolean: "truefals",
  int: "0123456789-+e",
  float: "0123456789.-+eInfinityNaN",
  decimal: "0123456789.-+eInfinityNaN",
  interval: "0123456789-+e",
  timestamp: "0123456789-+T:.Z",
};

/** Why a column cannot be written as CSV exactly, and what to write instead; null when it can. */
export function csvUnwritable(f: Field): string | null {
  switch (f.type.kind) {
    case "bytes":
      return `column '${f.name}' is BYTEA, which CSV has no text for; write encode(${f.name}, 'base64') or encode(${f.name}, 'hex') as TEXT, or use format 'parquet'`;
    case "array":
    case "struct":
    case "map":
      return `column '${f.name}' is ${typeName(f.type)}; CSV fields are flat values: select its elements or fields as columns of their own, or write the table with format 'json' or 'parquet'`;
    default:
      return null;
  }
}

/** Matches a character that makes a field quoted: the delimiter, the quote, the escape, CR or LF. */
function specialCharacters(o: CsvWriteOptions): RegExp {
  return new RegExp(`[${[o.delimiter, o.quote, o.escape, "\r", "\n"].map(regexClassChar).join("")}]`);
}

/** The text of one field: quoted when it must be, NULL as nothing. */
export function compileFieldQuoter(o: CsvWriteOptions): (text: string) => string {
  const { quote, escape } = o;
  const special = specialCharacters(o);
  const inner = new RegExp(escape === quote ? regexClassChar(quote) : `[${regexClassChar(quote)}${regexClassChar(escape)}]`, "g");
  const doubled = escape === quote ? quote + quote : null;
  return (text) => {
    if (text === "") return quote + quote;
    if (!special.test(text)) return text;
    const body = doubled !== null ? text.replace(inner, doubled) : text.replace(inner, (c) => escape + c);
    return quote + body + quote;
  };
}

function regexClassChar(c: string): string {
  return /[\\\]^\-[]/.test(c) ? `\\${c}` : c;
}

/**
 * Compiles the serialization of a row of `fields` into one CSV line: generated
 * code with one monomorphic expression per column, joined by the delimiter.
 * Array.join prints NULL (null, undefined) as nothing and numbers as String()
 * does, and gives a flat string, where concatenation made a rope that the
 * sink's join of many lines had to flatten again (14% of q10). Text is quoted
 * only when it holds a special character (tested inline); numbers and the like
 * only when a special character is one their text can hold.
 */
export function compileCsvLineEncoder(fields: Field[], o: CsvWriteOptions): (row: Row) => string {
  for (const f of fields) {
    const why = csvUnwritable(f);
    if (why) throw new Error(`format 'csv': ${why}`);
  }
  const quoteField = compileFieldQuoter(o);
  const specials = [o.delimiter, o.quote, o.escape];
  const special = specialCharacters(o);
  const items = fields.map((f, i) => {
    const v = `row[${i}]`;
    const rendered = RENDERED_CHARS[f.type.kind];
    const safe = rendered !== undefined && !specials.some((c) => rendered.includes(c));
    switch (f.type.kind) {
      case "string":
      case "json":
        return `(v = ${v}) == null ? null : v === "" || special.test(v) ? q(v) : v`;
      case "timestamp":
        return `(v = ${v}) == null ? null : ${safe ? "ts(v)" : "q(ts(v))"}`;
      default:
        return safe ? v : `(v = ${v}) == null ? null : q("" + v)`;
    }
  });
  const body = `return function encodeCsvLine(row) {\n  let v;\n  return [\n    ${items.join(",\n    ")}\n  ].join(${JSON.stringify(o.delimiter)});\n};`;
  return new Function("q", "ts", "special", body)(quoteField, formatTimestamp, special) as (row: Row) => string;
}

/** The header line: the column names, quoted where they must be. */
export function csvHeaderLine(fields: Field[], o: CsvWriteOptions): string {
  const quoteField = compileFieldQuoter(o);
  return fields.map((f) => quoteField(f.name)).join(o.delimiter);
}

/** Characters the text of numbers, booleans and timestamps can hold: a special character among them leaves the byte encoder out. */
const VALUE_CHARS = new Set(Object.values(RENDERED_CHARS).join(""));
const utf8 = new TextEncoder();
const nativeUtf8Write = (Buffer.prototype as unknown as { utf8Write?: (this: Uint8Array, text: string, at: number) => number }).utf8Write;

/** Writes `text` as UTF-8 at `at` (room reserved) and returns the bytes written: Bun's native write, 3x a TextEncoder into a view. */
const writeUtf8: (b: Uint8Array, text: string, at: number) => number = nativeUtf8Write
  ? (b, text, at) => nativeUtf8Write.call(b, text, at)
  : (b, text, at) => utf8.encodeInto(text, b.subarray(at)).written;
const ASCII_TRUE = [116, 114, 117, 101];
const ASCII_FALSE = [102, 97, 108, 115, 101];
/** Room for a value of a non-text column: the longest number text (-1.7976931348623157e+308) or timestamp (+275760-09-13T00:00:00.000000Z). */
const VALUE_ROOM = 32;

/** A number as String() prints it: 32-bit integers digit by digit (integer arithmetic), others through String(). */
function writeNumber(b: Uint8Array, p: number, v: unknown): number {
  if (v === null || v === undefined) return p;
  if (typeof v !== "number" || (v | 0) !== v) return p + writeUtf8(b, String(v), p);
  let n = v;
  if (n < 0) {
    if (n === -2147483648) return p + writeUtf8(b, "-2147483648", p);
    b[p++] = 45;
    n = -n;
  }
  return writeDigits(b, p, n, digitCount(n));
}

function digitCount(n: number): number {
  return n < 10 ? 1 : n < 100 ? 2 : n < 1000 ? 3 : n < 10000 ? 4 : n < 100000 ? 5 : n < 1000000 ? 6 : n < 10000000 ? 7 : n < 100000000 ? 8 : n < 1000000000 ? 9 : 10;
}

/** The `width` lowest decimal digits of a non-negative 32-bit integer, zero-padded. */
function writeDigits(b: Uint8Array, p: number, n: number, width: number): number {
  const end = p + width;
  for (let at = end - 1; at >= p; at--) {
    const q = (n / 10) | 0;
    b[at] = 48 + n - q * 10;
    n = q;
  }
  return end;
}

function writeBoolean(b: Uint8Array, p: number, v: unknown): number {
  if (v === null || v === undefined) return p;
  const codes = v ? ASCII_TRUE : ASCII_FALSE;
  for (let i = 0; i < codes.length; i++) b[p++] = codes[i]!;
  return p;
}

/** Writes timestamps as formatTimestamp prints them, the text up to the second kept as bytes while rows stay in it. */
function timestampWriter(): (b: Uint8Array, p: number, v: unknown) => number {
  let second = Number.NaN;
  let prefix = "";
  return (b, p, v) => {
    if (v === null || v === undefined) return p;
    let us = v as number;
    if (!Number.isInteger(us)) us = Math.round(us);
    const s = Math.floor(us / 1e6);
    if (s !== second) {
      prefix = formatTimestamp(s * 1e6).slice(0, -1); // without the Z: no fraction on a whole second
      second = s;
    }
    p += writeUtf8(b, prefix, p);
    const micros = (us - s * 1e6) | 0;
    if (micros !== 0) {
      b[p++] = 46;
      const millis = (micros / 1000) | 0;
      p = millis * 1000 === micros ? writeDigits(b, p, millis, 3) : writeDigits(b, p, micros, 6);
    }
    b[p++] = 90;
    return p;
  };
}

/**
 * Compiles `encodeInto` for a row of `fields`: the bytes of `compileCsvLineEncoder`'s
 * line written straight into the sink's buffer (digits, cached timestamp text,
 * text natively encoded after a regex test for special characters). null when
 * a special character is not ASCII or is one that values print: then the
 * string encoder serves.
 */
export function compileCsvBytesEncoder(fields: Field[], o: CsvWriteOptions): ((row: Row, out: ByteSink) => void) | null {
  const specials = [o.delimiter, o.quote, o.escape];
  if (specials.some((c) => c.charCodeAt(0) >= 0x80 || VALUE_CHARS.has(c))) return null;
  const special = specialCharacters(o);
  const specialCode = new Uint8Array(128);
  for (const c of [...specials, "\r", "\n"]) specialCode[c.charCodeAt(0)] = 1;
  const quoteField = compileFieldQuoter(o);
  const quote = o.quote.charCodeAt(0);
  const writeText = (b: Uint8Array, p: number, v: unknown): number => {
    if (v === null || v === undefined) return p;
    const s = v as string;
    const n = s.length;
    if (n === 0) {
      b[p++] = quote;
      b[p++] = quote;
      return p;
    }
    // Short ASCII text is copied here (a native call costs more than the loop); anything else is tested and encoded natively.
    if (n <= 24) {
      const start = p;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80 || specialCode[c] === 1) break;
        b[p++] = c;
      }
      if (i === n) return p;
      p = start;
    }
    return p + writeUtf8(b, special.test(s) ? quoteField(s) : s, p);
  };
  const writers: Record<string, unknown> = { num: writeNumber, bool: writeBoolean, ts: timestampWriter(), text: writeText };
  let fixed = fields.length;
  const sizes: string[] = [];
  const steps = fields.map((f, i) => {
    const sep = i > 0 ? `b[p++] = ${o.delimiter.charCodeAt(0)};\n  ` : "";
    switch (f.type.kind) {
      case "string":
      case "json":
        // UTF-8 takes at most 3 bytes a UTF-16 unit, quoting doubles a quote: 6 a unit, and the two quotes.
        sizes.push(`v = row[${i}]; if (typeof v === "string") need += v.length * 6 + 2;`);
        return `${sep}p = text(b, p, row[${i}]);`;
      case "timestamp":
        fixed += VALUE_ROOM;
        return `${sep}p = ts(b, p, row[${i}]);`;
      case "boolean":
        fixed += VALUE_ROOM;
        return `${sep}p = bool(b, p, row[${i}]);`;
      default:
        fixed += VALUE_ROOM;
        return `${sep}p = num(b, p, row[${i}]);`;
    }
  });
  const body = `return function encodeCsvLineInto(row, out) {
  let need = ${fixed};
  let v;
  ${sizes.join("\n  ")}
  const b = out.reserve(need);
  let p = out.length;
  ${steps.join("\n  ")}
  out.length = p;
};`;
  return new Function(...Object.keys(writers), body)(...Object.values(writers)) as (row: Row, out: ByteSink) => void;
}
