/**
 * The scalar function library: each function's argument kinds, result type and
 * implementation, following DataFusion's documented behaviour (Arroyo's SQL
 * engine) for NULLs, negative and out-of-range arguments and Unicode. The SQL
 * front end checks calls against it (argument kinds, constant arguments such
 * as formats, units and patterns) so that what Runnel cannot do exactly is
 * refused before a job starts; the expression compiler calls the
 * implementations. Strict functions return NULL when any argument is NULL, so
 * implementations never see null.
 */
import { createHash } from "node:crypto";
import { t, typeName, type SqlType } from "../plugin-api/index.ts";
import type { Expr } from "./expr.ts";
import { ARRAY_FUNCTIONS } from "./arrays.ts";
import { MAP_FUNCTIONS } from "./maps.ts";
import * as json from "./json.ts";
import { compileReplacement, compileRustRegex, expandReplacement, parseFlags, rustRegex, translateRegex, type RegexFlags } from "./regex.ts";
import { checkTruncUnit, compileFormat, datePart, datePartName, DATE_PARTS, dateTrunc, strftime, toTimestamp } from "./time.ts";
import { checkInt, compareNumber, compareText, ExprError, NULL_TYPE, toText } from "./values.ts";

/** What an argument position accepts. `text` takes TEXT and JSON (JSON values are text). */
export type ArgKind = "text" | "int" | "number" | "timestamp" | "interval" | "boolean" | "bytes" | "text_or_bytes" | "json_key" | "array" | "map" | "any";

/** An argument as the planner sees it: its type, and its value when it is a constant. */
export interface ArgInfo {
  type: SqlType;
  literal?: { value: unknown };
}

type Impl = (...args: any[]) => unknown;

export interface ScalarFunction {
  name: string;
  /** Argument kinds; with `variadic` the last one repeats. */
  args: ArgKind[];
  /** How many leading arguments are required (default: all of `args`). */
  required?: number;
  variadic?: boolean;
  /** Result type; may depend on the arguments. Throw an ExprError to refuse them. */
  returns: SqlType | ((args: ArgInfo[]) => SqlType);
  /** Checks constant arguments (units, formats, patterns, positions) at planning time; throws an ExprError. */
  check?: (args: ArgInfo[]) => void;
  impl?: Impl;
  /** Builds the implementation for these argument types and constants, when it depends on them. */
  bind?: (args: ArgInfo[]) => Impl;
  /** NULL in → NULL out (the default). */
  strict?: boolean;
  /** Result differs between calls with the same arguments (now(), random()). */
  volatile?: boolean;
}

export function minArgs(f: ScalarFunction): number {
  return f.required ?? f.args.length;
}

export function maxArgs(f: ScalarFunction): number {
  return f.variadic ? Infinity : f.args.length;
}

/** The kind expected at argument `i` (0-based). */
export function argKind(f: ScalarFunction, i: number): ArgKind {
  return f.args[Math.min(i, f.args.length - 1)]!;
}

const isIntType = (x: SqlType) => x.kind === "int";
const isNumericType = (x: SqlType) => x.kind === "int" || x.kind === "float" || x.kind === "decimal";

/** Whether a value of `type` fits an argument of `kind` (a NULL constant fits any). */
export function accepts(kind: ArgKind, type: SqlType): boolean {
  switch (kind) {
    case "text":
      return type.kind === "string" || type.kind === "json";
    case "int":
      return isIntType(type);
    case "number":
      return isNumericType(type);
    case "timestamp":
    case "interval":
    case "boolean":
    case "bytes":
    case "array":
    case "map":
      return type.kind === (kind === "bytes" ? "bytes" : kind);
    case "text_or_bytes":
      return type.kind === "string" || type.kind === "json" || type.kind === "bytes";
    case "json_key":
      return type.kind === "string" || isIntType(type);
    case "any":
      return true;
  }
}

export const KIND_NAMES: Record<ArgKind, string> = {
  text: "TEXT", int: "an integer", number: "a number", timestamp: "a TIMESTAMP", interval: "an INTERVAL", boolean: "a BOOLEAN",
  bytes: "BYTEA", text_or_bytes: "TEXT or BYTEA", json_key: "a TEXT key or an integer index", array: "an array", map: "a MAP", any: "any value",
};

const lit = (a: ArgInfo | undefined) => a?.literal?.value;
const isConst = (a: ArgInfo | undefined): a is ArgInfo & { literal: { value: unknown } } => a?.literal !== undefined && a.literal.value !== null;
/** The types of the arguments that have one (all but bare NULLs; CAST(NULL AS T) has type T). */
const typed = (args: ArgInfo[]) => args.filter((a) => !(a.literal?.value === null && a.type === NULL_TYPE)).map((a) => a.type);

/** A NULL constant: it fits any argument and makes a strict call NULL. */
export const isNullArg = (a: ArgInfo | undefined) => a?.literal !== undefined && a.literal.value === null;

const double = t.double();
const text = t.string();
const bigint = t.bigint();
const bool = t.boolean();
const timestamp = t.timestamp();
const bytes = t.bytes();
const textArray = t.array(t.string());

function fn(name: string, args: ArgKind[], returns: ScalarFunction["returns"], impl: Impl, extra: Partial<ScalarFunction> = {}): ScalarFunction {
  return { name, args, returns, impl, strict: true, ...extra };
}

/** The first argument's type (NULL constants aside). */
const sameAsFirst = (args: ArgInfo[]) => args[0]!.type;

// ---------------------------------------------------------------- math

function checkedPower(a: number, b: number): number {
  if (b < 0) throw new ExprError(`power(${a}, ${b}): a negative exponent needs a DOUBLE: power(CAST(x AS DOUBLE), y)`);
  return checkInt(a ** b, bigint, () => `power(${a}, ${b})`);
}

function gcd(a: number, b: number): number {
  a = Math.abs(a);
  b = Math.abs(b);
  while (b) [a, b] = [b, a % b];
  return a;
}

const math1 = (name: string, f: (x: number) => number) => fn(name, ["number"], double, f);

/** Ordering for greatest/least: text by code point, numbers with NaN above all, others as JavaScript orders them. */
function comparatorFor(type: SqlType): (a: any, b: any) => number {
  if (type.kind === "string" || type.kind === "json") return compareText;
  if (isNumericType(type)) return compareNumber;
  return (a, b) => (a < b ? -1 : a > b ? 1 : 0);
}

/** The common type of greatest/least/coalesce-like arguments, or an error naming the mismatch. */
export function commonType(types: SqlType[], what: string): SqlType {
  const known = types.filter((x): x is SqlType => x !== undefined);
  if (known.length === 0) return text;
  if (known.every(isNumericType)) {
    if (known.every(isIntType)) return known.some((x) => x.kind === "int" && x.bits === 64) ? bigint : known[0]!;
    return double;
  }
  const first = known[0]!;
  const textual = (x: SqlType) => x.kind === "string" || x.kind === "json";
  for (const x of known) {
    if (x.kind !== first.kind && !(textual(x) && textual(first))) {
      throw new ExprError(`${what} mixes ${typeName(first)} and ${typeName(x)}; cast them to one type`);
    }
  }
  return first;
}

// ---------------------------------------------------------------- strings

const chars = (s: string) => Array.from(s);
const charLength = (s: string) => {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdbff) n++;
  }
  return n;
};

/** Trims the characters of `set` (default: spaces only, as DataFusion does) from the chosen ends. */
function trimChars(s: string, set: string | undefined, start: boolean, end: boolean): string {
  const trimSet = new Set(set === undefined ? [" "] : chars(set));
  const cs = chars(s);
  let lo = 0;
  let hi = cs.length;
  if (start) while (lo < hi && trimSet.has(cs[lo]!)) lo++;
  if (end) while (hi > lo && trimSet.has(cs[hi - 1]!)) hi--;
  return lo === 0 && hi === cs.length ? s : cs.slice(lo, hi).join("");
}

const MAX_STRING = 2 ** 28;

function pad(s: string, n: number, fill: string, left: boolean, name: string): string {
  if (n > 2147483647) throw new ExprError(`${name} requested length ${n} too large`);
  if (n <= 0) return "";
  const cs = chars(s);
  if (n <= cs.length) return cs.slice(0, n).join("");
  const fc = chars(fill);
  if (fc.length === 0) return s;
  if (n > MAX_STRING) throw new ExprError(`${name}: a result of ${n} characters is too long`);
  let padding = "";
  for (let i = 0; i < n - cs.length; i++) padding += fc[i % fc.length];
  return left ? padding + s : s + padding;
}

/** Rust's `str::split`: an empty delimiter splits around every character, with empty ends. */
function rustSplit(s: string, d: string): string[] {
  if (d === "") return ["", ...chars(s), ""];
  return s.split(d);
}

function splitPart(s: string, d: string, n: number): string {
  if (n === 0) throw new ExprError("split_part: field position must not be zero (positions count from 1, or from -1 at the end)");
  if (d === "") {
    const parts = rustSplit(s, d);
    const i = n > 0 ? n - 1 : parts.length + n;
    return i >= 0 && i < parts.length ? parts[i]! : "";
  }
  // Scans for the delimiters around the n-th piece instead of splitting the whole text.
  if (n < 0) {
    // Counted from the left (as the split is), so that a delimiter overlapping itself ('aa' in 'aaa') splits the same.
    let count = 0;
    for (let at = s.indexOf(d); at >= 0; at = s.indexOf(d, at + d.length)) count++;
    n = count + 2 + n;
    if (n < 1) return "";
  }
  // The delimiters before the piece and the one after it, from those the last text's calls found.
  if (s !== splitText || d !== splitDelimiter) {
    splitText = s;
    splitDelimiter = d;
    splitFound.length = 0;
    splitDone = false;
  }
  while (splitFound.length < n && !splitDone) {
    const from = splitFound.length === 0 ? 0 : splitFound[splitFound.length - 1]! + d.length;
    const at = s.indexOf(d, from);
    if (at < 0) splitDone = true;
    else splitFound.push(at);
  }
  if (n - 1 > splitFound.length) return "";
  const start = n === 1 ? 0 : splitFound[n - 2]! + d.length;
  return n - 1 < splitFound.length ? s.slice(start, splitFound[n - 1]) : s.slice(start);
}

/**
 * The text split_part last scanned, and the positions of the delimiters found
 * in it so far: the calls on one row's value (q22 takes three pieces of each
 * url) scan it once between them.
 */
let splitText = "";
let splitDelimiter = "";
const splitFound: number[] = [];
let splitDone = false;

/** Whether every character of `s` is one UTF-16 unit (no surrogate pair), so unit offsets are character offsets. */
function singleUnits(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) return false;
  }
  return true;
}

function substr(s: string, start: number, len?: number): string {
  if (len !== undefined && len < 0) throw new ExprError(`substr: negative substring length not allowed (got ${len})`);
  if (singleUnits(s)) {
    // No array of characters per call (substr of a formatted time was 12% of q10's CPU).
    const from = Math.max(start, 1) - 1;
    if (len === undefined) return s.slice(from);
    const end = start + len - 1;
    return end <= from ? "" : s.slice(from, end);
  }
  const cs = chars(s);
  const from = Math.max(start, 1) - 1;
  if (len === undefined) return cs.slice(from).join("");
  const end = start + len - 1; // exclusive, 0-based
  return end <= from ? "" : cs.slice(from, end).join("");
}

function strpos(s: string, sub: string): number {
  const i = s.indexOf(sub);
  return i < 0 ? 0 : charLength(s.slice(0, i)) + 1;
}

function replaceAll(s: string, from: string, to: string): string {
  if (from === "") return to + chars(s).join(to) + (s === "" ? "" : to);
  return s.split(from).join(to);
}

const ALNUM = /[\p{Alphabetic}\p{N}]/u;

function initcap(s: string): string {
  let out = "";
  let prevAlnum = false;
  for (const c of s) {
    out += prevAlnum ? c.toLowerCase() : c.toUpperCase();
    prevAlnum = ALNUM.test(c);
  }
  return out;
}

function translate(s: string, from: string, to: string): string {
  const f = chars(from);
  const tchars = chars(to);
  let out = "";
  for (const c of s) {
    const i = f.indexOf(c);
    out += i < 0 ? c : (tchars[i] ?? "");
  }
  return out;
}

/** Edit distance between two strings, counting characters (code points). */
export function levenshtein(a: string, b: string): number {
  const x = chars(a);
  const y = chars(b);
  const prev = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= y.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (x[i - 1] === y[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[y.length]!;
}

function substrIndex(s: string, d: string, count: number): string {
  if (d === "" || count === 0) return "";
  const parts = s.split(d);
  if (count > 0) return parts.slice(0, count).join(d);
  return parts.slice(Math.max(0, parts.length + count)).join(d);
}

function chr(n: number): string {
  if (n === 0) throw new ExprError("chr(0): null character not permitted");
  if (n < 0 || n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff)) throw new ExprError(`chr(${n}): requested character not a valid Unicode code point`);
  return String.fromCodePoint(n);
}

function toHex(n: number): string {
  return n >= 0 ? n.toString(16) : BigInt.asUintN(64, BigInt(n)).toString(16);
}

function repeat(s: string, n: number): string {
  if (n <= 0 || s === "") return "";
  if (s.length * n > MAX_STRING) throw new ExprError(`repeat: a result of ${s.length * n} characters is too long`);
  return s.repeat(n);
}

// ---------------------------------------------------------------- bytes and hashes

const asBytes = (v: string | Uint8Array) => (typeof v === "string" ? Buffer.from(v, "utf8") : v);

const HASHES: Record<string, string> = { md5: "md5", sha224: "sha224", sha256: "sha256", sha384: "sha384", sha512: "sha512", blake2b: "blake2b512", blake2s: "blake2s256" };

function digestBytes(v: string | Uint8Array, algorithm: string): Uint8Array {
  const node = HASHES[algorithm.toLowerCase()];
  if (!node) throw new ExprError(`digest: unsupported algorithm '${algorithm}'; use ${Object.keys(HASHES).join(", ")}`);
  return new Uint8Array(createHash(node).update(asBytes(v)).digest());
}

function encode(v: string | Uint8Array, encoding: string): string {
  const b = Buffer.from(asBytes(v));
  switch (encoding.toLowerCase()) {
    case "hex":
      return b.toString("hex");
    case "base64":
      return b.toString("base64").replace(/=+$/, "");
  }
  throw new ExprError(`encode: unknown encoding '${encoding}'; use 'hex' or 'base64'`);
}

function decode(v: string | Uint8Array, encoding: string): Uint8Array {
  const s = typeof v === "string" ? v : Buffer.from(v).toString("latin1");
  switch (encoding.toLowerCase()) {
    case "hex":
      if (!/^([0-9a-fA-F]{2})*$/.test(s)) throw new ExprError(`decode: '${s}' is not hex text`);
      return new Uint8Array(Buffer.from(s, "hex"));
    case "base64":
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s)) throw new ExprError(`decode: '${s}' is not base64 text`);
      return new Uint8Array(Buffer.from(s, "base64"));
  }
  throw new ExprError(`decode: unknown encoding '${encoding}'; use 'hex' or 'base64'`);
}

// ---------------------------------------------------------------- regular expressions

function regexArgs(args: ArgInfo[], patternAt: number, flagsAt: number, name: string, allowGlobal: boolean): void {
  if (isConst(args[flagsAt])) parseFlags(String(lit(args[flagsAt])), name, allowGlobal);
  if (isConst(args[patternAt])) {
    const flags = isConst(args[flagsAt]) ? parseFlags(String(lit(args[flagsAt])), name, allowGlobal) : parseFlags("", name, false);
    translateRegex(String(lit(args[patternAt])), flags);
  }
}

/**
 * A call whose pattern (and flags, when given) are constants: the regex compiled
 * once at planning, so a row pays neither the flags' parsing nor the pattern
 * cache's lookup. Null when either varies by row.
 */
function constantRegex(args: ArgInfo[], patternAt: number, flagsAt: number, name: string, allowGlobal: boolean, global: boolean): { re: RegExp; flags: RegexFlags } | null {
  if (!isConst(args[patternAt]) || (args.length > flagsAt && !isConst(args[flagsAt]))) return null;
  const flags = parseFlags(args.length > flagsAt ? String(lit(args[flagsAt])) : "", name, allowGlobal);
  return { re: compileRustRegex(String(lit(args[patternAt])), flags, global), flags };
}

function matchGroups(m: RegExpExecArray | null): (string | null)[] | null {
  if (!m) return null;
  if (m.length === 1) return [m[0]];
  // A plain loop: slice().map() was a fifth of q21's CPU.
  const out = new Array<string | null>(m.length - 1);
  for (let g = 1; g < m.length; g++) out[g - 1] = m[g] ?? null;
  return out;
}

function regexpMatch(s: string, p: string, flags = ""): (string | null)[] | null {
  return matchGroups(rustRegex(p, parseFlags(flags, "regexp_match", false)).exec(s));
}

function regexpReplace(s: string, p: string, r: string, flags = ""): string {
  const f = parseFlags(flags, "regexp_replace", true);
  return replaceWith(s, rustRegex(p, f, true), compileReplacement(r), f.g);
}

/** `re` is global; its lastIndex is reset here. */
function replaceWith(s: string, re: RegExp, parts: ReturnType<typeof compileReplacement>, all: boolean): string {
  re.lastIndex = 0;
  let out = "";
  let last = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    out += s.slice(last, m.index) + expandReplacement(parts, m);
    last = m.index + m[0].length;
    if (m[0].length === 0) re.lastIndex += s.codePointAt(re.lastIndex)! > 0xffff ? 2 : 1;
    if (!all) break;
  }
  return out + s.slice(last);
}

function regexpCount(s: string, p: string, start = 1, flags = ""): number {
  if (start < 1) throw new ExprError(`regexp_count: start must be 1 or more, got ${start}`);
  const re = rustRegex(p, parseFlags(flags, "regexp_count", false), true);
  const from = chars(s).slice(start - 1).join("");
  let n = 0;
  for (let m = re.exec(from); m; m = re.exec(from)) {
    n++;
    if (m[0].length === 0) re.lastIndex += 1;
  }
  return n;
}

/** Position (1-based, in characters) of the n-th match from `start`, or of its group `sub`; 0 when there is none. */
function regexpInstr(s: string, p: string, start = 1, n = 1, flags = "", sub = 0): number {
  if (start < 1) throw new ExprError(`regexp_instr: start must be 1 or more, got ${start}`);
  if (n < 1) throw new ExprError(`regexp_instr: n must be 1 or more, got ${n}`);
  const re = rustRegex(p, parseFlags(flags, "regexp_instr", false), true);
  const cs = chars(s);
  const from = cs.slice(start - 1).join("");
  let seen = 0;
  for (let m = re.exec(from); m; m = re.exec(from)) {
    if (++seen === n) {
      const text = sub === 0 ? m[0] : m[sub];
      if (text === undefined) return 0;
      const at = sub === 0 ? m.index : from.indexOf(text, m.index);
      return start + charLength(from.slice(0, at));
    }
    if (m[0].length === 0) re.lastIndex += 1;
  }
  return 0;
}

function factorial(n: number): number {
  if (n > 20) throw new ExprError(`factorial(${n}) overflows a BIGINT`);
  let out = 1;
  for (let i = 2; i <= n; i++) out *= i;
  return checkInt(out, bigint, () => `factorial(${n})`);
}

/** overlay(s, replacement, from[, count]): `count` characters from `from` replaced (default: the replacement's length). */
function overlay(s: string, r: string, from: number, count?: number): string {
  const cs = chars(s);
  const len = count ?? charLength(r);
  const head = cs.slice(0, Math.max(0, from - 1)).join("");
  const tail = cs.slice(Math.max(0, from - 1 + len)).join("");
  return head + r + tail;
}

/** Arrow's name for a type, as DataFusion's arrow_typeof prints it. */
function arrowTypeName(x: SqlType): string {
  switch (x.kind) {
    case "boolean":
      return "Boolean";
    case "int":
      return `${x.unsigned ? "UInt" : "Int"}${x.bits}`;
    case "float":
      return `Float${x.bits}`;
    case "decimal":
      return `Decimal128(${x.precision}, ${x.scale})`;
    case "string":
    case "json":
      return "Utf8";
    case "timestamp":
      return "Timestamp(Nanosecond, None)";
    case "interval":
      return "Interval(MonthDayNano)";
    case "bytes":
      return "Binary";
    case "array":
      return `List(Field { name: "item", data_type: ${arrowTypeName(x.element)}, nullable: true, dict_id: 0, dict_is_ordered: false, metadata: {} })`;
    case "struct":
      return `Struct(${x.fields.map((f) => `${f.name} ${arrowTypeName(f.type)}`).join(", ")})`;
    case "map":
      return `Map(Field { name: "entries", data_type: Struct([Field { name: "key", data_type: ${arrowTypeName(x.key)}, nullable: false, dict_id: 0, dict_is_ordered: false, metadata: {} }, Field { name: "value", data_type: ${arrowTypeName(x.value)}, nullable: true, dict_id: 0, dict_is_ordered: false, metadata: {} }]), nullable: false, dict_id: 0, dict_is_ordered: false, metadata: {} }, false)`;
  }
}

// ---------------------------------------------------------------- time

function checkPart(args: ArgInfo[]) {
  if (isConst(args[0])) datePartName(String(lit(args[0])));
  if (args[1]?.type.kind === "interval" && isConst(args[0]) && datePartName(String(lit(args[0]))) !== "epoch") {
    throw new ExprError("date_part on an INTERVAL supports only 'epoch' (its length in seconds)");
  }
}

function datePartType(args: ArgInfo[]): SqlType {
  if (!isConst(args[0])) return double;
  return DATE_PARTS[datePartName(String(lit(args[0])))]!.fractional ? double : bigint;
}

function datePartImpl(part: string, v: number, type?: SqlType): number {
  if (type?.kind === "interval") {
    if (datePartName(part) !== "epoch") throw new ExprError("date_part on an INTERVAL supports only 'epoch'");
    return v / 1e6;
  }
  return datePart(part, v);
}

function dateBin(width: number, ts: number, origin = 0): number {
  if (width <= 0) throw new ExprError("date_bin: the stride must be a positive interval");
  return origin + Math.floor((ts - origin) / width) * width;
}

function checkFormat(args: ArgInfo[]) {
  if (isConst(args[1])) compileFormat(String(lit(args[1])));
}

const timestampFrom = (unit: number, name: string) =>
  fn(name, ["any"], timestamp, (v: unknown) => toTimestamp(v, unit, name), {
    check: (args) => {
      const k = args[0]!.type.kind;
      if (isNullArg(args[0])) return;
      if (k !== "string" && k !== "json" && !isNumericType(args[0]!.type) && k !== "timestamp") {
        throw new ExprError(`${name}() takes a number or TEXT, got ${typeName(args[0]!.type)}`);
      }
    },
    bind: (args) => (args[0]!.type.kind === "timestamp" ? (v: number) => v : (v: unknown) => toTimestamp(v, unit, name)),
  });

function toUnixtime(v: unknown, type: SqlType): number {
  if (type.kind === "timestamp") return Math.trunc((v as number) / 1e6);
  if (isIntType(type)) return v as number;
  return Math.trunc(toTimestamp(v, 1e6, "to_unixtime") / 1e6);
}

// ---------------------------------------------------------------- JSON

const jsonKeys = (...keys: unknown[]) => keys.map((k) => (typeof k === "number" ? k : k === null || k === undefined ? null : String(k)));
const jsonFn = (name: string, returns: SqlType, f: (j: unknown, ...keys: json.JsonKey[]) => unknown, strictJson = true) =>
  fn(name, ["text", "json_key"], returns, (j: unknown, ...keys: unknown[]) => (j === null && strictJson ? null : f(j, ...jsonKeys(...keys))), {
    required: 1,
    variadic: true,
    strict: false,
  });

function checkPathLiteral(args: ArgInfo[], name: string) {
  if (!isConst(args[1])) throw new ExprError(`${name}() needs the JSON path as a constant, like '$.a.b'`);
  json.compileJsonPath(String(lit(args[1])));
}

// ---------------------------------------------------------------- arrays

function arrayElement(a: unknown[], i: number): unknown {
  const j = i > 0 ? i - 1 : i < 0 ? a.length + i : -1;
  return j >= 0 && j < a.length ? (a[j] ?? null) : null;
}

// ---------------------------------------------------------------- the list

const list: ScalarFunction[] = [
  // math
  fn("abs", ["number"], sameAsFirst, Math.abs),
  fn("ceil", ["number"], sameAsFirst, Math.ceil),
  fn("ceiling", ["number"], sameAsFirst, Math.ceil),
  fn("floor", ["number"], sameAsFirst, Math.floor),
  fn("round", ["number", "int"], double, (x: number, d = 0) => {
    if (!Number.isFinite(x)) return x;
    const f = 10 ** d;
    return (Math.sign(x) * Math.round(Math.abs(x) * f)) / f;
  }, { required: 1 }),
  fn("trunc", ["number", "int"], double, (x: number, d = 0) => Math.trunc(x * 10 ** d) / 10 ** d, { required: 1 }),
  math1("sqrt", Math.sqrt),
  math1("cbrt", Math.cbrt),
  math1("exp", Math.exp),
  math1("ln", Math.log),
  math1("log10", Math.log10),
  math1("log2", Math.log2),
  fn("log", ["number", "number"], double, (a: number, b?: number) => (b === undefined ? Math.log10(a) : Math.log(b) / Math.log(a)), { required: 1 }),
  ...["power", "pow"].map((name) =>
    fn(name, ["number", "number"], (a) => (a.every((x) => isIntType(x.type)) ? bigint : double), Math.pow, {
      bind: (a) => (a.every((x) => isIntType(x.type)) ? checkedPower : Math.pow),
    }),
  ),
  ...["signum", "sign"].map((name) => fn(name, ["number"], double, (x: number) => (x === 0 ? 0 : Math.sign(x)))),
  fn("mod", ["number", "number"], (a) => commonType([a[0]!.type, a[1]!.type], "mod()"), (a: number, b: number) => (b === 0 ? null : a % b), {
    bind: (a) => (a.every((x) => isIntType(x.type)) ? (x: number, y: number) => (y === 0 ? null : x % y) : (x: number, y: number) => x % y),
  }),
  fn("pi", [], double, () => Math.PI),
  fn("random", [], double, () => Math.random(), { volatile: true }),
  math1("sin", Math.sin),
  math1("cos", Math.cos),
  math1("tan", Math.tan),
  math1("cot", (x) => 1 / Math.tan(x)),
  math1("asin", Math.asin),
  math1("acos", Math.acos),
  math1("atan", Math.atan),
  math1("sinh", Math.sinh),
  math1("cosh", Math.cosh),
  math1("tanh", Math.tanh),
  math1("asinh", Math.asinh),
  math1("acosh", Math.acosh),
  math1("atanh", Math.atanh),
  fn("atan2", ["number", "number"], double, Math.atan2),
  math1("degrees", (x) => (x * 180) / Math.PI),
  math1("radians", (x) => (x * Math.PI) / 180),
  fn("gcd", ["int", "int"], bigint, gcd),
  fn("factorial", ["int"], bigint, factorial),
  fn("lcm", ["int", "int"], bigint, (a: number, b: number) => (a === 0 || b === 0 ? 0 : checkInt(Math.abs(a * b) / gcd(a, b), bigint, () => `lcm(${a}, ${b})`))),
  fn("isnan", ["number"], bool, (x: number) => Number.isNaN(x)),
  fn("iszero", ["number"], bool, (x: number) => x === 0),
  fn("nanvl", ["number", "number"], double, (x: number, y: number) => (Number.isNaN(x) ? y : x)),
  ...(["greatest", "least"] as const).map((name) =>
    fn(name, ["any"], (a) => commonType(typed(a), `${name}()`), () => null, {
      variadic: true,
      strict: false,
      bind: (a) => {
        const cmp = comparatorFor(commonType(typed(a), name));
        const sign = name === "greatest" ? 1 : -1;
        return (...xs: unknown[]) => {
          let best: unknown = null;
          for (const x of xs) if (x !== null && x !== undefined && (best === null || sign * cmp(x, best) > 0)) best = x;
          return best;
        };
      },
    }),
  ),
  // strings
  fn("ascii", ["text"], bigint, (s: string) => s.codePointAt(0) ?? 0),
  fn("bit_length", ["text_or_bytes"], bigint, (s: string | Uint8Array) => asBytes(s).length * 8),
  fn("octet_length", ["text_or_bytes"], bigint, (s: string | Uint8Array) => asBytes(s).length),
  ...["length", "char_length", "character_length"].map((name) => fn(name, ["text"], bigint, charLength)),
  fn("lower", ["text"], text, (s: string) => s.toLowerCase()),
  fn("upper", ["text"], text, (s: string) => s.toUpperCase()),
  fn("initcap", ["text"], text, initcap),
  ...["trim", "btrim"].map((name) => fn(name, ["text", "text"], text, (s: string, c?: string) => trimChars(s, c, true, true), { required: 1 })),
  fn("ltrim", ["text", "text"], text, (s: string, c?: string) => trimChars(s, c, true, false), { required: 1 }),
  fn("rtrim", ["text", "text"], text, (s: string, c?: string) => trimChars(s, c, false, true), { required: 1 }),
  ...["substr", "substring"].map((name) =>
    fn(name, ["text", "int", "int"], text, substr, {
      required: 2,
      check: (a) => {
        if (isConst(a[2]) && (lit(a[2]) as number) < 0) throw new ExprError(`${name}: negative substring length not allowed`);
      },
    }),
  ),
  fn("left", ["text", "int"], text, (s: string, n: number) => chars(s).slice(0, n < 0 ? Math.max(0, charLength(s) + n) : n).join("")),
  fn("right", ["text", "int"], text, (s: string, n: number) => {
    const cs = chars(s);
    return (n < 0 ? cs.slice(Math.min(cs.length, -n)) : cs.slice(Math.max(0, cs.length - n))).join("");
  }),
  fn("lpad", ["text", "int", "text"], text, (s: string, n: number, f = " ") => pad(s, n, f, true, "lpad"), { required: 2 }),
  fn("rpad", ["text", "int", "text"], text, (s: string, n: number, f = " ") => pad(s, n, f, false, "rpad"), { required: 2 }),
  fn("repeat", ["text", "int"], text, repeat),
  fn("reverse", ["text"], text, (s: string) => chars(s).reverse().join("")),
  fn("replace", ["text", "text", "text"], text, replaceAll),
  fn("translate", ["text", "text", "text"], text, translate),
  ...["strpos", "instr"].map((name) => fn(name, ["text", "text"], bigint, strpos)),
  fn("position", ["text", "text"], bigint, (sub: string, s: string) => strpos(s, sub)),
  fn("contains", ["text", "text"], bool, (s: string, sub: string) => s.includes(sub)),
  fn("starts_with", ["text", "text"], bool, (s: string, p: string) => s.startsWith(p)),
  fn("ends_with", ["text", "text"], bool, (s: string, p: string) => s.endsWith(p)),
  fn("split_part", ["text", "text", "int"], text, splitPart, {
    check: (a) => {
      if (isConst(a[2]) && lit(a[2]) === 0) throw new ExprError("split_part: field position must not be zero (positions count from 1, or from -1 at the end)");
    },
  }),
  ...["substr_index", "substring_index"].map((name) => fn(name, ["text", "text", "int"], text, substrIndex)),
  fn("overlay", ["text", "text", "int", "int"], text, overlay, { required: 3 }),
  fn("find_in_set", ["text", "text"], bigint, (s: string, list: string) => list.split(",").indexOf(s) + 1),
  fn("levenshtein", ["text", "text"], bigint, levenshtein),
  fn("chr", ["int"], text, chr),
  fn("to_hex", ["int"], text, toHex),
  fn("concat", ["any"], text, () => "", {
    variadic: true,
    strict: false,
    bind: (a) => (...xs: unknown[]) => {
      let out = "";
      for (let i = 0; i < xs.length; i++) if (xs[i] !== null && xs[i] !== undefined) out += toText(xs[i], a[i]!.type);
      return out;
    },
  }),
  fn("concat_ws", ["text", "any"], text, () => "", {
    variadic: true,
    required: 2,
    strict: false,
    bind: (a) => (sep: unknown, ...xs: unknown[]) => {
      if (sep === null || sep === undefined) return null;
      const parts: string[] = [];
      for (let i = 0; i < xs.length; i++) if (xs[i] !== null && xs[i] !== undefined) parts.push(toText(xs[i], a[i + 1]!.type));
      return parts.join(String(sep));
    },
  }),
  fn("uuid", [], text, () => crypto.randomUUID(), { volatile: true }),
  // regular expressions (Rust syntax)
  fn("regexp_like", ["text", "text", "text"], bool, (s: string, p: string, flags = "") => rustRegex(p, parseFlags(flags, "regexp_like", false)).test(s), {
    required: 2,
    check: (a) => regexArgs(a, 1, 2, "regexp_like", false),
    bind: (a) => {
      const c = constantRegex(a, 1, 2, "regexp_like", false, false);
      return c ? (s: string) => c.re.test(s) : (s: string, p: string, flags = "") => rustRegex(p, parseFlags(flags, "regexp_like", false)).test(s);
    },
  }),
  fn("regexp_match", ["text", "text", "text"], textArray, regexpMatch, {
    required: 2,
    check: (a) => regexArgs(a, 1, 2, "regexp_match", false),
    bind: (a) => {
      const c = constantRegex(a, 1, 2, "regexp_match", false, false);
      return c ? (s: string) => matchGroups(c.re.exec(s)) : regexpMatch;
    },
  }),
  fn("regexp_replace", ["text", "text", "text", "text"], text, regexpReplace, {
    required: 3,
    check: (a) => regexArgs(a, 1, 3, "regexp_replace", true),
    bind: (a) => {
      const c = constantRegex(a, 1, 3, "regexp_replace", true, true);
      if (!c) return regexpReplace;
      const parts = isConst(a[2]) ? compileReplacement(String(lit(a[2]))) : null;
      return (s: string, _p: string, r: string) => replaceWith(s, c.re, parts ?? compileReplacement(r), c.flags.g);
    },
  }),
  fn("regexp_count", ["text", "text", "int", "text"], bigint, regexpCount, { required: 2, check: (a) => regexArgs(a, 1, 3, "regexp_count", false) }),
  fn("regexp_instr", ["text", "text", "int", "int", "text", "int"], bigint, regexpInstr, { required: 2, check: (a) => regexArgs(a, 1, 4, "regexp_instr", false) }),
  // hashes and bytes
  fn("md5", ["text_or_bytes"], text, (s: string | Uint8Array) => createHash("md5").update(asBytes(s)).digest("hex")),
  ...["sha224", "sha256", "sha384", "sha512"].map((name) => fn(name, ["text_or_bytes"], bytes, (s: string | Uint8Array) => digestBytes(s, name))),
  fn("digest", ["text_or_bytes", "text"], bytes, digestBytes, {
    check: (a) => {
      if (isConst(a[1]) && !HASHES[String(lit(a[1])).toLowerCase()]) {
        throw new ExprError(`digest: unsupported algorithm '${lit(a[1])}'; use ${Object.keys(HASHES).join(", ")}`);
      }
    },
  }),
  fn("encode", ["text_or_bytes", "text"], text, encode, {
    check: (a) => {
      if (isConst(a[1]) && !["hex", "base64"].includes(String(lit(a[1])).toLowerCase())) throw new ExprError("encode: use 'hex' or 'base64'");
    },
  }),
  fn("decode", ["text_or_bytes", "text"], bytes, decode, {
    check: (a) => {
      if (isConst(a[1]) && !["hex", "base64"].includes(String(lit(a[1])).toLowerCase())) throw new ExprError("decode: use 'hex' or 'base64'");
    },
  }),
  // date and time (TIMESTAMP is UTC, µs)
  ...["date_trunc", "datetrunc"].map((name) =>
    fn(name, ["text", "timestamp"], timestamp, dateTrunc, {
      check: (a) => {
        if (isConst(a[0])) checkTruncUnit(String(lit(a[0])));
      },
    }),
  ),
  ...["date_part", "datepart"].map((name) =>
    fn(name, ["text", "any"], datePartType, datePartImpl, {
      check: (a) => {
        if (isNullArg(a[1])) return;
        if (a[1]!.type.kind !== "timestamp" && a[1]!.type.kind !== "interval") throw new ExprError(`${name}() needs a TIMESTAMP or INTERVAL as its second argument, got ${typeName(a[1]!.type)}`);
        checkPart(a);
      },
      bind: (a) => (part: string, v: number) => datePartImpl(part, v, a[1]!.type),
    }),
  ),
  fn("date_bin", ["interval", "timestamp", "timestamp"], timestamp, dateBin, {
    required: 2,
    check: (a) => {
      if (isConst(a[0]) && (lit(a[0]) as number) <= 0) throw new ExprError("date_bin: the stride must be a positive interval");
    },
  }),
  timestampFrom(1e6, "to_timestamp"),
  timestampFrom(1e6, "to_timestamp_seconds"),
  timestampFrom(1e3, "to_timestamp_millis"),
  timestampFrom(1, "to_timestamp_micros"),
  timestampFrom(1e-3, "to_timestamp_nanos"),
  fn("from_unixtime", ["int"], timestamp, (v: number) => checkInt(v * 1e6, bigint, () => `from_unixtime(${v})`)),
  fn("to_unixtime", ["any"], bigint, (v: unknown) => v, {
    check: (a) => {
      const k = a[0]!.type.kind;
      if (isNullArg(a[0])) return;
      if (k !== "timestamp" && k !== "string" && k !== "json" && k !== "int") throw new ExprError(`to_unixtime() takes a TIMESTAMP or TEXT, got ${typeName(a[0]!.type)}`);
    },
    bind: (a) => (v: unknown) => toUnixtime(v, a[0]!.type),
  }),
  ...["to_char", "date_format"].map((name) => fn(name, ["timestamp", "text"], text, strftime, { check: checkFormat })),
  fn("arrow_typeof", ["any"], text, () => null, { strict: false, bind: (a) => () => arrowTypeName(a[0]!.type) }),
  fn("version", [], text, () => "Runnel (DataFusion-compatible SQL)"),
  fn("now", [], timestamp, () => Date.now() * 1000, { volatile: true }),
  // Flink's PROCTIME(): the wall clock where the row is evaluated (a table's `pt AS proctime()` column: when the source read it).
  fn("proctime", [], timestamp, () => Date.now() * 1000, { volatile: true }),
  fn("current_timestamp", [], timestamp, () => Date.now() * 1000, { volatile: true }),
  // JSON: datafusion-functions-json
  // Arroyo serialises json_get's value (a JSON union) to text: a TEXT column holding JSON, e.g. "\"pickup\"" for a string.
  jsonFn("json_get", text, json.jsonGet),
  jsonFn("json_get_str", text, json.jsonGetStr),
  jsonFn("json_get_int", bigint, json.jsonGetInt),
  jsonFn("json_get_float", double, json.jsonGetFloat),
  jsonFn("json_get_bool", bool, json.jsonGetBool),
  jsonFn("json_get_json", text, json.jsonGetJson),
  jsonFn("json_get_array", textArray, json.jsonGetArray),
  jsonFn("json_as_text", text, json.jsonAsText),
  jsonFn("json_length", bigint, json.jsonLength),
  jsonFn("json_object_keys", textArray, json.jsonObjectKeys),
  jsonFn("json_contains", bool, (j, ...keys) => (j === null ? false : json.jsonContains(j, ...keys)), false),
  // JSON: Arroyo's JSONPath functions
  fn("extract_json", ["text", "text"], textArray, json.extractJson, { check: (a) => checkPathLiteral(a, "extract_json") }),
  fn("extract_json_string", ["text", "text"], text, json.extractJsonString, { check: (a) => checkPathLiteral(a, "extract_json_string") }),
  fn("get_first_json_object", ["text", "text"], text, json.getFirstJsonObject, { check: (a) => checkPathLiteral(a, "get_first_json_object") }),
  // arrays
  fn("array_length", ["array"], bigint, (a: unknown[]) => a.length),
  ...["array_contains", "array_has"].map((name) => fn(name, ["array", "any"], bool, (a: unknown[], x: unknown) => a.includes(x))),
  fn("array_element", ["array", "int"], (a) => (a[0]!.type.kind === "array" ? a[0]!.type.element : text), arrayElement),
  ...ARRAY_FUNCTIONS,
  ...MAP_FUNCTIONS,
];

export const SCALAR_FUNCTIONS: ReadonlyMap<string, ScalarFunction> = new Map(list.map((f) => [f.name, f]));

/** Argument descriptions for the library from resolved arguments: types, and values of constants. */
export function argInfos(args: Expr[]): ArgInfo[] {
  return args.map((a) => (a.kind === "literal" ? { type: a.type, literal: { value: a.value } } : { type: a.type }));
}

/** The implementation for a call with these arguments. */
export function implementation(f: ScalarFunction, args: ArgInfo[]): Impl {
  if (f.bind) return f.bind(args);
  return f.impl!;
}

/**
 * Functions DataFusion (and so Arroyo) has that Runnel does not, with what to
 * write instead, so the planner can say more than "unknown function".
 */
export const UNSUPPORTED_FUNCTIONS: Record<string, string> = {
  union_extract: "Runnel has no UNION type",
  union_tag: "Runnel has no UNION type",
  to_date: "Runnel has no DATE type; date_trunc('day', ts) gives midnight as a TIMESTAMP, to_char(ts, '%Y-%m-%d') the date as text",
  make_date: "Runnel has no DATE type; write to_timestamp('2024-01-31')",
  current_date: "Runnel has no DATE type; write date_trunc('day', now())",
  current_time: "Runnel has no TIME type; write to_char(now(), '%H:%M:%S')",
  today: "Runnel has no DATE type; write date_trunc('day', now())",
  to_local_time: "Runnel's TIMESTAMP values are UTC without zone",
  arrow_cast: "write CAST(x AS type)",
  array_agg: "array_agg() is not supported as an aggregate",
};
