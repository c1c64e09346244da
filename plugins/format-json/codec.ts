/**
 * The JSON value codec shared by the `json` and `debezium_json` formats.
 * Converters are compiled once per field list (a closure per field), so a
 * record is converted without looking at types again.
 */
import { opt, parseDurationMicros, typeName, type Field, type Row, type SqlType } from "../../core/plugin-api/index.ts";
import { formatTimestamp, parseCanonicalUtcBytes, parseTimestampText } from "../shared/time.ts";

export type TimestampFormat = "rfc3339" | "unix_millis";

/** The `timestamp_format` option of both JSON formats. */
export const timestampFormatOption = opt.enum(["rfc3339", "unix_millis"] as const, {
  default: "rfc3339",
  description: "How TIMESTAMP values are written: RFC 3339 text or integer unix milliseconds (both are read)",
});

export { formatTimestamp, parseTimestampText };

type Convert = (v: unknown) => unknown;

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
const UINT32_MAX = 4294967295;

/** A short JSON rendering of a value for error messages. */
export function describeValue(v: unknown): string {
  let s: string;
  try {
    s = v === undefined ? "nothing" : (JSON.stringify(v) ?? String(v));
  } catch {
    s = String(v);
  }
  return s.length > 60 ? s.slice(0, 57) + "..." : s;
}

function mismatch(path: string, type: SqlType, v: unknown, why = ""): Error {
  return new Error(`field \`${path}\`: expected ${typeName(type)}, got ${describeValue(v)}${why}`);
}

const INTEGER_TEXT = /^\s*[+-]?\d+\s*$/;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

// ------------------------------------------------------------------ decoding

/** Compiles a converter from a parsed JSON value to the engine value of `type`; `path` names the field in errors. */
export function compileDecoder(type: SqlType, nullable: boolean, path: string, tsFormat: TimestampFormat): Convert {
  const inner = decoderFor(type, path, tsFormat);
  if (nullable) return (v) => (v === null || v === undefined ? null : inner(v));
  return (v) => {
    if (v === null || v === undefined) throw new Error(`missing field \`${path}\``);
    return inner(v);
  };
}

function decoderFor(type: SqlType, path: string, tsFormat: TimestampFormat): Convert {
  switch (type.kind) {
    case "boolean":
      return (v) => {
        if (typeof v === "boolean") return v;
        if (v === "true") return true;
        if (v === "false") return false;
        throw mismatch(path, type, v);
      };
    case "int": {
      const min = type.unsigned ? 0 : type.bits === 32 ? INT32_MIN : -Number.MAX_VALUE;
      const max = type.bits === 32 ? (type.unsigned ? UINT32_MAX : INT32_MAX) : Number.MAX_VALUE;
      return (v) => {
        let n: number;
        if (typeof v === "number") n = v;
        else if (typeof v === "string" && INTEGER_TEXT.test(v)) n = Number(v);
        else throw mismatch(path, type, v);
        if (!Number.isInteger(n)) throw mismatch(path, type, v, " (not a whole number)");
        if (n < min || n > max) throw mismatch(path, type, v, " (out of range)");
        return n;
      };
    }
    case "float":
    case "decimal":
      return (v) => {
        if (typeof v === "number") return v;
        if (typeof v === "string") {
          const s = v.trim();
          const n = Number(s);
          if (s !== "" && (!Number.isNaN(n) || s === "NaN")) return n;
        }
        throw mismatch(path, type, v);
      };
    case "string":
      return (v) => {
        if (typeof v === "string") return v;
        throw mismatch(path, type, v);
      };
    case "json":
      return (v) => (typeof v === "string" ? v : JSON.stringify(v));
    case "timestamp":
      return (v) => {
        if (typeof v === "number") {
          if (Number.isFinite(v)) return Math.round(v * 1000);
        } else if (typeof v === "string") {
          if (tsFormat === "unix_millis" && INTEGER_TEXT.test(v)) return Number(v) * 1000;
          const us = parseTimestampText(v);
          if (us !== null) return us;
          if (INTEGER_TEXT.test(v)) return Number(v) * 1000;
        }
        throw mismatch(path, type, v, tsFormat === "rfc3339" ? " (RFC 3339 text or unix milliseconds)" : " (unix milliseconds)");
      };
    case "interval":
      return (v) => {
        if (typeof v === "number" && Number.isFinite(v)) return Math.round(v);
        if (typeof v === "string") {
          try {
            return parseDurationMicros(v, 1);
          } catch {
            // fall through to the error naming the field
          }
        }
        throw mismatch(path, type, v, " (microseconds or a duration such as '10s')");
      };
    case "bytes":
      return (v) => {
        if (typeof v === "string" && BASE64.test(v)) return new Uint8Array(Buffer.from(v, "base64"));
        if (Array.isArray(v) && v.every((b) => Number.isInteger(b) && b >= 0 && b < 256)) return Uint8Array.from(v as number[]);
        throw mismatch(path, type, v, " (base64 text)");
      };
    case "array": {
      const element = compileDecoder(type.element, true, `${path}[]`, tsFormat);
      return (v) => {
        if (!Array.isArray(v)) throw mismatch(path, type, v);
        const out = new Array(v.length);
        for (let i = 0; i < v.length; i++) out[i] = element(v[i]);
        return out;
      };
    }
    case "struct": {
      const fields = type.fields;
      const names = fields.map((f) => f.name);
      const convert = fields.map((f) => compileDecoder(f.type, f.nullable, `${path}.${f.name}`, tsFormat));
      const guarded = names.map((n) => n in Object.prototype);
      return (v) => {
        if (typeof v !== "object" || v === null || Array.isArray(v)) throw mismatch(path, type, v);
        const src = v as Record<string, unknown>;
        const out: Record<string, unknown> = {};
        for (let i = 0; i < names.length; i++) {
          const name = names[i]!;
          const raw = guarded[i] && !Object.hasOwn(src, name) ? undefined : src[name];
          out[name] = convert[i]!(raw);
        }
        return out;
      };
    }
    case "map": {
      // A JSON object; its keys (always text in JSON) read as the key type, as DataFusion's JSON reader does.
      const key = compileDecoder(type.key, false, `${path} key`, tsFormat);
      const value = compileDecoder(type.value, true, `${path}{}`, tsFormat);
      return (v) => {
        if (typeof v !== "object" || v === null || Array.isArray(v)) throw mismatch(path, type, v);
        return Object.entries(v).map(([k, x]) => [key(k), value(x)]);
      };
    }
  }
}

/** A test on `v` under which the converter of `type` returns `v` unchanged (inlined into the row decoder), or null. */
function passThrough(type: SqlType): string | null {
  switch (type.kind) {
    case "boolean":
      return `typeof v === "boolean"`;
    case "int":
      if (type.unsigned) return null;
      if (type.bits === 64) return `typeof v === "number" && Number.isInteger(v)`;
      if (type.bits === 32) return `(v | 0) === v`;
      return null;
    case "float":
    case "decimal":
      return `typeof v === "number"`;
    case "string":
      return `typeof v === "string"`;
    default:
      return null;
  }
}

/**
 * Compiles the conversion of a parsed JSON object into a row of `fields`:
 * generated code with one monomorphic call site per column, the common case
 * (a value already of the column's type) inlined, and the row built as an
 * array literal. Names reach the code only as JSON string literals.
 */
export function compileRowDecoder(fields: Field[], tsFormat: TimestampFormat): (obj: Record<string, unknown>) => Row {
  return compileRowCode(fields, tsFormat, (name) => {
    const key = JSON.stringify(name);
    // Names an object inherits (constructor, toString...) count only as the record's own fields.
    return name in Object.prototype ? `Object.hasOwn(o, ${key}) ? o[${key}] : undefined` : `o[${key}]`;
  }) as (obj: Record<string, unknown>) => Row;
}

/**
 * The same conversion from the columns' raw JSON values in column order
 * (undefined: absent), as the scanner finds them; a column the scanner read
 * from bytes (`bytesReaderFor`) has its final value in `read` instead.
 */
export function compileValuesDecoder(fields: Field[], tsFormat: TimestampFormat): (values: unknown[], read: unknown[]) => Row {
  return compileRowCode(fields, tsFormat, (_, i) => `o[${i}]`, (f, i) => (bytesReaderFor(f.type) ? `r[${i}]` : null)) as (values: unknown[], read: unknown[]) => Row;
}

/** How the scanner reads a column's string value from its bytes, where it can: RFC 3339 UTC timestamps. */
export function bytesReaderFor(type: SqlType): ((buf: Uint8Array, from: number, to: number) => number | undefined) | null {
  return type.kind === "timestamp" ? parseCanonicalUtcBytes : null;
}

function compileRowCode(fields: Field[], tsFormat: TimestampFormat, read: (name: string, i: number) => string, ready?: (f: Field, i: number) => string | null): (o: any, r?: unknown[]) => Row {
  const convert = fields.map((f) => compileDecoder(f.type, f.nullable, f.name, tsFormat));
  const lines = fields.map((f, i) => {
    const fast = passThrough(f.type);
    const done = ready?.(f, i);
    const value = `${fast ? `${fast} ? v : ` : ""}c${i}(v)`;
    if (done) return `  v = ${done};\n  const x${i} = v !== undefined ? v : (v = ${read(f.name, i)}, ${value});`;
    return `  v = ${read(f.name, i)};\n  const x${i} = ${value};`;
  });
  const params = fields.map((_, i) => `c${i}`);
  const body = `return function decodeRow(o, r) {\n  let v;\n${lines.join("\n")}\n  return [${fields.map((_, i) => `x${i}`).join(", ")}];\n};`;
  return new Function(...params, body)(...convert) as (o: any, r?: unknown[]) => Row;
}

const decoder = new TextDecoder();
const utf8Slice = (Buffer.prototype as unknown as { utf8Slice?: (this: Uint8Array, start: number, end: number) => string }).utf8Slice;

/**
 * The UTF-8 text of `buf[start, end)` as TextDecoder gives it (a leading BOM
 * dropped, malformed bytes as U+FFFD), without making a view of the bytes.
 */
export function utf8Text(buf: Uint8Array, start: number, end: number): string {
  if (end - start >= 3 && buf[start] === 0xef && buf[start + 1] === 0xbb && buf[start + 2] === 0xbf) start += 3;
  return utf8Slice ? utf8Slice.call(buf, start, end) : decoder.decode(buf.subarray(start, end));
}

/** Parses one record's text as a JSON object, with readable errors. */
export function parseObject(data: Uint8Array | string): Record<string, unknown> {
  const text = typeof data === "string" ? data : utf8Text(data, 0, data.length);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`invalid JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new Error(`expected a JSON object, got ${describeValue(value)}`);
  }
  return value as Record<string, unknown>;
}

// ------------------------------------------------------------------ encoding

/** Whether values of `type` need converting to be written as JSON. */
function needsEncoding(type: SqlType): boolean {
  switch (type.kind) {
    case "timestamp":
    case "bytes":
    case "json":
    case "struct":
    case "map":
      return true;
    case "array":
      return needsEncoding(type.element);
    default:
      return false;
  }
}

/** Compiles a converter from an engine value to a JSON-ready value (null passes through). */
export function compileEncoder(type: SqlType, tsFormat: TimestampFormat): Convert | null {
  if (!needsEncoding(type)) return null;
  switch (type.kind) {
    case "timestamp":
      return tsFormat === "unix_millis"
        ? (v) => (v === null || v === undefined ? null : Math.floor((v as number) / 1000))
        : (v) => (v === null || v === undefined ? null : formatTimestamp(v as number));
    case "bytes":
      return (v) => (v === null || v === undefined ? null : Buffer.from(v as Uint8Array).toString("base64"));
    case "json":
      return (v) => {
        if (v === null || v === undefined) return null;
        if (typeof v !== "string") return v;
        try {
          return JSON.parse(v);
        } catch {
          return v; // not JSON text: written as a string
        }
      };
    case "array": {
      const element = compileEncoder(type.element, tsFormat)!;
      return (v) => (v === null || v === undefined ? null : (v as unknown[]).map(element));
    }
    case "struct": {
      const names = type.fields.map((f) => f.name);
      const convert = type.fields.map((f) => compileEncoder(f.type, tsFormat));
      return (v) => {
        if (v === null || v === undefined) return null;
        const src = v as Record<string, unknown>;
        const out: Record<string, unknown> = {};
        for (let i = 0; i < names.length; i++) {
          const name = names[i]!;
          const x = src[name];
          const c = convert[i];
          out[name] = x === undefined ? null : c ? c(x) : x;
        }
        return out;
      };
    }
    case "map": {
      // An object keyed by the keys as text (a JSON key is a string).
      const key = compileEncoder(type.key, tsFormat);
      const value = compileEncoder(type.value, tsFormat);
      return (v) => {
        if (v === null || v === undefined) return null;
        const out: Record<string, unknown> = {};
        for (const [k, x] of v as [unknown, unknown][]) out[String(key ? key(k) : k)] = x === null || x === undefined ? null : value ? value(x) : x;
        return out;
      };
    }
    default:
      return null;
  }
}

/**
 * Compiles the conversion of a row of `fields` into a plain object ready for
 * JSON.stringify: generated code building the object as one literal (a fixed
 * shape, which JSON.stringify walks fastest), one call site per converted
 * column. A later duplicate name overwrites an earlier one's value, as
 * assignment would; `__proto__` is an own property, not the prototype.
 */
export function compileObjectEncoder(fields: Field[], tsFormat: TimestampFormat): (row: Row) => Record<string, unknown> {
  const convert = fields.map((f) => compileEncoder(f.type, tsFormat));
  const params: string[] = [];
  const args: Convert[] = [];
  const props = fields.map((f, i) => {
    const c = convert[i];
    let value = `row[${i}] === undefined ? null : row[${i}]`;
    if (c) {
      params.push(`c${i}`);
      args.push(c);
      value = `row[${i}] === undefined ? null : c${i}(row[${i}])`;
    }
    // A computed key only for __proto__: it makes an own property; other keys stay plain for a fixed shape.
    return `${f.name === "__proto__" ? `["__proto__"]` : JSON.stringify(f.name)}: ${value}`;
  });
  return new Function(...params, `return function encodeRow(row) {\n  return {\n    ${props.join(",\n    ")}\n  };\n};`)(...args) as (row: Row) => Record<string, unknown>;
}

/** Checks the table of an unstructured format and returns the position of its `value` column. */
export function unstructuredColumn(fields: Field[], format: string): number {
  const i = fields.findIndex((f) => f.name === "value");
  const f = fields[i];
  if (!f || (f.type.kind !== "string" && f.type.kind !== "json")) {
    throw new Error(`format '${format}' with unstructured = true needs a TEXT or JSON column named \`value\` to hold each record`);
  }
  return i;
}
