/** Value helpers shared by casts, functions and formats-independent rendering. */
import type { SqlType } from "../plugin-api/index.ts";

/** RFC 3339 text of a µs timestamp: `2024-01-01T00:00:00Z`, fractions only when present. */
export function formatTimestamp(micros: number): string {
  const ms = Math.floor(micros / 1000);
  const iso = new Date(ms).toISOString(); // 2024-01-01T00:00:00.000Z
  const sub = micros - ms * 1000;
  const base = iso.slice(0, 19);
  const millis = ms - Math.floor(ms / 1000) * 1000;
  if (millis === 0 && sub === 0) return base + "Z";
  if (sub === 0) return `${base}.${String(millis).padStart(3, "0")}Z`;
  return `${base}.${String(millis).padStart(3, "0")}${String(sub).padStart(3, "0")}Z`;
}

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$/;

/** Parses RFC 3339 / ISO 8601 text to µs since the epoch (UTC unless an offset is given); null if unreadable. */
export function parseTimestamp(text: string): number | null {
  const m = ISO.exec(text.trim());
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  let ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h ?? 0), Number(mi ?? 0), Number(s ?? 0));
  if (Number.isNaN(ms)) return null;
  if (zone && zone !== "Z" && zone !== "z") {
    const sign = zone[0] === "-" ? -1 : 1;
    const digits = zone.slice(1).replace(":", "");
    const offsetMin = Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4) || 0);
    ms -= sign * offsetMin * 60_000;
  }
  const fracMicros = frac ? Math.floor(Number((frac + "000000").slice(0, 6))) : 0;
  return ms * 1000 + fracMicros;
}

/** Text form of a value, as CAST(x AS TEXT) gives it. */
export function toText(v: unknown, type?: SqlType): string {
  if (typeof v === "string") return v;
  if (type?.kind === "timestamp" && typeof v === "number") return formatTimestamp(v);
  if (v instanceof Uint8Array) return Buffer.from(v).toString("hex");
  if (typeof v === "object" && v !== null) return JSON.stringify(v);
  return String(v);
}

export class CastError extends Error {}

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
      if (["true", "t", "yes", "1"].includes(s)) return true;
      if (["false", "f", "no", "0"].includes(s)) return false;
      throw new CastError(`cannot cast '${v}' to BOOLEAN`);
    }
    case "int": {
      const n = typeof v === "number" ? v : typeof v === "boolean" ? Number(v) : Number(String(v).trim());
      const name = (to.bits === 32 ? "INT" : "BIGINT") + (to.unsigned ? " UNSIGNED" : "");
      if (!Number.isFinite(n)) throw new CastError(`cannot cast '${v}' to ${name}`);
      const whole = Math.trunc(n);
      // Out of range is an error, as in DataFusion's CAST (TRY_CAST would give NULL), never a wrapped value.
      const [lo, hi] = to.unsigned ? [0, to.bits === 32 ? 2 ** 32 - 1 : 2 ** 64 - 1] : to.bits === 32 ? [-(2 ** 31), 2 ** 31 - 1] : [-(2 ** 63), 2 ** 63 - 1];
      if (whole < lo || whole > hi) throw new CastError(`${v} is out of range for ${name}`);
      return whole;
    }
    case "float":
    case "decimal": {
      const n = typeof v === "number" ? v : typeof v === "boolean" ? Number(v) : Number(String(v).trim());
      if (Number.isNaN(n)) throw new CastError(`cannot cast '${v}' to ${to.kind === "float" ? "DOUBLE" : "DECIMAL"}`);
      return to.kind === "decimal" ? Math.round(n * 10 ** to.scale) / 10 ** to.scale : n;
    }
    case "timestamp": {
      if (typeof v === "number") return from.kind === "timestamp" ? v : Math.trunc(v * 1e6);
      const t = parseTimestamp(String(v));
      if (t === null) throw new CastError(`cannot cast '${v}' to TIMESTAMP; write it like 2024-01-01T00:00:00Z`);
      return t;
    }
    case "interval":
      if (typeof v === "number") return v;
      throw new CastError(`cannot cast '${v}' to INTERVAL`);
    case "bytes":
      if (v instanceof Uint8Array) return v;
      return new TextEncoder().encode(toText(v, from));
    case "array":
    case "struct":
      if (from.kind === to.kind) return v;
      throw new CastError(`cannot cast a ${from.kind} to ${to.kind}`);
  }
}
