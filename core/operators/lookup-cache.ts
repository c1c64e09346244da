/**
 * The cache in front of a lookup join's store: least-recently-used entries are
 * evicted past `lookup.cache.max_bytes` (sizes estimated from the values, as
 * Arroyo weighs its cache by row bytes), and an entry older than
 * `lookup.cache.ttl` is read from the store again. Misses are cached too (a key
 * the store lacks is asked again only after the TTL or an eviction), so a
 * stream of unknown keys does not reach the store once per row. It is a cache,
 * not state: never checkpointed, empty after a restore.
 */
import { LRUCache } from "lru-cache";
import type { Row } from "../plugin-api/index.ts";
import type { LookupCacheSettings } from "../plan/logical.ts";

/** What the cache holds for a key the store has no row for (lru-cache takes no null values). */
const MISS: { miss: true } = { miss: true };
/** Per-entry bookkeeping (the map's node, the key's string object), beside the key and row themselves. */
const ENTRY_OVERHEAD = 64;

export class LookupCache {
  private readonly lru: LRUCache<string, Row | typeof MISS> | null;

  constructor(settings: LookupCacheSettings) {
    this.lru =
      settings.maxBytes > 0
        ? new LRUCache<string, Row | typeof MISS>({
            maxSize: settings.maxBytes,
            sizeCalculation: (value, key) => ENTRY_OVERHEAD + key.length * 2 + (value === MISS ? 0 : estimateBytes(value)),
            ...(settings.ttlMicros !== null ? { ttl: Math.max(1, Math.round(settings.ttlMicros / 1000)) } : {}),
          })
        : null;
  }

  /** The cached row, null for a cached miss, undefined when the key is not cached (or expired). */
  get(key: string): Row | null | undefined {
    const v = this.lru?.get(key);
    if (v === undefined) return undefined;
    return v === MISS ? null : (v as Row);
  }

  set(key: string, row: Row | null): void {
    this.lru?.set(key, row ?? MISS);
  }

  /** Entries held now (for tests and metrics). */
  get size(): number {
    return this.lru?.size ?? 0;
  }

  /** Estimated bytes held now. */
  get bytes(): number {
    return this.lru?.calculatedSize ?? 0;
  }
}

/** Rough bytes of a value as the engine holds it: UTF-16 strings, 8-byte numbers, byte arrays, nested values. */
export function estimateBytes(v: unknown): number {
  if (v === null || v === undefined) return 8;
  switch (typeof v) {
    case "string":
      return 16 + v.length * 2;
    case "number":
    case "boolean":
      return 8;
    case "object": {
      if (v instanceof Uint8Array) return 16 + v.byteLength;
      let n = 16;
      if (Array.isArray(v)) for (const x of v) n += estimateBytes(x);
      else for (const [k, x] of Object.entries(v)) n += k.length * 2 + estimateBytes(x);
      return n;
    }
    default:
      return 16;
  }
}

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** A key's identity as text: distinct for 1 and '1', and for different byte arrays. */
export function keyText(values: unknown[]): string {
  return values.length === 1 ? singleKeyText(values[0]) : listText(values);
}

/** keyText of a one-column key, without an array for the common string and number keys. */
export function singleKeyText(v: unknown): string {
  if (typeof v === "string") return `s${v}`;
  if (typeof v === "number") return `n${v}`;
  return listText([v]);
}

function listText(values: unknown[]): string {
  return JSON.stringify(values, (_, x) => (x instanceof Uint8Array ? { bytes: hex(x) } : typeof x === "bigint" ? `${x}n` : x));
}
