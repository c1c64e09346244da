/**
 * Avro values ↔ rows, on top of avsc (parsing, binary decoding and encoding).
 *
 * Reading resolves a writer's schema against the table's columns by field name
 * (as Arroyo does, rather than Avro's reader-schema resolution): a column takes
 * the writer's field of the same name (exactly, else ignoring case), fields
 * without a column are skipped, and a nullable column the writer lacks is NULL.
 * Logical types decide units: timestamp-millis/-micros/-nanos and date become
 * TIMESTAMP µs, decimal bytes become numbers. What cannot be read exactly
 * (a plain long into a TIMESTAMP, text into a number, a missing NOT NULL
 * column) refuses the schema, naming the column.
 */
import avro from "avsc";
import { typeName, type Field, type Row, type SqlType } from "../../core/plugin-api/index.ts";
import { decodeTwosComplement, encodeTwosComplement } from "../shared/decimal.ts";

type AvroType = avro.Type & {
  typeName: string;
  fields?: { name: string; type: AvroType; defaultValue(): unknown }[];
  types?: AvroType[];
  itemsType?: AvroType;
  valuesType?: AvroType;
  symbols?: string[];
  underlyingType?: AvroType;
  name?: string;
};

/** Logical types avsc should keep visible (values pass through unchanged; the converters read the unit). */
class MarkedLogicalType extends (avro.types.LogicalType as any) {
  readonly scale: number;
  readonly precision: number;
  constructor(schema: { scale?: number; precision?: number }, opts: unknown) {
    super(schema, opts);
    this.scale = Number(schema.scale ?? 0);
    this.precision = Number(schema.precision ?? 0);
  }
  _fromValue(v: unknown) {
    return v;
  }
  _toValue(v: unknown) {
    return v;
  }
  _resolve(type: AvroType) {
    if ((type as any).typeName === (this as any).typeName || (type as any).typeName === (this as any).underlyingType.typeName) return (v: unknown) => v;
    return undefined;
  }
}

const LOGICAL_NAMES = [
  "timestamp-millis", "timestamp-micros", "timestamp-nanos",
  "local-timestamp-millis", "local-timestamp-micros", "local-timestamp-nanos",
  "date", "decimal", "uuid", "time-millis", "time-micros",
];
const LOGICAL_TYPES = Object.fromEntries(LOGICAL_NAMES.map((n) => [n, MarkedLogicalType]));

/** Parses an Avro schema (JSON text or object) with avsc; throws a readable error. */
export function parseAvroSchema(schema: string | object, what: string): AvroType {
  let json: unknown = schema;
  if (typeof schema === "string") {
    try {
      json = JSON.parse(schema);
    } catch (err) {
      // A bare primitive name ("string") is also a schema.
      if (/^\s*[A-Za-z_][\w.]*\s*$/.test(schema)) json = schema.trim();
      else throw new Error(`${what} is not JSON: ${(err as Error).message}`);
    }
  }
  try {
    return avro.Type.forSchema(json as avro.Schema, { wrapUnions: false, logicalTypes: LOGICAL_TYPES as any }) as AvroType;
  } catch (err) {
    throw new Error(`${what} is not a valid Avro schema: ${(err as Error).message}`);
  }
}

type Convert = (v: any) => unknown;

const nonNull = (t: AvroType): AvroType[] => (t.typeName.startsWith("union") ? t.types!.filter((b) => b.typeName !== "null") : [t]);
const acceptsNull = (t: AvroType): boolean => t.typeName === "null" || (t.typeName.startsWith("union") && t.types!.some((b) => b.typeName === "null"));

function describe(t: AvroType): string {
  if (t.typeName.startsWith("union")) return `union [${t.types!.map(describe).join(", ")}]`;
  if (t.typeName.startsWith("logical:")) return `${t.underlyingType!.typeName} (${t.typeName.slice(8)})`;
  return t.name ? `${t.typeName} ${t.name}` : t.typeName;
}

const MICROS_PER: Record<string, number> = {
  "timestamp-millis": 1000, "local-timestamp-millis": 1000,
  "timestamp-micros": 1, "local-timestamp-micros": 1,
  "timestamp-nanos": 1e-3, "local-timestamp-nanos": 1e-3,
  date: 86_400_000_000,
};

const num = (v: unknown): number => (typeof v === "bigint" ? Number(v) : (v as number));

/**
 * A converter from values of the writer's type `t` to engine values of `type`,
 * or an Error saying why the column cannot take them.
 */
export function readConverter(t: AvroType, type: SqlType, path: string): Convert | Error {
  const branches = nonNull(t);
  if (branches.length === 0) return () => null;
  if (branches.length > 1) {
    // A union of several types: each value is converted by the branch it matches (only JSON columns take them all).
    if (type.kind === "json") return (v) => JSON.stringify(toJsonValue(v));
    if (type.kind === "string" && branches.every((b) => b.typeName === "string" || b.typeName === "enum")) return (v) => v;
    return new Error(`field \`${path}\` is a ${describe(t)} in the writer's schema; only a JSON column takes several types`);
  }
  const b = branches[0]!;
  const logical = b.typeName.startsWith("logical:") ? b.typeName.slice(8) : null;
  const base = logical ? b.underlyingType! : b;
  const bad = () => new Error(`field \`${path}\` is ${describe(b)} in the writer's schema; column \`${path}\` is ${typeName(type)}, which cannot hold it exactly`);
  switch (type.kind) {
    case "boolean":
      return base.typeName === "boolean" ? (v) => v : bad();
    case "int":
    case "float":
    case "decimal":
      if (logical === "decimal") {
        const scale = (b as unknown as MarkedLogicalType).scale;
        return (v: Uint8Array) => decodeTwosComplement(v, scale);
      }
      if (base.typeName === "int" || base.typeName === "long") return type.kind === "int" && type.bits === 32 && base.typeName === "long" ? bad() : num;
      if ((base.typeName === "float" || base.typeName === "double") && type.kind !== "int") return (v) => v;
      return bad();
    case "string":
      if (base.typeName === "string" || base.typeName === "enum") return (v) => v;
      return bad();
    case "json":
      if (base.typeName === "string" && logical === null) return (v) => v;
      return (v) => JSON.stringify(toJsonValue(v));
    case "timestamp": {
      const scale = logical ? MICROS_PER[logical] : undefined;
      if (scale === undefined) {
        return new Error(
          `field \`${path}\` is ${describe(b)} in the writer's schema, with no timestamp logical type to say its unit; declare column \`${path}\` as ${base.typeName === "int" ? "INT" : "BIGINT"}, or write a timestamp-millis/-micros field`,
        );
      }
      return scale === 1 ? num : scale < 1 ? (v) => Math.floor(num(v) * scale) : (v) => num(v) * scale;
    }
    case "interval":
      return base.typeName === "long" || base.typeName === "int" ? num : bad();
    case "bytes":
      return base.typeName === "bytes" || base.typeName === "fixed" ? (v: Uint8Array) => new Uint8Array(v) : base.typeName === "string" ? (v: string) => Buffer.from(v, "utf8") : bad();
    case "array": {
      if (base.typeName !== "array") return bad();
      const element = readConverter(base.itemsType!, type.element, `${path}[]`);
      if (element instanceof Error) return element;
      return (v: unknown[]) => {
        const out = new Array(v.length);
        for (let i = 0; i < v.length; i++) out[i] = v[i] === null ? null : element(v[i]);
        return out;
      };
    }
    case "struct": {
      if (base.typeName !== "record" && base.typeName !== "error") return bad();
      const reader = recordReader(base, type.fields, path);
      if (reader instanceof Error) return reader;
      return (v: Record<string, unknown>) => {
        const row = reader(v);
        const out: Record<string, unknown> = {};
        for (let i = 0; i < type.fields.length; i++) out[type.fields[i]!.name] = row[i];
        return out;
      };
    }
    case "map": {
      // Avro map keys are strings.
      if (base.typeName !== "map") return bad();
      if (type.key.kind !== "string") return new Error(`field \`${path}\` is an Avro map, whose keys are strings; declare column \`${path}\` as MAP<TEXT, ...>`);
      const value = readConverter(base.valuesType!, type.value, `${path}{}`);
      if (value instanceof Error) return value;
      return (v: Record<string, unknown>) => Object.entries(v).map(([k, x]) => [k, x === null || x === undefined ? null : value(x)]);
    }
  }
}

/** Finds the writer's field for a column: the same name, else the same name ignoring case. */
function fieldFor(record: AvroType, name: string) {
  return record.fields!.find((f) => f.name === name) ?? record.fields!.find((f) => f.name.toLowerCase() === name.toLowerCase());
}

/** A compiled reader from a decoded Avro record (avsc's object) to a row of `fields`. */
export function recordReader(record: AvroType, fields: Field[], prefix = ""): ((v: Record<string, unknown>) => Row) | Error {
  const names: (string | null)[] = [];
  const converts: Convert[] = [];
  for (const f of fields) {
    const path = prefix ? `${prefix}.${f.name}` : f.name;
    const wf = fieldFor(record, f.name);
    if (!wf) {
      if (!f.nullable) return new Error(`the writer's schema has no field \`${path}\` for NOT NULL column \`${path}\``);
      names.push(null);
      converts.push(() => null);
      continue;
    }
    const c = readConverter(wf.type, f.type, path);
    if (c instanceof Error) return c;
    if (!f.nullable && acceptsNull(wf.type)) {
      names.push(wf.name);
      converts.push((v) => {
        if (v === null || v === undefined) throw new Error(`field \`${path}\` is null; column \`${path}\` is NOT NULL`);
        return c(v);
      });
      continue;
    }
    names.push(wf.name);
    converts.push(acceptsNull(wf.type) ? (v) => (v === null || v === undefined ? null : c(v)) : c);
  }
  const n = fields.length;
  return (v) => {
    const row = new Array(n);
    for (let i = 0; i < n; i++) {
      const name = names[i];
      row[i] = name === null ? null : converts[i]!(v[name]);
    }
    return row;
  };
}

/** An Avro value as plain JSON (bytes as base64, as Runnel's JSON format writes them). */
export function toJsonValue(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (v instanceof Uint8Array) return Buffer.from(v).toString("base64");
  if (typeof v === "bigint") return Number(v);
  if (Array.isArray(v)) return v.map(toJsonValue);
  if (typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) out[k] = toJsonValue(x);
    return out;
  }
  return v;
}

// ------------------------------------------------------------------ writing

/** Avro names allow [A-Za-z0-9_], not starting with a digit. */
export function avroName(s: string): string {
  const clean = s.replace(/[^A-Za-z0-9_]/g, "_");
  return /^[0-9]/.test(clean) ? `_${clean}` : clean || "_";
}

/** The Avro schema a sink writes when none is given: one field per column, nullable columns as ["null", T]. */
export function schemaForFields(fields: Field[], name: string): Record<string, unknown> {
  return { type: "record", name: avroName(name), namespace: "runnel", fields: fields.map((f) => avroField(f, avroName(name))) };
}

function avroField(f: Field, parent: string): Record<string, unknown> {
  const t = avroTypeFor(f.type, `${parent}_${avroName(f.name)}`);
  return f.nullable ? { name: avroName(f.name), type: ["null", t], default: null } : { name: avroName(f.name), type: t };
}

function avroTypeFor(type: SqlType, name: string): unknown {
  switch (type.kind) {
    case "boolean":
      return "boolean";
    case "int":
      return type.bits === 32 && !type.unsigned ? "int" : "long";
    case "float":
      return type.bits === 32 ? "float" : "double";
    case "decimal":
      return { type: "bytes", logicalType: "decimal", precision: type.precision, scale: type.scale };
    case "string":
    case "json":
      return "string";
    case "timestamp":
      return { type: "long", logicalType: "timestamp-micros" };
    case "interval":
      return "long";
    case "bytes":
      return "bytes";
    case "array":
      return { type: "array", items: ["null", avroTypeFor(type.element, `${name}_item`)] };
    case "struct":
      return { type: "record", name, fields: type.fields.map((f) => avroField(f, name)) };
    case "map":
      // Avro map keys are strings; other key types are refused when the sink's columns are checked.
      return { type: "map", values: ["null", avroTypeFor(type.value, `${name}_value`)] };
  }
}

/**
 * A converter from engine values of `type` to what avsc writes for the
 * writer's type `t`, or an Error saying why the column does not fit the field.
 */
function writeConverter(type: SqlType, t: AvroType, path: string): Convert | Error {
  const branches = nonNull(t);
  if (branches.length !== 1) {
    if (branches.length === 0) return new Error(`field \`${path}\` of the schema is always null; column \`${path}\` is ${typeName(type)}`);
    // Several branches: avsc picks the branch the value fits (unwrapped unions).
    return (v) => v;
  }
  const b = branches[0]!;
  const logical = b.typeName.startsWith("logical:") ? b.typeName.slice(8) : null;
  const base = logical ? b.underlyingType! : b;
  const bad = () => new Error(`column \`${path}\` is ${typeName(type)}; field \`${path}\` of the schema is ${describe(b)}, which cannot hold it exactly`);
  switch (type.kind) {
    case "boolean":
      return base.typeName === "boolean" ? (v) => v : bad();
    case "int":
    case "float":
    case "decimal":
      if (logical === "decimal") {
        const scale = (b as unknown as MarkedLogicalType).scale;
        return base.typeName === "bytes" ? (v: number) => Buffer.from(encodeTwosComplement(v, scale)) : bad();
      }
      if (base.typeName === "long" && type.kind === "int") return (v) => v;
      if (base.typeName === "int" && type.kind === "int" && type.bits === 32 && !type.unsigned) return (v) => v;
      if (base.typeName === "double" || (base.typeName === "float" && type.kind === "float" && type.bits === 32)) return (v) => v;
      return bad();
    case "string":
      return base.typeName === "string" ? (v) => v : base.typeName === "enum" ? (v) => v : bad();
    case "json":
      return base.typeName === "string" ? (v) => v : bad();
    case "timestamp": {
      const scale = logical ? MICROS_PER[logical] : undefined;
      if (scale === undefined || logical === "date") return bad();
      return scale === 1 ? (v) => v : scale > 1 ? (v: number) => Math.floor(v / scale) : (v: number) => v / scale;
    }
    case "interval":
      return base.typeName === "long" ? (v) => v : bad();
    case "bytes":
      return base.typeName === "bytes" ? (v: Uint8Array) => Buffer.from(v.buffer, v.byteOffset, v.byteLength) : bad();
    case "array": {
      if (base.typeName !== "array") return bad();
      const element = writeConverter(type.element, base.itemsType!, `${path}[]`);
      if (element instanceof Error) return element;
      return (v: unknown[]) => v.map((x) => (x === null || x === undefined ? null : element(x)));
    }
    case "struct": {
      if (base.typeName !== "record") return bad();
      const writer = recordWriter(type.fields, base, path);
      if (writer instanceof Error) return writer;
      return (v: Record<string, unknown>) => writer(type.fields.map((f) => v[f.name] ?? null));
    }
    case "map": {
      if (base.typeName !== "map" || type.key.kind !== "string") return bad();
      const value = writeConverter(type.value, base.valuesType!, `${path}{}`);
      if (value instanceof Error) return value;
      return (v: [string, unknown][]) => {
        const out: Record<string, unknown> = {};
        for (const [k, x] of v) out[k] = x === null || x === undefined ? null : value(x);
        return out;
      };
    }
  }
}

/** A compiled writer from a row of `fields` to the object avsc encodes as `record`; fields match columns by name. */
export function recordWriter(fields: Field[], record: AvroType, prefix = ""): ((row: Row) => Record<string, unknown>) | Error {
  const plan: { name: string; at: number; convert: Convert | null; nullable: boolean; fallback: unknown }[] = [];
  const used = new Set<number>();
  for (const wf of record.fields!) {
    const path = prefix ? `${prefix}.${wf.name}` : wf.name;
    let at = fields.findIndex((f) => f.name === wf.name || avroName(f.name) === wf.name);
    if (at < 0) at = fields.findIndex((f) => f.name.toLowerCase() === wf.name.toLowerCase());
    if (at < 0) {
      const fallback = wf.defaultValue();
      if (fallback === undefined && !acceptsNull(wf.type)) return new Error(`the schema's field \`${path}\` has no column and no default; add a column \`${wf.name}\` to the table`);
      plan.push({ name: wf.name, at: -1, convert: null, nullable: true, fallback: fallback ?? null });
      continue;
    }
    used.add(at);
    const f = fields[at]!;
    const c = writeConverter(f.type, wf.type, path);
    if (c instanceof Error) return c;
    plan.push({ name: wf.name, at, convert: c, nullable: acceptsNull(wf.type), fallback: null });
  }
  const unused = fields.filter((_, i) => !used.has(i));
  if (unused.length > 0) {
    const names = unused.map((f) => `\`${prefix ? `${prefix}.` : ""}${f.name}\``).join(", ");
    return new Error(`column${unused.length > 1 ? "s" : ""} ${names} ha${unused.length > 1 ? "ve" : "s"} no field in the Avro schema; add ${unused.length > 1 ? "them" : "it"} to the schema or leave ${unused.length > 1 ? "them" : "it"} out of the query`);
  }
  return (row) => {
    const out: Record<string, unknown> = {};
    for (let i = 0; i < plan.length; i++) {
      const p = plan[i]!;
      if (p.at < 0) {
        out[p.name] = p.fallback;
        continue;
      }
      const v = row[p.at];
      if (v === null || v === undefined) {
        if (!p.nullable) throw new Error(`column \`${p.name}\` is NULL but the schema's field \`${p.name}\` is not nullable`);
        out[p.name] = null;
      } else out[p.name] = p.convert!(v);
    }
    return out;
  };
}
