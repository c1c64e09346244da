/**
 * The lookup join's cache: bounded by estimated bytes, evicting the least
 * recently used keys first; misses are cached as such; size 0 caches nothing;
 * key identities keep 1 and '1' apart.
 */
import { describe, expect, test } from "bun:test";
import { estimateBytes, keyText, LookupCache } from "../../../core/operators/lookup-cache.ts";

const row = (i: number) => [`name ${i}`, i];

describe("LookupCache", () => {
  test("holds at most max_bytes, evicting the least recently used key", () => {
    const cache = new LookupCache({ maxBytes: 1000, ttlMicros: null });
    for (let i = 0; i < 100; i++) {
      cache.set(keyText([`k${i}`]), row(i));
      if (i > 0) cache.get(keyText(["k0"])); // k0 stays recently used
      expect(cache.bytes).toBeLessThanOrEqual(1000);
    }
    expect(cache.size).toBeGreaterThan(3);
    expect(cache.size).toBeLessThan(20);
    expect(cache.get(keyText(["k0"]))).toEqual(row(0));
    expect(cache.get(keyText(["k1"]))).toBeUndefined();
    expect(cache.get(keyText(["k99"]))).toEqual(row(99));
  });

  test("a miss is cached as null, an unknown key is undefined", () => {
    const cache = new LookupCache({ maxBytes: 10_000, ttlMicros: null });
    cache.set(keyText(["gone"]), null);
    expect(cache.get(keyText(["gone"]))).toBeNull();
    expect(cache.get(keyText(["other"]))).toBeUndefined();
  });

  test("max_bytes = 0 caches nothing", () => {
    const cache = new LookupCache({ maxBytes: 0, ttlMicros: null });
    cache.set(keyText(["a"]), row(1));
    expect(cache.get(keyText(["a"]))).toBeUndefined();
  });

  test("keys of different types or parts stay apart", () => {
    expect(keyText([1])).not.toBe(keyText(["1"]));
    expect(keyText(["a", "b"])).not.toBe(keyText(["a,b"]));
    expect(keyText([new Uint8Array([1, 2])])).not.toBe(keyText([new Uint8Array([1, 3])]));
    expect(estimateBytes(["abcd", 1, null])).toBeGreaterThan(estimateBytes(["a", 1, null]));
  });
});
