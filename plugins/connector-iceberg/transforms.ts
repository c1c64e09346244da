/**
 * Iceberg partition transforms over engine values: identity, day, hour and
 * bucket[N] (32-bit Murmur3 x86 with seed 0 of the value's single-value
 * serialisation, as the Iceberg spec defines it: ints and longs as 8-byte
 * little-endian longs, strings as UTF-8), and the human-readable directory
 * value of each, which parses back to the partition value.
 */
import type { Field } from "../../core/plugin-api/index.ts";

export type TransformName = "identity" | "day" | "hour" | "bucket";

export interface PartitionField {
  name: string;
  sourceId: number;
  fieldId: number;
  source: Field;
  transform: TransformName;
  buckets?: number;
}

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** Murmur3 x86 32-bit, seed 0, of a byte array (signed 32-bit result). */
export function murmur3(bytes: Uint8Array): number {
  let h = 0;
  const n = bytes.length;
  const blocks = n & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const rest = n & 3;
  if (rest > 0) {
    let k = 0;
    if (rest === 3) k ^= bytes[blocks + 2]! << 16;
    if (rest >= 2) k ^= bytes[blocks + 1]! << 8;
    k ^= bytes[blocks]!;
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
  }
  h ^= n;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}

const longBytes = Buffer.alloc(8);
const encoder = new TextEncoder();

/** Iceberg's bucket hash of a value of the source column's type. */
export function bucketHash(field: Field, v: unknown): number {
  switch (field.type.kind) {
    case "int":
    case "timestamp":
      longBytes.writeBigInt64LE(BigInt(v as number), 0);
      return murmur3(longBytes);
    case "string":
    case "json":
      return murmur3(encoder.encode(String(v)));
    case "bytes":
      return murmur3(v as Uint8Array);
    default:
      throw new Error(`bucket of a ${field.type.kind} column`);
  }
}

const DAY_US = 86_400_000_000;
const HOUR_US = 3_600_000_000;
const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** The partition value of a row's source value. */
export function applyTransform(p: PartitionField, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  switch (p.transform) {
    case "identity":
      return v;
    case "day":
      return Math.floor((v as number) / DAY_US);
    case "hour":
      return Math.floor((v as number) / HOUR_US);
    case "bucket":
      return (bucketHash(p.source, v) & 0x7fffffff) % p.buckets!;
  }
}

const NULL_DIR = "__HIVE_DEFAULT_PARTITION__";

/** The directory value of a partition value (days and hours as dates), URI-encoded so it parses back exactly. */
export function dirValue(p: PartitionField, v: unknown): string {
  if (v === null || v === undefined) return NULL_DIR;
  if (p.transform === "day") {
    const d = new Date((v as number) * 86_400_000);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  }
  if (p.transform === "hour") {
    const d = new Date((v as number) * 3_600_000);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}-${pad(d.getUTCHours())}`;
  }
  return encodeURIComponent(String(v));
}

export function parseDirValue(p: PartitionField, s: string): unknown {
  if (s === NULL_DIR) return null;
  if (p.transform === "day") {
    const [y, m, d] = s.split("-").map(Number);
    return Date.UTC(y!, m! - 1, d!) / 86_400_000;
  }
  if (p.transform === "hour") {
    const [y, m, d, h] = s.split("-").map(Number);
    return Date.UTC(y!, m! - 1, d!, h!) / 3_600_000;
  }
  if (p.transform === "bucket") return Number(s);
  const raw = decodeURIComponent(s);
  switch (p.source.type.kind) {
    case "boolean":
      return raw === "true";
    case "int":
    case "float":
    case "timestamp":
      return Number(raw);
    default:
      return raw;
  }
}
