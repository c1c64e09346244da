/**
 * The scalar function library: each function's arity, result type and
 * implementation. The SQL front end uses it to check calls and infer types; the
 * expression compiler calls the implementations. Strict functions return NULL
 * when any argument is NULL, so implementations never see null.
 */
import { createHash } from "node:crypto";
import { t, type SqlType } from "../plugin-api/index.ts";
import { formatTimestamp, parseTimestamp, toText } from "./values.ts";

export interface ScalarFunction {
  name: string;
  minArgs: number;
  maxArgs: number;
  /** Result type from the argument types; throw an Error to reject the arguments. */
  returns(args: SqlType[]): SqlType;
  impl: (...args: any[]) => unknown;
  /** NULL in → NULL out (the default). */
  strict?: boolean;
  /** Result differs between calls with the same arguments (now(), random()). */
  volatile?: boolean;
}

const numberOf = (args: SqlType[]): SqlType =>
  args.some((a) => a.kind === "float" || a.kind === "decimal") ? t.double() : args[0] ?? t.double();
const same = (args: SqlType[]) => args[0] ?? t.string();
const double = () => t.double();
const text = () => t.string();
const bigint = () => t.bigint();
const bool = () => t.boolean();
const timestamp = () => t.timestamp();
const json = () => t.json();

const MICROS: Record<string, number> = {
  microsecond: 1, microseconds: 1, us: 1,
  millisecond: 1e3, milliseconds: 1e3, ms: 1e3,
  second: 1e6, seconds: 1e6, s: 1e6,
  minute: 60e6, minutes: 60e6, m: 60e6,
  hour: 3600e6, hours: 3600e6, h: 3600e6,
  day: 86400e6, days: 86400e6, d: 86400e6,
};

function dateTrunc(unit: string, ts: number): number {
  const u = unit.toLowerCase();
  const fixed = MICROS[u];
  if (fixed !== undefined) return Math.floor(ts / fixed) * fixed;
  const d = new Date(Math.floor(ts / 1000));
  switch (u) {
    case "week":
    case "weeks": {
      const day = Math.floor(ts / 86400e6) * 86400e6;
      const dow = (d.getUTCDay() + 6) % 7; // Monday = 0
      return day - dow * 86400e6;
    }
    case "month":
    case "months":
      return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1) * 1000;
    case "quarter":
      return Date.UTC(d.getUTCFullYear(), Math.floor(d.getUTCMonth() / 3) * 3, 1) * 1000;
    case "year":
    case "years":
      return Date.UTC(d.getUTCFullYear(), 0, 1) * 1000;
  }
  throw new Error(`date_trunc: unknown unit '${unit}'; use microsecond, millisecond, second, minute, hour, day, week, month, quarter or year`);
}

export const DATE_PARTS = ["year", "quarter", "month", "week", "day", "dow", "doy", "hour", "minute", "second", "millisecond", "microsecond", "epoch"];

function datePart(part: string, ts: number): number {
  const d = new Date(Math.floor(ts / 1000));
  switch (part.toLowerCase()) {
    case "year":
      return d.getUTCFullYear();
    case "quarter":
      return Math.floor(d.getUTCMonth() / 3) + 1;
    case "month":
      return d.getUTCMonth() + 1;
    case "week": {
      // ISO week number.
      const day = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
      const dow = day.getUTCDay() || 7;
      day.setUTCDate(day.getUTCDate() + 4 - dow);
      const yearStart = Date.UTC(day.getUTCFullYear(), 0, 1);
      return Math.ceil(((day.getTime() - yearStart) / 86400000 + 1) / 7);
    }
    case "day":
      return d.getUTCDate();
    case "dow":
      return d.getUTCDay();
    case "doy":
      return Math.floor((Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86400000) + 1;
    case "hour":
      return d.getUTCHours();
    case "minute":
      return d.getUTCMinutes();
    case "second":
      return d.getUTCSeconds() + (((ts % 1e6) + 1e6) % 1e6) / 1e6;
    case "millisecond":
      return d.getUTCSeconds() * 1000 + (((ts % 1e6) + 1e6) % 1e6) / 1000;
    case "microsecond":
      return d.getUTCSeconds() * 1e6 + (((ts % 1e6) + 1e6) % 1e6);
    case "epoch":
      return ts / 1e6;
  }
  throw new Error(`unknown date part '${part}'; use one of ${DATE_PARTS.join(", ")}`);
}

function toTimestamp(v: unknown, unitMicros: number): number {
  if (typeof v === "number") return Math.trunc(v * unitMicros);
  const s = String(v).trim();
  if (/^-?\d+(\.\d+)?$/.test(s)) return Math.trunc(Number(s) * unitMicros);
  const parsed = parseTimestamp(s);
  if (parsed === null) throw new Error(`to_timestamp: cannot read '${s}' as a timestamp`);
  return parsed;
}

// ---------------------------------------------------------------- JSON

type PathStep = { kind: "key"; key: string } | { kind: "index"; index: number } | { kind: "wild" } | { kind: "descend"; key: string | null };

const pathCache = new Map<string, PathStep[]>();

/** A JSONPath subset: `$`, `.key`, `['key']`, `[n]`, `[*]`, `.*`, `..key`. */
function compilePath(path: string): PathStep[] {
  const cached = pathCache.get(path);
  if (cached) return cached;
  const steps: PathStep[] = [];
  let i = 0;
  const p = path.trim();
  if (p[0] === "$") i = 1;
  while (i < p.length) {
    if (p.startsWith("..", i)) {
      i += 2;
      const m = /^[A-Za-z0-9_$-]+|^\*/.exec(p.slice(i));
      if (!m) throw new Error(`bad JSON path '${path}' at ${i}`);
      steps.push({ kind: "descend", key: m[0] === "*" ? null : m[0] });
      i += m[0].length;
    } else if (p[i] === ".") {
      i++;
      const m = /^[A-Za-z0-9_$-]+|^\*/.exec(p.slice(i));
      if (!m) throw new Error(`bad JSON path '${path}' at ${i}`);
      steps.push(m[0] === "*" ? { kind: "wild" } : { kind: "key", key: m[0] });
      i += m[0].length;
    } else if (p[i] === "[") {
      const close = p.indexOf("]", i);
      if (close < 0) throw new Error(`bad JSON path '${path}': missing ]`);
      const inner = p.slice(i + 1, close).trim();
      if (inner === "*") steps.push({ kind: "wild" });
      else if (/^-?\d+$/.test(inner)) steps.push({ kind: "index", index: Number(inner) });
      else if (/^'.*'$|^".*"$/.test(inner)) steps.push({ kind: "key", key: inner.slice(1, -1) });
      else throw new Error(`bad JSON path '${path}': [${inner}]`);
      i = close + 1;
    } else {
      throw new Error(`bad JSON path '${path}' at '${p.slice(i)}'; paths look like $.a.b[0]`);
    }
  }
  if (pathCache.size > 1000) pathCache.clear();
  pathCache.set(path, steps);
  return steps;
}

function descend(v: unknown, key: string | null, out: unknown[]) {
  if (Array.isArray(v)) {
    for (const x of v) {
      if (key === null) out.push(x);
      descend(x, key, out);
    }
  } else if (v && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) {
      if (key === null || k === key) out.push(x);
      descend(x, key, out);
    }
  }
}

export function jsonPathQuery(value: unknown, path: string): unknown[] {
  let current: unknown[] = [value];
  for (const step of compilePath(path)) {
    const next: unknown[] = [];
    for (const v of current) {
      if (step.kind === "key") {
        if (v && typeof v === "object" && !Array.isArray(v) && step.key in (v as object)) next.push((v as any)[step.key]);
      } else if (step.kind === "index") {
        if (Array.isArray(v)) {
          const x = v[step.index < 0 ? v.length + step.index : step.index];
          if (x !== undefined) next.push(x);
        }
      } else if (step.kind === "wild") {
        if (Array.isArray(v)) next.push(...v);
        else if (v && typeof v === "object") next.push(...Object.values(v));
      } else {
        descend(v, step.key, next);
      }
    }
    current = next;
  }
  return current;
}

function parseJson(text: unknown): unknown {
  if (typeof text !== "string") return text;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function jsonArrow(value: unknown, key: unknown, asText: boolean): unknown {
  const parsed = parseJson(value);
  let v: unknown;
  if (typeof key === "number") v = Array.isArray(parsed) ? parsed[key < 0 ? parsed.length + key : key] : undefined;
  else v = parsed && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as any)[String(key)] : undefined;
  if (v === undefined || v === null) return null;
  if (asText) return typeof v === "string" ? v : JSON.stringify(v);
  return JSON.stringify(v);
}

// ---------------------------------------------------------------- registry

function hashFn(algorithm: string) {
  return (s: unknown) => createHash(algorithm).update(typeof s === "string" ? s : (s as Uint8Array)).digest("hex");
}

const LIKE_CACHE = new Map<string, RegExp>();
export function likeRegex(pattern: string, caseInsensitive: boolean): RegExp {
  const key = (caseInsensitive ? "i" : "s") + pattern;
  let re = LIKE_CACHE.get(key);
  if (!re) {
    let src = "";
    for (let i = 0; i < pattern.length; i++) {
      const c = pattern[i]!;
      if (c === "\\" && i + 1 < pattern.length) src += pattern[++i]!.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      else if (c === "%") src += "[\\s\\S]*";
      else if (c === "_") src += "[\\s\\S]";
      else src += c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    }
    re = new RegExp(`^${src}$`, caseInsensitive ? "i" : "");
    if (LIKE_CACHE.size > 1000) LIKE_CACHE.clear();
    LIKE_CACHE.set(key, re);
  }
  return re;
}

const REGEX_CACHE = new Map<string, RegExp>();
function regex(pattern: string, flags = ""): RegExp {
  const key = flags + "/" + pattern;
  let re = REGEX_CACHE.get(key);
  if (!re) {
    re = new RegExp(pattern, flags);
    if (REGEX_CACHE.size > 1000) REGEX_CACHE.clear();
    REGEX_CACHE.set(key, re);
  }
  return re;
}

function fn(name: string, minArgs: number, maxArgs: number, returns: ScalarFunction["returns"], impl: ScalarFunction["impl"], extra: Partial<ScalarFunction> = {}): ScalarFunction {
  return { name, minArgs, maxArgs, returns, impl, strict: true, ...extra };
}

const list: ScalarFunction[] = [
  // math
  fn("abs", 1, 1, same, Math.abs),
  fn("ceil", 1, 1, same, Math.ceil),
  fn("ceiling", 1, 1, same, Math.ceil),
  fn("floor", 1, 1, same, Math.floor),
  fn("round", 1, 2, (a) => (a.length > 1 ? t.double() : a[0]!), (x: number, d = 0) => {
    const f = 10 ** d;
    return Math.sign(x) * Math.round(Math.abs(x) * f) / f;
  }),
  fn("trunc", 1, 2, (a) => (a.length > 1 ? t.double() : a[0]!), (x: number, d = 0) => Math.trunc(x * 10 ** d) / 10 ** d),
  fn("sqrt", 1, 1, double, Math.sqrt),
  fn("cbrt", 1, 1, double, Math.cbrt),
  fn("exp", 1, 1, double, Math.exp),
  fn("ln", 1, 1, double, Math.log),
  fn("log", 1, 2, double, (a: number, b?: number) => (b === undefined ? Math.log10(a) : Math.log(b) / Math.log(a))),
  fn("log10", 1, 1, double, Math.log10),
  fn("log2", 1, 1, double, Math.log2),
  fn("power", 2, 2, numberOf, Math.pow),
  fn("pow", 2, 2, numberOf, Math.pow),
  fn("signum", 1, 1, same, Math.sign),
  fn("sign", 1, 1, same, Math.sign),
  fn("mod", 2, 2, numberOf, (a: number, b: number) => (b === 0 ? null : a % b)),
  fn("pi", 0, 0, double, () => Math.PI),
  fn("random", 0, 0, double, () => Math.random(), { volatile: true }),
  fn("sin", 1, 1, double, Math.sin),
  fn("cos", 1, 1, double, Math.cos),
  fn("tan", 1, 1, double, Math.tan),
  fn("asin", 1, 1, double, Math.asin),
  fn("acos", 1, 1, double, Math.acos),
  fn("atan", 1, 1, double, Math.atan),
  fn("atan2", 2, 2, double, Math.atan2),
  fn("degrees", 1, 1, double, (x: number) => (x * 180) / Math.PI),
  fn("radians", 1, 1, double, (x: number) => (x * Math.PI) / 180),
  fn("greatest", 1, 64, numberOf, (...xs: unknown[]) => xs.reduce((m: any, x: any) => (x == null ? m : m == null || x > m ? x : m), null), { strict: false }),
  fn("least", 1, 64, numberOf, (...xs: unknown[]) => xs.reduce((m: any, x: any) => (x == null ? m : m == null || x < m ? x : m), null), { strict: false }),
  // strings
  fn("length", 1, 1, bigint, (s: string) => [...s].length),
  fn("char_length", 1, 1, bigint, (s: string) => [...s].length),
  fn("character_length", 1, 1, bigint, (s: string) => [...s].length),
  fn("octet_length", 1, 1, bigint, (s: string) => Buffer.byteLength(s)),
  fn("bit_length", 1, 1, bigint, (s: string) => Buffer.byteLength(s) * 8),
  fn("lower", 1, 1, text, (s: string) => s.toLowerCase()),
  fn("upper", 1, 1, text, (s: string) => s.toUpperCase()),
  fn("initcap", 1, 1, text, (s: string) => s.toLowerCase().replace(/(^|[^a-z0-9])([a-z])/g, (_, p, c) => p + c.toUpperCase())),
  fn("trim", 1, 2, text, (s: string, chars?: string) => (chars === undefined ? s.trim() : s.replace(regex(`^[${escapeClass(chars)}]+|[${escapeClass(chars)}]+$`, "g"), ""))),
  fn("btrim", 1, 2, text, (s: string, chars?: string) => (chars === undefined ? s.trim() : s.replace(regex(`^[${escapeClass(chars)}]+|[${escapeClass(chars)}]+$`, "g"), ""))),
  fn("ltrim", 1, 2, text, (s: string, chars?: string) => (chars === undefined ? s.trimStart() : s.replace(regex(`^[${escapeClass(chars)}]+`), ""))),
  fn("rtrim", 1, 2, text, (s: string, chars?: string) => (chars === undefined ? s.trimEnd() : s.replace(regex(`[${escapeClass(chars)}]+$`), ""))),
  fn("substr", 2, 3, text, substr),
  fn("substring", 2, 3, text, substr),
  fn("left", 2, 2, text, (s: string, n: number) => (n >= 0 ? [...s].slice(0, n).join("") : [...s].slice(0, n).join(""))),
  fn("right", 2, 2, text, (s: string, n: number) => (n >= 0 ? [...s].slice(Math.max(0, [...s].length - n)).join("") : [...s].slice(-n).join(""))),
  fn("lpad", 2, 3, text, (s: string, n: number, fill = " ") => (s.length >= n ? s.slice(0, n) : fill.repeat(n).slice(0, n - s.length) + s)),
  fn("rpad", 2, 3, text, (s: string, n: number, fill = " ") => (s.length >= n ? s.slice(0, n) : s + fill.repeat(n).slice(0, n - s.length))),
  fn("repeat", 2, 2, text, (s: string, n: number) => s.repeat(Math.max(0, n))),
  fn("reverse", 1, 1, text, (s: string) => [...s].reverse().join("")),
  fn("replace", 3, 3, text, (s: string, from: string, to: string) => s.split(from).join(to)),
  fn("translate", 3, 3, text, (s: string, from: string, to: string) =>
    [...s].map((c) => {
      const i = from.indexOf(c);
      return i < 0 ? c : (to[i] ?? "");
    }).join("")),
  fn("strpos", 2, 2, bigint, (s: string, sub: string) => s.indexOf(sub) + 1),
  fn("position", 2, 2, bigint, (sub: string, s: string) => s.indexOf(sub) + 1),
  fn("starts_with", 2, 2, bool, (s: string, p: string) => s.startsWith(p)),
  fn("ends_with", 2, 2, bool, (s: string, p: string) => s.endsWith(p)),
  fn("split_part", 3, 3, text, (s: string, d: string, n: number) => s.split(d)[n - 1] ?? ""),
  fn("ascii", 1, 1, bigint, (s: string) => s.codePointAt(0) ?? 0),
  fn("chr", 1, 1, text, (n: number) => String.fromCodePoint(n)),
  fn("concat", 0, 256, text, (...xs: unknown[]) => xs.map((x) => (x == null ? "" : toText(x))).join(""), { strict: false }),
  fn("concat_ws", 1, 256, text, (sep: unknown, ...xs: unknown[]) => (sep == null ? null : xs.filter((x) => x != null).map((x) => toText(x)).join(String(sep))), { strict: false }),
  fn("regexp_replace", 3, 4, text, (s: string, p: string, r: string, flags = "") => s.replace(regex(p, flags.includes("g") ? flags : flags + ""), r.replace(/\\(\d)/g, "$$$1"))),
  fn("regexp_like", 2, 3, bool, (s: string, p: string, flags = "") => regex(p, flags).test(s)),
  fn("regexp_match", 2, 3, (a) => t.array(t.string()), (s: string, p: string, flags = "") => {
    const m = regex(p, flags.replace("g", "")).exec(s);
    return m ? (m.length > 1 ? m.slice(1) : [m[0]]) : null;
  }),
  fn("to_hex", 1, 1, text, (n: number) => (n >= 0 ? n.toString(16) : (BigInt.asUintN(64, BigInt(n))).toString(16))),
  fn("uuid", 0, 0, text, () => crypto.randomUUID(), { volatile: true }),
  // hashing
  fn("md5", 1, 1, text, hashFn("md5")),
  fn("sha1", 1, 1, text, hashFn("sha1")),
  fn("sha224", 1, 1, text, hashFn("sha224")),
  fn("sha256", 1, 1, text, hashFn("sha256")),
  fn("sha384", 1, 1, text, hashFn("sha384")),
  fn("sha512", 1, 1, text, hashFn("sha512")),
  fn("digest", 2, 2, text, (s: string, algorithm: string) => hashFn(algorithm.toLowerCase())(s)),
  // date and time
  fn("date_trunc", 2, 2, timestamp, dateTrunc),
  fn("date_part", 2, 2, double, datePart),
  fn("date_bin", 2, 3, timestamp, (width: number, ts: number, origin = 0) => origin + Math.floor((ts - origin) / width) * width),
  fn("to_timestamp", 1, 1, timestamp, (v: unknown) => toTimestamp(v, 1e6)),
  fn("to_timestamp_seconds", 1, 1, timestamp, (v: unknown) => toTimestamp(v, 1e6)),
  fn("to_timestamp_millis", 1, 1, timestamp, (v: unknown) => toTimestamp(v, 1e3)),
  fn("to_timestamp_micros", 1, 1, timestamp, (v: unknown) => toTimestamp(v, 1)),
  fn("to_timestamp_nanos", 1, 1, timestamp, (v: unknown) => toTimestamp(v, 1e-3)),
  fn("from_unixtime", 1, 1, timestamp, (v: number) => Math.trunc(v * 1e6)),
  fn("to_unixtime", 1, 1, bigint, (v: number) => Math.floor(v / 1e6)),
  fn("to_char", 1, 2, text, (v: number) => formatTimestamp(v)),
  fn("now", 0, 0, timestamp, () => Date.now() * 1000, { volatile: true }),
  fn("current_timestamp", 0, 0, timestamp, () => Date.now() * 1000, { volatile: true }),
  // JSON
  fn("extract_json", 2, 2, () => t.array(t.json()), (j: unknown, path: string) => {
    const v = parseJson(j);
    return v === undefined ? null : jsonPathQuery(v, path).map((x) => JSON.stringify(x));
  }),
  fn("extract_json_string", 2, 2, text, (j: unknown, path: string) => {
    const v = parseJson(j);
    const hit = v === undefined ? undefined : jsonPathQuery(v, path)[0];
    return hit === undefined || hit === null ? null : typeof hit === "string" ? hit : JSON.stringify(hit);
  }),
  fn("get_first_json_object", 2, 2, json, (j: unknown, path: string) => {
    const v = parseJson(j);
    const hit = v === undefined ? undefined : jsonPathQuery(v, path)[0];
    return hit === undefined ? null : JSON.stringify(hit);
  }),
  fn("json_get", 2, 2, json, (j: unknown, key: unknown) => jsonArrow(j, key, false)),
  fn("json_get_str", 2, 2, text, (j: unknown, key: unknown) => jsonArrow(j, key, true)),
  // arrays
  fn("array_length", 1, 1, bigint, (a: unknown[]) => a.length),
  fn("cardinality", 1, 1, bigint, (a: unknown[]) => a.length),
  fn("array_contains", 2, 2, bool, (a: unknown[], x: unknown) => a.includes(x)),
];

function escapeClass(chars: string): string {
  return chars.replace(/[\]\\^-]/g, "\\$&");
}

function substr(s: string, start: number, len?: number): string {
  const chars = [...s];
  const from = Math.max(0, start - 1);
  const to = len === undefined ? chars.length : Math.max(from, start - 1 + len);
  return chars.slice(from, to).join("");
}

export const SCALAR_FUNCTIONS: ReadonlyMap<string, ScalarFunction> = new Map(list.map((f) => [f.name, f]));

export { dateTrunc, datePart };
