/**
 * Value helpers shared by casts, operators and functions. Where SQL engines
 * disagree, these follow DataFusion (the engine under Arroyo): text forms of
 * numbers and timestamps, what CAST accepts, string order by code point.
 */
import { typeName, type SqlType } from "../plugin-api/index.ts";

/** An expression failed on a value at run time (a cast that cannot convert, a function's domain). */
export class ExprError extends Error {
  override name = "ExprError";
}

/** A CAST that cannot convert its value. */
export class CastError extends ExprError {}

/** The type of a bare NULL (no CAST): it fits anywhere and gives way to other types when types meet. */
export const NULL_TYPE: SqlType = { kind: "string" };

/** Integers are JavaScript numbers: exact only up to 2^53 − 1 in magnitude. */
export const MAX_EXACT_INT = Number.MAX_SAFE_INTEGER;

// ---------------------------------------------------------------- timestamps

const pad2 = (n: number) => (n < 10 ? "0" : "") + n;

/** Splits µs since the epoch into a UTC calendar date-time and the µs within the second. */
export function civil(micros: number): { date: Date; micros: number } {
  const seconds = Math.floor(micros / 1e6);
  return { date: new Date(seconds * 1000), micros: micros - seconds * 1e6 };
}

function yearText(y: number): string {
  if (y >= 0 && y <= 9999) return String(y).padStart(4, "0");
  return (y < 0 ? "-" : "+") + String(Math.abs(y)).padStart(4, "0");
}

/** `YYYY-MM-DD?HH:MM:SS` of a µs timestamp with `sep` between date and time. */
function dateTimeText(micros: number, sep: string): { text: string; micros: number } {
  const { date: d, micros: sub } = civil(micros);
  const text =
    `${yearText(d.getUTCFullYear())}-${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}` +
    `${sep}${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`;
  return { text, micros: sub };
}

/** Fractional seconds as chrono's `%.f` writes them: nothing, or 3 or 6 digits (µs precision). */
export function fractionText(micros: number): string {
  if (micros === 0) return "";
  if (micros % 1000 === 0) return "." + String(micros / 1000).padStart(3, "0");
  return "." + String(micros).padStart(6, "0");
}

/** RFC 3339 text of a µs timestamp: `2024-01-01T00:00:00Z`, fractions only when present (the JSON format's form). */
export function formatTimestamp(micros: number): string {
  const { text, micros: sub } = dateTimeText(micros, "T");
  return text + fractionText(sub) + "Z";
}

/** CAST(ts AS TEXT): `2024-01-01T00:00:00.250`, as DataFusion prints a TIMESTAMP (which carries no zone). */
export function timestampText(micros: number): string {
  const { text, micros: sub } = dateTimeText(micros, "T");
  return text + fractionText(sub);
}

const ISO = /^(\d{4})-(\d{1,2})-(\d{1,2})(?:[Tt ](\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;

/** Parses RFC 3339 / ISO 8601 text to µs since the epoch (UTC unless an offset is given); null if unreadable. */
export function parseTimestamp(text: string): number | null {
  const m = ISO.exec(text.trim());
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h ?? 0);
  const minute = Number(mi ?? 0);
  const second = Number(s ?? 0);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(Number(y), month) || hour > 23 || minute > 59 || second > 59) return null;
  const date = new Date(0);
  date.setUTCFullYear(Number(y), month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  let ms = date.getTime();
  if (zone && zone !== "Z" && zone !== "z") {
    const sign = zone[0] === "-" ? -1 : 1;
    const digits = zone.slice(1).replace(":", "");
    const offsetMin = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || 0);
    ms -= sign * offsetMin * 60_000;
  }
  const fracMicros = frac ? Math.floor(Number((frac + "000000").slice(0, 6))) : 0;
  return ms * 1000 + fracMicros;
}

export function daysInMonth(year: number, month: number): number {
  return [31, isLeap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
}

export function isLeap(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

// ---------------------------------------------------------------- numbers as text

/**
 * A DOUBLE as text, the way DataFusion casts it (Rust's ryu): the shortest digits
 * that read back to the same number, always with a decimal point or exponent —
 * `1.0`, `0.1`, `1e20`, `1.5e-7`, `NaN`, `inf`.
 */
export function floatText(x: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const [mant, exp] = Math.abs(x).toExponential().split("e") as [string, string];
  const digits = mant.replace(".", "");
  const length = digits.length;
  const kk = Number(exp) + 1; // the decimal point sits after kk digits
  const k = kk - length;
  let out: string;
  if (k >= 0 && kk <= 16) out = digits + "0".repeat(k) + ".0";
  else if (kk > 0 && kk <= 16) out = digits.slice(0, kk) + "." + digits.slice(kk);
  else if (kk > -5 && kk <= 0) out = "0." + "0".repeat(-kk) + digits;
  else if (length === 1) out = digits + "e" + (kk - 1);
  else out = digits[0] + "." + digits.slice(1) + "e" + (kk - 1);
  return (x < 0 ? "-" : "") + out;
}

/** A DECIMAL(p, s) as text: exactly `s` digits after the point. */
function decimalText(x: number, scale: number): string {
  if (!Number.isFinite(x)) return String(x);
  return scale > 0 ? x.toFixed(Math.min(scale, 100)) : String(Math.round(x));
}

/** Text form of a value, as CAST(x AS TEXT) gives it. `type` picks the form of numbers and timestamps. */
export function toText(v: unknown, type?: SqlType): string {
  if (typeof v === "string") return v;
  if (typeof v === "number" && type) {
    switch (type.kind) {
      case "timestamp":
        return timestampText(v);
      case "float":
        return floatText(v);
      case "decimal":
        return decimalText(v, type.scale);
    }
  }
  if (v instanceof Uint8Array) return utf8Text(v);
  if (typeof v === "object" && v !== null) return JSON.stringify(v);
  return String(v);
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

function utf8Text(bytes: Uint8Array): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new CastError("cannot cast BYTEA to TEXT: the bytes are not valid UTF-8; use encode(x, 'hex') or encode(x, 'base64')");
  }
}

// ---------------------------------------------------------------- ordering

const ASTRAL_OR_HIGH = /[\uD800-\uFFFF]/;

/**
 * Compares text by code point, which is the order of UTF-8 bytes DataFusion
 * compares. JavaScript's `<` compares UTF-16 units, which disagrees only when
 * both strings hold characters from U+E000 up: surrogates (U+10000 and above)
 * then sort below U+E000–U+FFFF.
 */
export function compareText(a: string, b: string): number {
  if (a === b) return 0;
  if (!ASTRAL_OR_HIGH.test(a) || !ASTRAL_OR_HIGH.test(b)) return a < b ? -1 : 1;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codeOrder(x) - codeOrder(y);
  }
  return a.length - b.length;
}

/** Maps a UTF-16 unit so that unit order is code point order. */
function codeOrder(u: number): number {
  if (u < 0xd800) return u;
  return u >= 0xe000 ? u - 0x800 : u + 0x2000;
}

/**
 * Compares numbers as DataFusion's kernels do for floats (IEEE total order for
 * NaN): NaN equals NaN and sorts above every number, +∞ included.
 */
export function compareNumber(a: number, b: number): number {
  if (a < b) return -1;
  if (a > b) return 1;
  if (a === b) return 0;
  const an = a !== a;
  const bn = b !== b;
  return an && bn ? 0 : an ? 1 : -1;
}

// ---------------------------------------------------------------- casts

const INT_TEXT = /^[+-]?\d+$/;
const FLOAT_TEXT = /^[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)$/;
const SPECIAL_FLOATS: Record<string, number> = { nan: NaN, inf: Infinity, infinity: Infinity };
const TRUE_TEXT = new Set(["t", "tr", "tru", "true", "y", "ye", "yes", "on", "1"]);
const FALSE_TEXT = new Set(["f", "fa", "fal", "fals", "false", "n", "no", "of", "off", "0"]);

/** Reads text as a DOUBLE: decimal or exponent notation, `NaN`, `inf`, `infinity`; no other forms (no hex, no empty text). */
export function parseFloatText(text: string): number | null {
  const s = text.trim();
  if (FLOAT_TEXT.test(s)) return Number(s);
  const sign = s.startsWith("-") ? -1 : 1;
  const special = SPECIAL_FLOATS[s.replace(/^[+-]/, "").toLowerCase()];
  return special === undefined ? null : sign * special;
}

function intRange(type: Extract<SqlType, { kind: "int" }>): [number, number] {
  if (type.bits === 32) return type.unsigned ? [0, 4294967295] : [-2147483648, 2147483647];
  return type.unsigned ? [0, MAX_EXACT_INT] : [-MAX_EXACT_INT, MAX_EXACT_INT];
}

/** Checks an integer result against its type: a value Runnel cannot hold exactly is an error, never a rounded number. */
export function checkInt(n: number, type: SqlType, what: () => string): number {
  if (type.kind !== "int") return n;
  const [lo, hi] = intRange(type);
  if (n >= lo && n <= hi) return n;
  const limit = type.bits === 32 ? `the ${typeName(type)} range ${lo} to ${hi}` : type.unsigned && n < 0 ? `${typeName(type)} (no negative values)` : `±${MAX_EXACT_INT} (2^53 − 1), the largest integer Runnel holds exactly`;
  throw new ExprError(`integer overflow: ${what()} = ${n} is outside ${limit}; cast an operand to DOUBLE to compute approximately`);
}

/** CAST between engine types; throws CastError with a readable message when a value cannot convert. */
export function castValue(v: unknown, from: SqlType, to: SqlType): unknown {
  if (v === null || v === undefined) return null;
  switch (to.kind) {
    case "string":
      return toText(v, from);
    case "json":
      return typeof v === "string" ? v : JSON.stringify(v);
    case "boolean": {
      if (typeof v === "boolean") return v;
      if (typeof v === "number") return v !== 0;
      const s = String(v).trim().toLowerCase();
      if (TRUE_TEXT.has(s)) return true;
      if (FALSE_TEXT.has(s)) return false;
      throw new CastError(`cannot cast '${v}' to BOOLEAN; write true or false`);
    }
    case "int": {
      let n: number;
      if (typeof v === "number") n = Math.trunc(v) + 0; // + 0: an integer is never -0
      else if (typeof v === "boolean") n = Number(v);
      else {
        const s = String(v).trim();
        if (!INT_TEXT.test(s)) throw new CastError(`cannot cast '${v}' to ${typeName(to)}: not a whole number`);
        n = Number(s);
      }
      if (!Number.isFinite(n)) throw new CastError(`cannot cast ${v} to ${typeName(to)}`);
      // Out of range is an error, as in DataFusion's CAST (TRY_CAST would give NULL), never a wrapped or rounded value.
      const [lo, hi] = intRange(to);
      if (n < lo || n > hi) {
        const exact = to.bits === 64 && Math.abs(n) > MAX_EXACT_INT ? ` (Runnel holds integers exactly up to ±${MAX_EXACT_INT})` : "";
        throw new CastError(`${String(v)} is out of range for ${typeName(to)}${exact}`);
      }
      return n;
    }
    case "float":
    case "decimal": {
      let n: number | null;
      if (typeof v === "number") n = v;
      else if (typeof v === "boolean") n = Number(v);
      else n = parseFloatText(String(v));
      if (n === null) throw new CastError(`cannot cast '${v}' to ${typeName(to)}: not a number`);
      if (to.kind === "float") return to.bits === 32 ? Math.fround(n) : n;
      const f = 10 ** to.scale;
      const rounded = (Math.sign(n) * Math.round(Math.abs(n) * f)) / f;
      if (Math.abs(rounded) >= 10 ** (to.precision - to.scale)) {
        throw new CastError(`cannot cast ${n} to ${typeName(to)}: it needs more than ${to.precision - to.scale} digits before the point`);
      }
      return rounded;
    }
    case "timestamp": {
      if (typeof v === "number" && from.kind === "timestamp") return v;
      const t = parseTimestamp(String(v));
      if (t === null) throw new CastError(`cannot cast '${v}' to TIMESTAMP; write it like 2024-01-01T00:00:00Z`);
      return t;
    }
    case "interval":
      if (typeof v === "number" && from.kind === "interval") return v;
      throw new CastError(`cannot cast '${v}' to INTERVAL`);
    case "bytes":
      if (v instanceof Uint8Array) return v;
      return new TextEncoder().encode(toText(v, from));
    case "array":
    case "struct":
    case "map":
      if (from.kind === to.kind) return v;
      throw new CastError(`cannot cast a ${from.kind} to ${to.kind}`);
  }
}

/**
 * Why CAST from `from` to `to` is refused before running, or null when it is
 * allowed. These are the casts whose DataFusion meaning Runnel cannot honour
 * or that would silently mean something else.
 */
export function refusedCast(from: SqlType, to: SqlType): string | null {
  if (to.kind === "timestamp" && (from.kind === "int" || from.kind === "float" || from.kind === "decimal")) {
    return `CAST(${typeName(from)} AS TIMESTAMP) does not say the unit; write to_timestamp(x) for seconds, or to_timestamp_millis, to_timestamp_micros, to_timestamp_nanos`;
  }
  if (from.kind === "timestamp" && (to.kind === "float" || to.kind === "decimal")) {
    return `CAST(TIMESTAMP AS ${typeName(to)}) is not supported; write to_unixtime(ts) for seconds, or CAST(ts AS BIGINT) for microseconds`;
  }
  if (from.kind === "interval" && to.kind !== "interval") {
    return `CAST(INTERVAL AS ${typeName(to)}) is not supported; write date_part('epoch', x) for the interval in seconds`;
  }
  if (to.kind === "interval" && from.kind !== "interval" && from.kind !== "string") {
    return `CAST(${typeName(from)} AS INTERVAL) is not supported; multiply an interval: x * INTERVAL '1' SECOND`;
  }
  if ((from.kind === "array" || from.kind === "struct" || from.kind === "map") && from.kind !== to.kind) {
    return `CAST(${typeName(from)} AS ${typeName(to)}) is not supported; select the value itself (sinks write arrays, structs and maps as JSON)`;
  }
  if ((to.kind === "array" || to.kind === "struct" || to.kind === "map") && from.kind !== to.kind) {
    return `CAST to ${typeName(to)} is not supported`;
  }
  if (from.kind === "boolean" && to.kind === "timestamp") return "CAST(BOOLEAN AS TIMESTAMP) is not supported";
  if (from.kind === "timestamp" && to.kind === "boolean") return "CAST(TIMESTAMP AS BOOLEAN) is not supported";
  if (from.kind === "bytes" && to.kind !== "bytes" && to.kind !== "string") return `CAST(BYTEA AS ${typeName(to)}) is not supported`;
  return null;
}
