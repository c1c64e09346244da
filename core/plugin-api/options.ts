/**
 * Option schemas: one declaration per option set that validates SQL `WITH (...)`
 * values, coerces them to typed values and yields JSON Schema for catalogs.
 * SQL gives every option as text, so each kind knows how to read a string.
 */

export interface OptionSpec<T = unknown> {
  readonly kind: "string" | "integer" | "number" | "boolean" | "enum" | "duration" | "size";
  readonly description?: string;
  readonly required?: boolean;
  readonly default?: T;
  readonly values?: readonly string[];
  readonly min?: number;
  readonly max?: number;
  /** Secrets are write-only: never echoed back by APIs or logs. */
  readonly secret?: boolean;
  /** Read a raw SQL value; throw an Error whose message says what is wrong. */
  parse(raw: unknown): T;
}

export type OptionsShape = Record<string, OptionSpec<any>>;

/** The typed values an options shape produces; options without a default may be undefined. */
export type OptionValues<S extends OptionsShape> = {
  [K in keyof S]: S[K] extends OptionSpec<infer T>
    ? S[K]["required"] extends true
      ? T
      : S[K] extends { default: T }
        ? T
        : T | undefined
    : never;
};

interface Common<T> {
  description?: string;
  required?: boolean;
  default?: T;
  secret?: boolean;
}

const text = (raw: unknown) => (typeof raw === "string" ? raw.trim() : String(raw));

function bounded(n: number, o: { min?: number; max?: number }): number {
  if (o.min !== undefined && n < o.min) throw new Error(`must be at least ${o.min}, got ${n}`);
  if (o.max !== undefined && n > o.max) throw new Error(`must be at most ${o.max}, got ${n}`);
  return n;
}

const DURATION_UNITS: Record<string, number> = {
  us: 1, micro: 1, micros: 1, microsecond: 1, microseconds: 1,
  ms: 1e3, milli: 1e3, millis: 1e3, millisecond: 1e3, milliseconds: 1e3,
  s: 1e6, sec: 1e6, secs: 1e6, second: 1e6, seconds: 1e6,
  m: 60e6, min: 60e6, mins: 60e6, minute: 60e6, minutes: 60e6,
  h: 3600e6, hour: 3600e6, hours: 3600e6,
  d: 86400e6, day: 86400e6, days: 86400e6,
};

/** Parses '10s', '500 ms', '1 minute', '2h'; a bare number is taken in `bareUnit` microseconds. */
export function parseDurationMicros(raw: unknown, bareUnit = 1e6): number {
  const s = text(raw).toLowerCase();
  const m = /^(-?\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(s);
  if (!m) throw new Error(`'${s}' is not a duration; write it like '10s', '500ms' or '5 minutes'`);
  const unit = m[2] ? DURATION_UNITS[m[2]] : bareUnit;
  if (unit === undefined) throw new Error(`unknown duration unit '${m[2]}' in '${s}'; use us, ms, s, m, h or d`);
  return Math.round(Number(m[1]) * unit);
}

const SIZE_UNITS: Record<string, number> = {
  "": 1, b: 1, kb: 1024, k: 1024, kib: 1024, mb: 1024 ** 2, m: 1024 ** 2, mib: 1024 ** 2,
  gb: 1024 ** 3, g: 1024 ** 3, gib: 1024 ** 3,
};

/** Parses '128MB', '5 MiB', '1024' into bytes. */
export function parseSizeBytes(raw: unknown): number {
  const s = text(raw).toLowerCase();
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/.exec(s);
  const unit = m ? SIZE_UNITS[m[2]!] : undefined;
  if (!m || unit === undefined) throw new Error(`'${s}' is not a size; write it like '128MB' or '5MiB'`);
  return Math.round(Number(m[1]) * unit);
}

export const opt = {
  string(o: Common<string> = {}): OptionSpec<string> {
    return { kind: "string", ...o, parse: (raw) => (typeof raw === "string" ? raw : String(raw)) };
  },
  integer(o: Common<number> & { min?: number; max?: number } = {}): OptionSpec<number> {
    return {
      kind: "integer",
      ...o,
      parse(raw) {
        const s = text(raw);
        if (!/^-?\d+$/.test(s)) throw new Error(`'${s}' is not a whole number`);
        return bounded(Number(s), o);
      },
    };
  },
  number(o: Common<number> & { min?: number; max?: number } = {}): OptionSpec<number> {
    return {
      kind: "number",
      ...o,
      parse(raw) {
        const s = text(raw);
        const n = Number(s);
        if (s === "" || !Number.isFinite(n)) throw new Error(`'${s}' is not a number`);
        return bounded(n, o);
      },
    };
  },
  boolean(o: Common<boolean> = {}): OptionSpec<boolean> {
    return {
      kind: "boolean",
      ...o,
      parse(raw) {
        const s = text(raw).toLowerCase();
        if (s === "true" || s === "1" || s === "yes") return true;
        if (s === "false" || s === "0" || s === "no") return false;
        throw new Error(`'${s}' is not a boolean; use true or false`);
      },
    };
  },
  enum<const V extends string>(values: readonly V[], o: Common<V> = {}): OptionSpec<V> {
    return {
      kind: "enum",
      values,
      ...o,
      parse(raw) {
        const s = text(raw);
        const hit = values.find((v) => v.toLowerCase() === s.toLowerCase());
        if (hit === undefined) throw new Error(`'${s}' is not one of ${values.map((v) => `'${v}'`).join(", ")}`);
        return hit;
      },
    };
  },
  /** A duration in microseconds; a bare number means `bareUnit` microseconds each. */
  duration(o: Common<number> & { bareUnit?: number; min?: number } = {}): OptionSpec<number> {
    return { kind: "duration", ...o, parse: (raw) => bounded(parseDurationMicros(raw, o.bareUnit ?? 1e6), o) };
  },
  size(o: Common<number> & { min?: number } = {}): OptionSpec<number> {
    return { kind: "size", ...o, parse: (raw) => bounded(parseSizeBytes(raw), o) };
  },
};

/** JSON Schema (draft 2020-12) of an options shape. */
export function optionsJsonSchema(shape: OptionsShape): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  const required: string[] = [];
  for (const [name, spec] of Object.entries(shape)) {
    const p: Record<string, unknown> = {};
    switch (spec.kind) {
      case "integer":
        p.type = "integer";
        break;
      case "number":
        p.type = "number";
        break;
      case "boolean":
        p.type = "boolean";
        break;
      case "enum":
        p.type = "string";
        p.enum = [...(spec.values ?? [])];
        break;
      case "duration":
        p.type = "string";
        p.format = "duration";
        break;
      case "size":
        p.type = "string";
        p.format = "size";
        break;
      default:
        p.type = "string";
    }
    if (spec.min !== undefined) p.minimum = spec.min;
    if (spec.max !== undefined) p.maximum = spec.max;
    if (spec.description) p.description = spec.description;
    if (spec.default !== undefined) p.default = spec.default;
    if (spec.secret) p.writeOnly = true;
    properties[name] = p;
    if (spec.required) required.push(name);
  }
  return { type: "object", properties, required, additionalProperties: false };
}
