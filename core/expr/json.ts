/**
 * JSON functions, with the semantics of the engines Arroyo runs:
 *
 * - `->`, `->>` and the json_get family follow datafusion-functions-json: a
 *   lazy scan of the text (like its jiter parser) that stops at the value the
 *   path names, so text after it is never looked at; keys match the first
 *   occurrence; a negative index or a NULL path element finds nothing.
 *   Values come back as written in the input (`->` gives the JSON text of the
 *   value, strings with their quotes).
 * - Arroyo's own extract_json, extract_json_string and get_first_json_object
 *   parse the whole document (serde_json: invalid JSON gives NULL) and take an
 *   RFC 9535 JSONPath (serde_json_path); results are serialised as serde_json
 *   does (compact, keys in input order, floats as `1.0`).
 */
import { checkInt, ExprError, floatText } from "./values.ts";

// ---------------------------------------------------------------- lazy scanning

const WS = new Set([" ", "\t", "\n", "\r"]);

function skipWs(s: string, i: number): number {
  while (i < s.length && WS.has(s[i]!)) i++;
  return i;
}

/** End of the string starting at `i` (a quote), or -1 if it is not valid JSON. */
function skipString(s: string, i: number): number {
  i++;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c === 0x22) return i + 1;
    if (c === 0x5c) {
      const e = s[i + 1];
      if (e === "u") {
        if (!/^[0-9a-fA-F]{4}$/.test(s.slice(i + 2, i + 6))) return -1;
        i += 6;
      } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
      else return -1;
      continue;
    }
    if (c < 0x20) return -1;
    i++;
  }
  return -1;
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

function skipNumber(s: string, i: number): number {
  NUMBER.lastIndex = i;
  const m = NUMBER.exec(s);
  if (!m || m[0].length === 0) return -1;
  const end = i + m[0].length;
  // A number runs to a delimiter: `1x` and `01` are not numbers.
  const next = s[end];
  return next === undefined || next === "," || next === "]" || next === "}" || WS.has(next) ? end : -1;
}

/** End of the JSON value starting at `i` (after whitespace), or -1 if it is not valid. Iterative: depth costs no stack. */
export function skipValue(s: string, start: number): number {
  const stack: string[] = [];
  let i = skipWs(s, start);
  for (;;) {
    const c = s[i];
    // One value at i.
    if (c === "{" || c === "[") {
      stack.push(c === "{" ? "}" : "]");
      i = skipWs(s, i + 1);
      if (s[i] === stack[stack.length - 1]) {
        stack.pop();
        i++;
      } else {
        if (c === "{") {
          i = expectKey(s, i);
          if (i < 0) return -1;
        }
        continue;
      }
    } else if (c === '"') {
      i = skipString(s, i);
    } else if (c === "t" || c === "f" || c === "n") {
      const word = c === "t" ? "true" : c === "f" ? "false" : "null";
      i = s.startsWith(word, i) ? i + word.length : -1;
    } else if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) {
      i = skipNumber(s, i);
    } else {
      return -1;
    }
    if (i < 0) return -1;
    // After a value: close containers, or move to the next item.
    for (;;) {
      if (stack.length === 0) return i;
      i = skipWs(s, i);
      const close = stack[stack.length - 1]!;
      if (s[i] === ",") {
        i = skipWs(s, i + 1);
        if (close === "}") {
          i = expectKey(s, i);
          if (i < 0) return -1;
        }
        break;
      }
      if (s[i] !== close) return -1;
      stack.pop();
      i++;
    }
  }
}

/** Skips `"key":` and whitespace; the index of the value, or -1. */
function expectKey(s: string, i: number): number {
  if (s[i] !== '"') return -1;
  i = skipString(s, i);
  if (i < 0) return -1;
  i = skipWs(s, i);
  if (s[i] !== ":") return -1;
  return skipWs(s, i + 1);
}

/** One step of a json_get path: an object key, an array index, or nothing (a NULL or negative element). */
export type JsonKey = string | number | null;

export interface Found {
  start: number;
  end: number;
  /** The first character of the value: `{ [ " t f n` or a digit/minus for numbers. */
  first: string;
}

/**
 * Finds the value `path` names in `text` without reading past it, or null when
 * the path does not exist, a step does not fit the value (a key on an array),
 * or the text is not JSON where it is read.
 */
export function jsonFind(text: string, path: JsonKey[]): Found | null {
  let i = skipWs(text, 0);
  for (const step of path) {
    if (step === null) return null;
    if (typeof step === "string") {
      if (text[i] !== "{") return null;
      i = skipWs(text, i + 1);
      if (text[i] === "}") return null;
      for (;;) {
        if (text[i] !== '"') return null;
        const keyEnd = skipString(text, i);
        if (keyEnd < 0) return null;
        const key = decodeString(text.slice(i, keyEnd));
        i = skipWs(text, keyEnd);
        if (text[i] !== ":") return null;
        i = skipWs(text, i + 1);
        if (key === step) break;
        i = skipValue(text, i);
        if (i < 0) return null;
        i = skipWs(text, i);
        if (text[i] !== ",") return null;
        i = skipWs(text, i + 1);
      }
    } else {
      if (text[i] !== "[" || step < 0 || !Number.isInteger(step)) return null;
      i = skipWs(text, i + 1);
      if (text[i] === "]") return null;
      for (let n = 0; n < step; n++) {
        i = skipValue(text, i);
        if (i < 0) return null;
        i = skipWs(text, i);
        if (text[i] !== ",") return null;
        i = skipWs(text, i + 1);
      }
    }
  }
  const end = skipValue(text, i);
  if (end < 0) return null;
  return { start: i, end, first: text[i]! };
}

function decodeString(raw: string): string {
  return raw.includes("\\") ? (JSON.parse(raw) as string) : raw.slice(1, -1);
}

const isNumberStart = (c: string) => c === "-" || (c >= "0" && c <= "9");

function find(json: unknown, path: JsonKey[]): { text: string; found: Found } | null {
  if (typeof json !== "string") return null;
  const found = jsonFind(json, path);
  return found ? { text: json, found } : null;
}

/** json_get / `->`: the JSON text of the value; NULL for a missing value or JSON null. */
export function jsonGet(json: unknown, ...path: JsonKey[]): string | null {
  const hit = find(json, path);
  if (!hit || hit.found.first === "n") return null;
  return hit.text.slice(hit.found.start, hit.found.end);
}

/** json_get_json: the JSON text of the value, `null` included. */
export function jsonGetJson(json: unknown, ...path: JsonKey[]): string | null {
  const hit = find(json, path);
  return hit ? hit.text.slice(hit.found.start, hit.found.end) : null;
}

/** json_as_text / `->>`: strings unquoted, other values as JSON text, JSON null as NULL. */
export function jsonAsText(json: unknown, ...path: JsonKey[]): string | null {
  const hit = find(json, path);
  if (!hit || hit.found.first === "n") return null;
  const raw = hit.text.slice(hit.found.start, hit.found.end);
  return hit.found.first === '"' ? decodeString(raw) : raw;
}

/** json_get_str: the value if it is a string. */
export function jsonGetStr(json: unknown, ...path: JsonKey[]): string | null {
  const hit = find(json, path);
  if (!hit || hit.found.first !== '"') return null;
  return decodeString(hit.text.slice(hit.found.start, hit.found.end));
}

const BIGINT = { kind: "int", bits: 64 } as const;

/** json_get_int: the value if it is a whole number written without fraction or exponent. */
export function jsonGetInt(json: unknown, ...path: JsonKey[]): number | null {
  const hit = find(json, path);
  if (!hit || !isNumberStart(hit.found.first)) return null;
  const raw = hit.text.slice(hit.found.start, hit.found.end);
  if (!/^-?\d+$/.test(raw)) return null;
  // Beyond 2^63 DataFusion gives NULL; beyond 2^53 Runnel cannot hold the value exactly.
  if (raw.replace("-", "").length > 19 && BigInt(raw) > 9223372036854775807n) return null;
  return checkInt(Number(raw), BIGINT, () => `json_get_int(…) reading ${raw}`);
}

/** json_get_float: the value if it is a number. */
export function jsonGetFloat(json: unknown, ...path: JsonKey[]): number | null {
  const hit = find(json, path);
  if (!hit || !isNumberStart(hit.found.first)) return null;
  return Number(hit.text.slice(hit.found.start, hit.found.end));
}

/** json_get_bool: the value if it is true or false. */
export function jsonGetBool(json: unknown, ...path: JsonKey[]): boolean | null {
  const hit = find(json, path);
  if (!hit) return null;
  return hit.found.first === "t" ? true : hit.found.first === "f" ? false : null;
}

/** json_length: the number of items of an array or keys of an object. */
export function jsonLength(json: unknown, ...path: JsonKey[]): number | null {
  const items = containerItems(json, path);
  return items ? items.length : null;
}

/** json_contains: whether the path exists (even holding JSON null); false, never NULL, otherwise. */
export function jsonContains(json: unknown, ...path: JsonKey[]): boolean {
  return find(json, path) !== null;
}

/** json_get_array: the JSON text of each item of an array. */
export function jsonGetArray(json: unknown, ...path: JsonKey[]): string[] | null {
  const items = containerItems(json, path);
  return items && items.kind === "array" ? items.values : null;
}

/** json_object_keys: the keys of an object, in input order. */
export function jsonObjectKeys(json: unknown, ...path: JsonKey[]): string[] | null {
  const items = containerItems(json, path);
  return items && items.kind === "object" ? items.keys : null;
}

function containerItems(json: unknown, path: JsonKey[]): { kind: "array" | "object"; length: number; values: string[]; keys: string[] } | null {
  const hit = find(json, path);
  if (!hit || (hit.found.first !== "[" && hit.found.first !== "{")) return null;
  const s = hit.text;
  const kind = hit.found.first === "[" ? "array" : "object";
  const values: string[] = [];
  const keys: string[] = [];
  let i = skipWs(s, hit.found.start + 1);
  if (s[i] === "]" || s[i] === "}") return { kind, length: 0, values, keys };
  for (;;) {
    if (kind === "object") {
      const keyEnd = skipString(s, i);
      keys.push(decodeString(s.slice(i, keyEnd)));
      i = skipWs(s, skipWs(s, keyEnd) + 1);
    }
    const end = skipValue(s, i);
    values.push(s.slice(i, end));
    i = skipWs(s, end);
    if (s[i] !== ",") break;
    i = skipWs(s, i + 1);
  }
  return { kind, length: values.length, values, keys };
}

// ---------------------------------------------------------------- full parsing (serde_json)

/** A JSON number as written: ints stay exact text, floats are read as DOUBLE (serde_json's Number). */
class JsonNumber {
  constructor(
    readonly raw: string,
    readonly isInt: boolean,
  ) {}
  serialize(): string {
    if (this.isInt) {
      const big = BigInt(this.raw);
      if (big <= 18446744073709551615n && big >= -9223372036854775808n) return big.toString();
    }
    return floatText(Number(this.raw));
  }
}

export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | Map<string, JsonValue>;

/** serde_json's nesting limit: deeper documents are invalid, so Arroyo's functions give NULL. */
const MAX_DEPTH = 128;

class Invalid extends Error {}

/** Parses a whole JSON document (whitespace around it allowed), or returns undefined if it is not valid JSON. */
export function parseJsonDocument(text: string): JsonValue | undefined {
  let i = 0;
  const value = (depth: number): JsonValue => {
    i = skipWs(text, i);
    const c = text[i];
    if (c === "{" || c === "[") {
      if (depth >= MAX_DEPTH) throw new Invalid();
      i = skipWs(text, i + 1);
      if (c === "[") {
        const arr: JsonValue[] = [];
        if (text[i] === "]") {
          i++;
          return arr;
        }
        for (;;) {
          arr.push(value(depth + 1));
          i = skipWs(text, i);
          if (text[i] === ",") i++;
          else if (text[i] === "]") {
            i++;
            return arr;
          } else throw new Invalid();
        }
      }
      const obj = new Map<string, JsonValue>();
      if (text[i] === "}") {
        i++;
        return obj;
      }
      for (;;) {
        i = skipWs(text, i);
        if (text[i] !== '"') throw new Invalid();
        const end = skipString(text, i);
        if (end < 0) throw new Invalid();
        const key = decodeString(text.slice(i, end));
        i = skipWs(text, end);
        if (text[i] !== ":") throw new Invalid();
        i++;
        obj.set(key, value(depth + 1));
        i = skipWs(text, i);
        if (text[i] === ",") i++;
        else if (text[i] === "}") {
          i++;
          return obj;
        } else throw new Invalid();
      }
    }
    if (c === '"') {
      const end = skipString(text, i);
      if (end < 0) throw new Invalid();
      const s = decodeString(text.slice(i, end));
      i = end;
      return s;
    }
    for (const [word, v] of [["true", true], ["false", false], ["null", null]] as const) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v;
      }
    }
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m || m[0].length === 0) throw new Invalid();
    i += m[0].length;
    return new JsonNumber(m[0], !/[.eE]/.test(m[0]));
  };
  try {
    const v = value(0);
    if (skipWs(text, i) !== text.length) return undefined;
    return v;
  } catch (err) {
    if (err instanceof Invalid || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

/** serde_json's compact text of a value. */
export function serializeJson(v: JsonValue): string {
  if (v === null) return "null";
  if (typeof v === "boolean") return String(v);
  if (typeof v === "string") return JSON.stringify(v);
  if (v instanceof JsonNumber) return v.serialize();
  if (Array.isArray(v)) return "[" + v.map(serializeJson).join(",") + "]";
  let out = "{";
  let first = true;
  for (const [k, x] of v) {
    out += (first ? "" : ",") + JSON.stringify(k) + ":" + serializeJson(x);
    first = false;
  }
  return out + "}";
}

// ---------------------------------------------------------------- JSONPath (RFC 9535, without filters)

type Selector =
  | { kind: "name"; name: string }
  | { kind: "wildcard" }
  | { kind: "index"; index: number }
  | { kind: "slice"; start: number | null; end: number | null; step: number | null };

interface Segment {
  descendant: boolean;
  selectors: Selector[];
}

const pathCache = new Map<string, Segment[]>();

/** Parses a JSONPath; throws an ExprError saying what is wrong (filters `[?...]` are not supported). */
export function compileJsonPath(path: string): Segment[] {
  const cached = pathCache.get(path);
  if (cached) return cached;
  const fail = (at: number, what: string): never => {
    throw new ExprError(`invalid JSON path '${path}' at position ${at + 1}: ${what}; paths look like $.a.b[0], $.items[*].id, $..name`);
  };
  if (path[0] !== "$") fail(0, "a path starts with $");
  const segments: Segment[] = [];
  let i = 1;
  const nameShorthand = /[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*/y;
  const int = /-?(?:0|[1-9]\d*)/y;
  const readInt = (): number | null => {
    int.lastIndex = i;
    const m = int.exec(path);
    if (!m) return null;
    if (m[0] === "-0") fail(i, "-0 is not an index");
    i += m[0].length;
    return Number(m[0]);
  };
  const ws = () => {
    while (i < path.length && " \t\n\r".includes(path[i]!)) i++;
  };
  while (i < path.length) {
    let descendant = false;
    if (path.startsWith("..", i)) {
      descendant = true;
      i += 2;
    } else if (path[i] === ".") {
      i++;
    } else if (path[i] !== "[") {
      fail(i, `unexpected '${path[i]}'`);
    }
    if (path[i] === "*") {
      segments.push({ descendant, selectors: [{ kind: "wildcard" }] });
      i++;
      continue;
    }
    if (path[i] !== "[") {
      nameShorthand.lastIndex = i;
      const m = nameShorthand.exec(path);
      if (!m) fail(i, "expected a member name, * or [");
      segments.push({ descendant, selectors: [{ kind: "name", name: m![0] }] });
      i += m![0].length;
      continue;
    }
    i++;
    const selectors: Selector[] = [];
    for (;;) {
      ws();
      const c = path[i];
      if (c === "'" || c === '"') {
        let j = i + 1;
        let name = "";
        while (j < path.length && path[j] !== c) {
          if (path[j] === "\\") {
            const e = path[j + 1];
            const simple: Record<string, string> = { b: "\b", f: "\f", n: "\n", r: "\r", t: "\t", "/": "/", "\\": "\\", "'": "'", '"': '"' };
            if (e === "u" && /^[0-9a-fA-F]{4}$/.test(path.slice(j + 2, j + 6))) {
              name += String.fromCharCode(parseInt(path.slice(j + 2, j + 6), 16));
              j += 6;
            } else if (e !== undefined && e in simple) {
              name += simple[e];
              j += 2;
            } else fail(j, "invalid escape in a name");
          } else name += path[j++];
        }
        if (path[j] !== c) fail(i, "unterminated name");
        selectors.push({ kind: "name", name });
        i = j + 1;
      } else if (c === "*") {
        selectors.push({ kind: "wildcard" });
        i++;
      } else if (c === "?") {
        fail(i, "filter expressions [?...] are not supported by Runnel");
      } else {
        const start = readInt();
        ws();
        if (path[i] === ":") {
          i++;
          ws();
          const end = readInt();
          ws();
          let step: number | null = null;
          if (path[i] === ":") {
            i++;
            ws();
            step = readInt();
          }
          selectors.push({ kind: "slice", start, end, step });
        } else if (start !== null) {
          selectors.push({ kind: "index", index: start });
        } else {
          fail(i, "expected a name, index, slice or *");
        }
      }
      ws();
      if (path[i] === ",") {
        i++;
        continue;
      }
      if (path[i] === "]") {
        i++;
        break;
      }
      fail(i, "expected , or ]");
    }
    segments.push({ descendant, selectors });
  }
  if (pathCache.size > 1000) pathCache.clear();
  pathCache.set(path, segments);
  return segments;
}

function select(v: JsonValue, s: Selector, out: JsonValue[]): void {
  switch (s.kind) {
    case "name":
      if (v instanceof Map && v.has(s.name)) out.push(v.get(s.name)!);
      return;
    case "wildcard":
      if (Array.isArray(v)) out.push(...v);
      else if (v instanceof Map) out.push(...v.values());
      return;
    case "index":
      if (Array.isArray(v)) {
        const i = s.index < 0 ? v.length + s.index : s.index;
        if (i >= 0 && i < v.length) out.push(v[i]!);
      }
      return;
    case "slice": {
      if (!Array.isArray(v)) return;
      const len = v.length;
      const step = s.step ?? 1;
      if (step === 0) return;
      const norm = (x: number) => (x >= 0 ? x : len + x);
      if (step > 0) {
        const lo = Math.min(Math.max(norm(s.start ?? 0), 0), len);
        const hi = Math.min(Math.max(norm(s.end ?? len), 0), len);
        for (let i = lo; i < hi; i += step) out.push(v[i]!);
      } else {
        const hi = Math.min(Math.max(norm(s.start ?? len - 1), -1), len - 1);
        const lo = Math.min(Math.max(s.end === null ? -1 : norm(s.end), -1), len - 1);
        for (let i = hi; i > lo; i += step) out.push(v[i]!);
      }
    }
  }
}

function applySegment(v: JsonValue, seg: Segment, out: JsonValue[]): void {
  for (const s of seg.selectors) select(v, s, out);
  if (!seg.descendant) return;
  const children = Array.isArray(v) ? v : v instanceof Map ? [...v.values()] : [];
  for (const child of children) applySegment(child, seg, out);
}

/** The nodes a JSONPath selects, in RFC 9535 order. */
export function jsonPathQuery(value: JsonValue, path: string): JsonValue[] {
  let current: JsonValue[] = [value];
  for (const seg of compileJsonPath(path)) {
    const next: JsonValue[] = [];
    for (const v of current) applySegment(v, seg, next);
    current = next;
  }
  return current;
}

/** extract_json: every match as JSON text; NULL when the input is not JSON. */
export function extractJson(json: string, path: string): string[] | null {
  const doc = parseJsonDocument(json);
  return doc === undefined ? null : jsonPathQuery(doc, path).map(serializeJson);
}

/** extract_json_string: the first match if it is a string. */
export function extractJsonString(json: string, path: string): string | null {
  const doc = parseJsonDocument(json);
  if (doc === undefined) return null;
  const first = jsonPathQuery(doc, path)[0];
  return typeof first === "string" ? first : null;
}

/** get_first_json_object: the first match as JSON text. */
export function getFirstJsonObject(json: string, path: string): string | null {
  const doc = parseJsonDocument(json);
  if (doc === undefined) return null;
  const hits = jsonPathQuery(doc, path);
  return hits.length > 0 ? serializeJson(hits[0]!) : null;
}
