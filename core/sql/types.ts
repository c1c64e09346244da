/** SQL type names → engine types, for DDL (from tokens) and CAST targets (from the parser's AST). */
import { t, typeName, type Field, type SqlType } from "../plugin-api/index.ts";
import { isPunct, isWord, type Token } from "./lexer.ts";
import { SqlError } from "./errors.ts";

const SIMPLE: Record<string, SqlType> = {
  boolean: t.boolean(),
  bool: t.boolean(),
  tinyint: t.int(),
  smallint: t.int(),
  int: t.int(),
  integer: t.int(),
  int2: t.int(),
  int4: t.int(),
  bigint: t.bigint(),
  int8: t.bigint(),
  float: t.float(),
  real: t.float(),
  float4: t.float(),
  double: t.double(),
  float8: t.double(),
  "double precision": t.double(),
  text: t.string(),
  varchar: t.string(),
  string: t.string(),
  char: t.string(),
  character: t.string(),
  "character varying": t.string(),
  timestamp: t.timestamp(),
  timestamptz: t.timestamp(),
  datetime: t.timestamp(),
  date: t.timestamp(),
  bytea: t.bytes(),
  bytes: t.bytes(),
  binary: t.bytes(),
  varbinary: t.bytes(),
  blob: t.bytes(),
  json: t.json(),
  jsonb: t.json(),
  interval: t.interval(),
};

export const TYPE_NAMES = Object.keys(SIMPLE);

function unsigned(type: SqlType): SqlType {
  return type.kind === "int" ? { ...type, unsigned: true } : type;
}

/** Type from a CAST target of node-sql-parser: `{ dataType, length, scale, suffix }`. */
export function typeFromCastTarget(target: any, offset: number | null): SqlType {
  const raw = String(target?.dataType ?? "").toLowerCase().trim();
  const name = raw.replace(/\s+/g, " ");
  const suffix: string[] = (target?.suffix ?? []).map((s: unknown) => String(s).toLowerCase());
  if (name === "decimal" || name === "numeric") {
    return { kind: "decimal", precision: Number(target.length ?? 38), scale: Number(target.scale ?? 0) };
  }
  const base = SIMPLE[name] ?? SIMPLE[name.replace(/ unsigned$/, "")];
  if (!base) throw new SqlError(`unknown type ${target?.dataType}; known types: ${TYPE_NAMES.join(", ")}`, offset);
  return suffix.includes("unsigned") || name.endsWith(" unsigned") ? unsigned(base) : base;
}

/**
 * Reads a type starting at `tokens[i]`; returns the type and the index after it.
 * Accepts `BIGINT UNSIGNED`, `DECIMAL(10, 2)`, `VARCHAR(20)`, `DOUBLE PRECISION`,
 * `TIMESTAMP WITH TIME ZONE`, `TEXT[]`, `ARRAY<INT>`, `STRUCT<a INT, b TEXT>`, `ROW(a INT)`.
 */
export function parseTypeTokens(tokens: Token[], i: number): { type: SqlType; next: number } {
  const tok = tokens[i];
  if (!tok || (tok.kind !== "word" && tok.kind !== "quoted")) {
    throw new SqlError("expected a column type", tok?.start ?? null);
  }
  let name = tok.text.toLowerCase();
  let next = i + 1;
  let type: SqlType;
  if (name === "map" && tokens[next]?.text === "<") {
    // MAP<key, value>: keys are text or numbers (a pair list holds any, but JSON and Avro spell keys as text).
    const key = parseTypeTokens(tokens, next + 1);
    if (!isPunct(tokens[key.next], ",")) throw new SqlError("expected , between the key and value types of MAP<key, value>", tokens[key.next]?.start ?? tok.end);
    const value = parseTypeTokens(tokens, key.next + 1);
    if (tokens[value.next]?.text !== ">") throw new SqlError("expected > to close MAP<key, value>", tokens[value.next]?.start ?? tok.end);
    if (!["string", "int", "float", "decimal", "boolean", "timestamp"].includes(key.type.kind)) {
      throw new SqlError(`MAP keys of type ${typeName(key.type)} are not supported; use TEXT or a number`, tokens[next + 1]!.start);
    }
    type = t.map(key.type, value.type);
    next = value.next + 1;
  } else if (name === "array" && tokens[next]?.text === "<") {
    const inner = parseTypeTokens(tokens, next + 1);
    if (tokens[inner.next]?.text !== ">") throw new SqlError("expected > to close ARRAY<...>", tokens[inner.next]?.start ?? tok.end);
    type = t.array(inner.type);
    next = inner.next + 1;
  } else if ((name === "struct" && tokens[next]?.text === "<") || (name === "row" && isPunct(tokens[next], "("))) {
    const close = name === "struct" ? ">" : ")";
    next++;
    const fields: Field[] = [];
    for (;;) {
      const f = tokens[next];
      if (!f || (f.kind !== "word" && f.kind !== "quoted")) throw new SqlError("expected a field name", f?.start ?? tok.end);
      const ft = parseTypeTokens(tokens, next + 1);
      next = ft.next;
      let nullable = true;
      if (isWord(tokens[next], "not") && isWord(tokens[next + 1], "null")) {
        nullable = false;
        next += 2;
      }
      fields.push({ name: f.text, type: ft.type, nullable });
      if (isPunct(tokens[next], ",")) {
        next++;
        continue;
      }
      if (tokens[next]?.text === close) {
        next++;
        break;
      }
      throw new SqlError(`expected , or ${close} in ${name.toUpperCase()} type`, tokens[next]?.start ?? tok.end);
    }
    type = t.struct(fields);
  } else {
    if (name === "double" && isWord(tokens[next], "precision")) {
      next++;
    } else if (name === "character" && isWord(tokens[next], "varying")) {
      name = "character varying";
      next++;
    }
    let precision: number[] = [];
    if (isPunct(tokens[next], "(")) {
      let j = next + 1;
      while (tokens[j] && !isPunct(tokens[j], ")")) {
        if (tokens[j]!.kind === "number") precision.push(Number(tokens[j]!.text));
        j++;
      }
      if (!tokens[j]) throw new SqlError("expected ) after type parameters", tokens[next]!.start);
      next = j + 1;
    }
    if (name === "decimal" || name === "numeric") {
      type = { kind: "decimal", precision: precision[0] ?? 38, scale: precision[1] ?? 0 };
    } else {
      const base = SIMPLE[name];
      if (!base) throw new SqlError(`unknown type ${tok.text}; known types: ${TYPE_NAMES.join(", ")}, ARRAY<T>, STRUCT<...>`, tok.start);
      type = base;
    }
    if (isWord(tokens[next], "unsigned")) {
      if (type.kind !== "int") throw new SqlError(`UNSIGNED applies to integer types, not ${tok.text}`, tokens[next]!.start);
      type = unsigned(type);
      next++;
    }
    if (type.kind === "timestamp" && isWord(tokens[next], "with", "without") && isWord(tokens[next + 1], "time") && isWord(tokens[next + 2], "zone")) {
      next += 3;
    }
  }
  while (isPunct(tokens[next], "[") && isPunct(tokens[next + 1], "]")) {
    type = t.array(type);
    next += 2;
  }
  return { type, next };
}

export function isNumeric(type: SqlType): boolean {
  return type.kind === "int" || type.kind === "float" || type.kind === "decimal";
}

/** Whether a value of `from` can be written where `to` is expected without an explicit cast. */
export function assignable(from: SqlType, to: SqlType): boolean {
  if (from.kind === to.kind) return true;
  if (isNumeric(from) && isNumeric(to)) return true;
  if ((from.kind === "string" && to.kind === "json") || (from.kind === "json" && to.kind === "string")) return true;
  return false;
}

/**
 * How a query's column of type `from` goes into a sink column of type `to`:
 * as is, through a cast that cannot lose a value (integer widening, numbers,
 * booleans and timestamps to text), or not without an explicit, possibly lossy
 * CAST. Runnel holds every integer and float as a JS double, so an integer into
 * DOUBLE keeps every value Runnel can hold. An unsigned integer into a signed one
 * of the same width is a checked cast: a value out of range stops the job.
 */
export function sinkAssignment(from: SqlType, to: SqlType): "same" | "cast" | "lossy" {
  switch (to.kind) {
    case "int":
      if (from.kind !== "int") return "lossy";
      if (from.bits === to.bits && !!from.unsigned === !!to.unsigned) return "same";
      if (to.unsigned && !from.unsigned) return "lossy";
      // BIGINT UNSIGNED (impulse's counter) into BIGINT: a checked cast, failing on values past 2^63 − 1.
      if (!to.unsigned && from.unsigned) return from.bits <= to.bits ? "cast" : "lossy";
      return from.bits < to.bits ? "cast" : "lossy";
    case "float":
      if (from.kind === "float") return from.bits === to.bits ? "same" : from.bits < to.bits ? "cast" : "lossy";
      if (from.kind === "int") return to.bits === 64 || from.bits < 32 ? "cast" : "lossy";
      return "lossy";
    case "decimal":
      if (from.kind === "decimal") {
        if (from.scale === to.scale && from.precision === to.precision) return "same";
        return from.scale <= to.scale && from.precision - from.scale <= to.precision - to.scale ? "cast" : "lossy";
      }
      if (from.kind === "int") return to.precision - to.scale >= (from.bits === 32 ? 10 : 20) ? "cast" : "lossy";
      return "lossy";
    case "string":
      if (from.kind === "string") return "same";
      return ["int", "float", "decimal", "boolean", "timestamp", "json"].includes(from.kind) ? "cast" : "lossy";
    case "json":
      return from.kind === "json" ? "same" : from.kind === "string" ? "cast" : "lossy";
    case "array":
      if (from.kind !== "array") return "lossy";
      return sinkAssignment(from.element, to.element) === "same" ? "same" : "lossy";
    case "struct": {
      if (from.kind !== "struct" || from.fields.length !== to.fields.length) return "lossy";
      const same = from.fields.every((f, i) => f.name === to.fields[i]!.name && sinkAssignment(f.type, to.fields[i]!.type) === "same");
      return same ? "same" : "lossy";
    }
    case "map":
      if (from.kind !== "map") return "lossy";
      return sinkAssignment(from.key, to.key) === "same" && sinkAssignment(from.value, to.value) === "same" ? "same" : "lossy";
    default:
      return from.kind === to.kind ? "same" : "lossy";
  }
}
