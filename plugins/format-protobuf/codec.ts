/**
 * Protobuf messages ↔ rows, on top of protobufjs (runtime .proto parsing,
 * generated decoders and encoders). Columns match message fields by name
 * (exactly, else ignoring case); fields without a column are skipped.
 * Proto3 scalars without presence read as their defaults (0, "", false), as
 * protobuf defines; message fields and `optional`/oneof members that are
 * absent read as NULL. int64s become numbers, enums their names in TEXT
 * columns (numbers in integer columns), google.protobuf.Timestamp a TIMESTAMP,
 * wrapper types their value.
 */
import protobuf from "protobufjs";
import descriptor from "protobufjs/ext/descriptor/index.js";
import { typeName, type Field, type Row, type SqlType } from "../../core/plugin-api/index.ts";

// int64s are read as numbers rather than Long objects (Runnel holds numbers as doubles anyway):
// an object per int64 value was a fifth of decoding time.
protobuf.util.Long = null as any;
protobuf.configure();

export type PbType = protobuf.Type;
type Convert = (v: any) => unknown;

const COMMON = ["any", "duration", "empty", "field_mask", "struct", "timestamp", "wrappers"];

/** A root with protobuf's well-known types (google/protobuf/*.proto), which schemas import without sending. */
function newRoot(): protobuf.Root {
  const root = new protobuf.Root();
  for (const name of COMMON) {
    const json = (protobuf.common as any).get(`google/protobuf/${name}.proto`);
    if (json) root.addJSON(json.nested);
  }
  return root;
}

/** A schema file: .proto text, or (as some clients register them) a base64 FileDescriptorProto. */
export interface ProtoFile {
  text: string;
}

/** Full names of the messages a file declares, in declaration order, with their nested messages (for Confluent message indexes). */
export interface ParsedSchema {
  root: protobuf.Root;
  /** Top-level message names of the main file, in order, fully qualified. */
  messages: string[];
}

const looksLikeProtoText = (s: string) => /\b(message|syntax|package|enum)\b/.test(s);

function addFile(root: protobuf.Root, text: string, what: string): string[] {
  if (looksLikeProtoText(text)) {
    let parsed: protobuf.IParserResult;
    try {
      parsed = protobuf.parse(text, root, { keepCase: true, alternateCommentMode: true });
    } catch (err) {
      throw new Error(`${what} is not a valid .proto file: ${(err as Error).message}`);
    }
    // The messages this file declared, in order: parsed again into a scratch root to tell them from other files'.
    const own = protobuf.parse(text, new protobuf.Root(), { keepCase: true, alternateCommentMode: true });
    const ownScope = (own.package ? own.root.lookup(own.package) : own.root) as protobuf.Namespace;
    return ownScope.nestedArray.filter((n) => n instanceof protobuf.Type).map((n) => (parsed.package ? `${parsed.package}.${n.name}` : n.name));
  }
  let fdp: any;
  try {
    fdp = (descriptor as any).FileDescriptorProto.decode(Buffer.from(text.trim(), "base64"));
  } catch (err) {
    throw new Error(`${what} is neither .proto text nor a base64 FileDescriptorProto: ${(err as Error).message}`);
  }
  // Types one by one (Root.fromDescriptor would resolve at once, before the imported files are there).
  const syntax = fdp.syntax === "proto3" ? "proto3" : "proto2";
  const ns = fdp.package ? root.define(fdp.package) : root;
  for (const m of fdp.messageType ?? []) ns.add((protobuf.Type as any).fromDescriptor(m, syntax));
  for (const e of fdp.enumType ?? []) ns.add((protobuf.Enum as any).fromDescriptor(e));
  const pkg = fdp.package ? `${fdp.package}.` : "";
  return (fdp.messageType ?? []).map((m: { name: string }) => `${pkg}${m.name}`);
}

/** Parses a main file and the files it references (dependencies first), resolving every type. */
export function parseProtoSchema(main: string, references: string[] = [], what = "the schema"): ParsedSchema {
  const root = newRoot();
  references.forEach((r, i) => addFile(root, r, `reference ${i + 1} of ${what}`));
  const messages = addFile(root, main, what);
  try {
    root.resolveAll();
  } catch (err) {
    throw new Error(`${what} does not resolve: ${(err as Error).message}`);
  }
  return { root, messages };
}

/** The message a table reads or writes: `message_name`, else the file's only top-level message. */
export function messageType(schema: ParsedSchema, name: string | undefined, what: string): PbType {
  if (!name) {
    if (schema.messages.length !== 1) {
      throw new Error(`${what} declares ${schema.messages.length} messages (${schema.messages.join(", ")}); say which with option 'protobuf.message_name'`);
    }
    name = schema.messages[0]!;
  }
  const found = schema.root.lookup(name);
  if (!(found instanceof protobuf.Type)) {
    throw new Error(`${what} has no message '${name}' (option 'protobuf.message_name'); it declares ${schema.messages.join(", ")}`);
  }
  return found;
}

/** The Confluent message indexes of a type: its path through the file's messages and their nested ones. */
export function messageIndexes(schema: ParsedSchema, type: PbType): number[] {
  const path: protobuf.Type[] = [];
  for (let t: protobuf.ReflectionObject | null = type; t instanceof protobuf.Type; t = t.parent) path.unshift(t);
  const top = schema.messages.indexOf(path[0]!.fullName.replace(/^\./, ""));
  if (top < 0) throw new Error(`message '${type.fullName}' is not declared in the schema's own file`);
  const out = [top];
  for (let i = 1; i < path.length; i++) {
    const nested = path[i - 1]!.nestedArray.filter((n) => n instanceof protobuf.Type);
    out.push(nested.indexOf(path[i]!));
  }
  return out;
}

/** The type a record's message indexes name. */
export function typeAt(schema: ParsedSchema, indexes: number[]): PbType {
  let t: protobuf.Type | undefined;
  const name = schema.messages[indexes[0]!];
  if (name === undefined) throw new Error(`message index ${indexes[0]} is not in the schema (it declares ${schema.messages.length} messages)`);
  t = schema.root.lookupType(name);
  for (let i = 1; i < indexes.length; i++) {
    const nested = t.nestedArray.filter((n) => n instanceof protobuf.Type) as protobuf.Type[];
    t = nested[indexes[i]!];
    if (!t) throw new Error(`message indexes [${indexes.join(", ")}] name no message of the schema`);
  }
  return t;
}

// ------------------------------------------------------------------ reading

const INT64 = new Set(["int64", "uint64", "sint64", "fixed64", "sfixed64"]);
const INT32 = new Set(["int32", "uint32", "sint32", "fixed32", "sfixed32"]);
const toNum = (v: any): number => (typeof v === "number" ? v : typeof v === "object" && v !== null ? protobuf.util.LongBits.from(v).toNumber(v.unsigned) : Number(v));

function describe(f: protobuf.Field): string {
  return `${f.repeated ? "repeated " : ""}${f.map ? `map<${(f as unknown as protobuf.MapField).keyType}, ${f.type}>` : f.type}`;
}

function isWrapper(t: protobuf.Type): boolean {
  return t.fullName.startsWith(".google.protobuf.") && t.fullName.endsWith("Value") && t.fieldsArray.length === 1 && t.fieldsArray[0]!.name === "value";
}

/** A message value as plain JSON (protobuf's JSON mapping: int64s as numbers here, bytes base64, enums names). */
function toJson(type: protobuf.Type): Convert {
  return (v) => JSON.stringify(type.toObject(v, { longs: Number, enums: String, bytes: String, defaults: true, arrays: true, objects: true }));
}

function scalarConverter(f: protobuf.Field, type: SqlType, path: string): Convert | Error {
  const bad = () => new Error(`field \`${path}\` is ${describe(f)} in the message; column \`${path}\` is ${typeName(type)}, which cannot hold it exactly`);
  const resolved = f.resolvedType;
  if (resolved instanceof protobuf.Enum) {
    const names = resolved.valuesById;
    if (type.kind === "string") return (v: number) => names[v] ?? String(v);
    if (type.kind === "int") return (v) => v;
    return bad();
  }
  if (resolved instanceof protobuf.Type) {
    if (resolved.fullName === ".google.protobuf.Timestamp") {
      if (type.kind === "timestamp") return (v) => toNum(v.seconds) * 1_000_000 + Math.floor((v.nanos ?? 0) / 1000);
      if (type.kind === "json") return toJson(resolved);
      return bad();
    }
    if (isWrapper(resolved)) {
      const inner = scalarConverter(resolved.fieldsArray[0]!, type, path);
      return inner instanceof Error ? inner : (v) => inner(v.value);
    }
    if (type.kind === "json") return toJson(resolved);
    if (type.kind !== "struct") return bad();
    const reader = messageReader(resolved, type.fields, path);
    if (reader instanceof Error) return reader;
    return (v) => {
      const row = reader(v);
      const out: Record<string, unknown> = {};
      for (let i = 0; i < type.fields.length; i++) out[type.fields[i]!.name] = row[i];
      return out;
    };
  }
  const t = f.type;
  switch (type.kind) {
    case "boolean":
      return t === "bool" ? (v) => v : bad();
    case "int":
      if (INT32.has(t)) return (v) => v;
      if (INT64.has(t) && type.bits === 64) return toNum;
      return bad();
    case "float":
    case "decimal":
      if (t === "double" || t === "float" || INT32.has(t)) return (v) => v;
      if (INT64.has(t)) return toNum;
      return bad();
    case "string":
      return t === "string" ? (v) => v : bad();
    case "json":
      return t === "string" ? (v) => v : (v) => JSON.stringify(INT64.has(t) ? toNum(v) : v instanceof Uint8Array ? Buffer.from(v).toString("base64") : v);
    case "bytes":
      return t === "bytes" ? (v: Uint8Array) => new Uint8Array(v) : bad();
    case "timestamp":
      return new Error(`field \`${path}\` is ${t}, with no unit; declare column \`${path}\` as BIGINT, or use google.protobuf.Timestamp`);
    case "interval":
      return INT64.has(t) ? toNum : INT32.has(t) ? (v) => v : bad();
    default:
      return bad();
  }
}

function fieldConverter(f: protobuf.Field, type: SqlType, path: string): Convert | Error {
  if (f.map) {
    if (type.kind === "json") return (v) => JSON.stringify(mapToJson(v));
    if (type.kind !== "map") return new Error(`field \`${path}\` is a ${describe(f)}; declare column \`${path}\` as MAP<...> (or JSON)`);
    const key = mapKey(f, type.key, path);
    if (key instanceof Error) return key;
    const value = scalarConverter(f, type.value, `${path}{}`);
    if (value instanceof Error) return value;
    // protobufjs gives a map as an object keyed by the keys' text.
    return (v: Record<string, unknown>) => Object.entries(v).map(([k, x]) => [key.read(k), x === null || x === undefined ? null : value(x)]);
  }
  if (f.repeated) {
    if (type.kind === "json") return (v: unknown[]) => JSON.stringify(v.map((x) => (typeof x === "object" && x !== null && !(x instanceof Uint8Array) ? (f.resolvedType as protobuf.Type)?.toObject?.(x as any, { longs: Number, enums: String, bytes: String }) ?? x : x)));
    if (type.kind !== "array") return new Error(`field \`${path}\` is ${describe(f)}; declare column \`${path}\` as an array (or JSON)`);
    const element = scalarConverter(f, type.element, `${path}[]`);
    if (element instanceof Error) return element;
    return (v: unknown[]) => v.map(element);
  }
  return scalarConverter(f, type, path);
}

/** How a protobuf map's keys (text in protobufjs objects) convert to and from the column's key type. */
function mapKey(f: protobuf.Field, type: SqlType, path: string): { read: (k: string) => unknown; write: (k: unknown) => string } | Error {
  const kt = (f as unknown as protobuf.MapField).keyType;
  if (kt === "string" && type.kind === "string") return { read: (k) => k, write: (k) => k as string };
  if (kt === "bool" && type.kind === "boolean") return { read: (k) => k === "true", write: (k) => String(k) };
  if ((INT32.has(kt) || (INT64.has(kt) && type.kind === "int" && type.bits === 64)) && type.kind === "int") return { read: (k) => Number(k), write: (k) => String(k) };
  return new Error(`field \`${path}\` is a ${describe(f)}; its keys are ${kt}, which column \`${path}\`'s ${typeName(type)} keys cannot hold exactly`);
}

function mapToJson(v: Record<string, unknown>): unknown {
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = typeof x === "object" && x !== null && !(x instanceof Uint8Array) ? toNumOrObject(x) : x;
  return out;
}
const toNumOrObject = (x: any) => ("low" in x && "high" in x ? toNum(x) : x);

/** A compiled reader from a decoded message to a row of `fields`. */
export function messageReader(type: PbType, fields: Field[], prefix = ""): ((m: any) => Row) | Error {
  const plan: { name: string | null; convert: Convert; presence: boolean }[] = [];
  for (const f of fields) {
    const path = prefix ? `${prefix}.${f.name}` : f.name;
    const pf = type.fields[f.name] ?? type.fieldsArray.find((x) => x.name.toLowerCase() === f.name.toLowerCase());
    if (!pf) {
      if (!f.nullable) return new Error(`message ${type.fullName.slice(1)} has no field \`${path}\` for NOT NULL column \`${path}\``);
      plan.push({ name: null, convert: () => null, presence: false });
      continue;
    }
    const c = fieldConverter(pf, f.type, path);
    if (c instanceof Error) return c;
    // Message fields and oneof members (proto3 `optional` too) have presence: absent is NULL.
    const presence = !pf.repeated && (pf.resolvedType instanceof protobuf.Type || !!pf.partOf);
    if (!f.nullable && presence) {
      plan.push({
        name: pf.name,
        presence: false,
        convert: (v) => {
          if (v === null || v === undefined) throw new Error(`field \`${path}\` is absent; column \`${path}\` is NOT NULL`);
          return c(v);
        },
      });
    } else plan.push({ name: pf.name, convert: c, presence });
  }
  const n = fields.length;
  return (m) => {
    const row = new Array(n);
    for (let i = 0; i < n; i++) {
      const p = plan[i]!;
      if (p.name === null) {
        row[i] = null;
        continue;
      }
      const v = p.presence ? (Object.hasOwn(m, p.name) ? m[p.name] : null) : m[p.name];
      row[i] = v === null || v === undefined ? (p.presence ? null : p.convert(v)) : p.convert(v);
    }
    return row;
  };
}

// ------------------------------------------------------------------ writing

function scalarWriter(f: protobuf.Field, type: SqlType, path: string): Convert | Error {
  const bad = () => new Error(`column \`${path}\` is ${typeName(type)}; field \`${path}\` of the message is ${describe(f)}, which cannot hold it exactly`);
  const resolved = f.resolvedType;
  if (resolved instanceof protobuf.Enum) {
    if (type.kind === "int") return (v) => v;
    if (type.kind !== "string") return bad();
    const values = resolved.values;
    return (v: string) => {
      const n = values[v];
      if (n === undefined) throw new Error(`column \`${path}\`: '${v}' is not a value of enum ${resolved.name} (${Object.keys(values).join(", ")})`);
      return n;
    };
  }
  if (resolved instanceof protobuf.Type) {
    if (resolved.fullName === ".google.protobuf.Timestamp") {
      if (type.kind !== "timestamp") return bad();
      return (us: number) => {
        const seconds = Math.floor(us / 1_000_000);
        return { seconds, nanos: (us - seconds * 1_000_000) * 1000 };
      };
    }
    if (isWrapper(resolved)) {
      const inner = scalarWriter(resolved.fieldsArray[0]!, type, path);
      return inner instanceof Error ? inner : (v) => ({ value: inner(v) });
    }
    if (type.kind !== "struct") return bad();
    const writer = messageWriter(type.fields, resolved, path);
    if (writer instanceof Error) return writer;
    return (v: Record<string, unknown>) => writer(type.fields.map((x) => v[x.name] ?? null));
  }
  const t = f.type;
  switch (type.kind) {
    case "boolean":
      return t === "bool" ? (v) => v : bad();
    case "int":
      return INT64.has(t) || (INT32.has(t) && type.bits === 32) || t === "double" ? (v) => v : bad();
    case "float":
    case "decimal":
      return t === "double" || (t === "float" && type.kind === "float" && type.bits === 32) ? (v) => v : bad();
    case "string":
    case "json":
      return t === "string" ? (v) => v : bad();
    case "bytes":
      return t === "bytes" ? (v) => v : bad();
    case "timestamp":
      return INT64.has(t) ? (v) => v : bad();
    case "interval":
      return INT64.has(t) ? (v) => v : bad();
    default:
      return bad();
  }
}

/** A compiled writer from a row of `fields` to the object protobufjs encodes as `type`. */
export function messageWriter(fields: Field[], type: PbType, prefix = ""): ((row: Row) => Record<string, unknown>) | Error {
  const plan: { name: string; at: number; convert: Convert }[] = [];
  for (let at = 0; at < fields.length; at++) {
    const f = fields[at]!;
    const path = prefix ? `${prefix}.${f.name}` : f.name;
    const pf = type.fields[f.name] ?? type.fieldsArray.find((x) => x.name.toLowerCase() === f.name.toLowerCase());
    if (!pf) return new Error(`column \`${path}\` has no field in message ${type.fullName.slice(1)}; add it to the message or leave it out of the query`);
    let c: Convert | Error;
    if (pf.map) {
      if (f.type.kind !== "map") return new Error(`field \`${path}\` is a ${describe(pf)}; column \`${path}\` must be a MAP`);
      const key = mapKey(pf, f.type.key, path);
      const value = scalarWriter(pf, f.type.value, `${path}{}`);
      if (key instanceof Error) return key;
      c = value instanceof Error ? value : (v: [unknown, unknown][]) => {
        const out: Record<string, unknown> = {};
        for (const [k, x] of v) {
          // A protobuf map has no NULL values; dropping the entry would change the map.
          if (x === null || x === undefined) throw new Error(`column \`${path}\`: the value of key ${JSON.stringify(k)} is NULL, which a protobuf map cannot hold; write coalesce or filter the entry out`);
          out[key.write(k)] = value(x);
        }
        return out;
      };
    } else if (pf.repeated) {
      if (f.type.kind !== "array") return new Error(`field \`${path}\` is ${describe(pf)}; column \`${path}\` must be an array`);
      const element = scalarWriter(pf, f.type.element, `${path}[]`);
      c = element instanceof Error ? element : (v: unknown[]) => v.map(element);
    } else c = scalarWriter(pf, f.type, path);
    if (c instanceof Error) return c;
    plan.push({ name: pf.name, at, convert: c });
  }
  return (row) => {
    const out: Record<string, unknown> = {};
    for (let i = 0; i < plan.length; i++) {
      const p = plan[i]!;
      const v = row[p.at];
      if (v !== null && v !== undefined) out[p.name] = p.convert(v);
    }
    return out;
  };
}

// ------------------------------------------------------------------ Confluent message indexes

/** Reads the message indexes after the 5-byte header; returns them and where the message starts. */
export function readMessageIndexes(buf: Uint8Array, at: number): { indexes: number[]; at: number } {
  const reader = protobuf.Reader.create(buf);
  reader.pos = at;
  const count = reader.sint32();
  if (count === 0) return { indexes: [0], at: reader.pos };
  if (count < 0 || count > 64) throw new Error(`the record's message indexes are malformed (count ${count})`);
  const indexes: number[] = [];
  for (let i = 0; i < count; i++) indexes.push(reader.sint32());
  return { indexes, at: reader.pos };
}

/** The message indexes as written after the header ([0] as the single byte 0). */
export function encodeMessageIndexes(indexes: number[]): Uint8Array {
  if (indexes.length === 1 && indexes[0] === 0) return Uint8Array.of(0);
  const w = protobuf.Writer.create();
  w.sint32(indexes.length);
  for (const i of indexes) w.sint32(i);
  return w.finish();
}
