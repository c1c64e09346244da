/**
 * A short-lived hash map from group keys to values (a window's merged panes, a
 * batch's partials), keyed by the key's 32-bit hash, so the hot path never
 * builds a string key. An open-addressing index in a typed array (slot pairs of
 * [hash, entry number + 1], linear probing) over a list of entries, as the
 * state tables' EntryMap but without removal: a JavaScript Map of hash chains
 * cost a Map lookup and a chain walk per row, and gave entries back in no
 * useful order; here they come back in the order they were made.
 */
import { keysEqual } from "./hash.ts";

export interface KeyedEntry<V> {
  hash: number;
  key: unknown[];
  value: V;
}

export class KeyedMap<V> {
  private slots = new Int32Array(32);
  private mask = 15;
  private readonly list: KeyedEntry<V>[] = [];

  get size(): number {
    return this.list.length;
  }

  /**
   * The entry for `key`, created with `make()` when absent, holding a copy of
   * `key` (or `key` itself with `copyKey` false: the caller never changes it).
   */
  getOrCreate(hash: number, key: readonly unknown[], make: () => V, copyKey = true): KeyedEntry<V> {
    const h = hash | 0;
    const { slots, mask, list } = this;
    let i = h & mask;
    for (; ; i = (i + 1) & mask) {
      const n = slots[2 * i + 1]!;
      if (n === 0) break;
      if (slots[2 * i] === h && keysEqual(list[n - 1]!.key, key)) return list[n - 1]!;
    }
    const entry: KeyedEntry<V> = { hash, key: copyKey ? key.slice() : (key as unknown[]), value: make() };
    list.push(entry);
    slots[2 * i] = h;
    slots[2 * i + 1] = list.length;
    // At most half full: probes stay short.
    if (2 * list.length > mask + 1) this.grow();
    return entry;
  }

  private grow(): void {
    const capacity = (this.mask + 1) * 2;
    const slots = new Int32Array(capacity * 2);
    const mask = capacity - 1;
    const list = this.list;
    for (let n = 0; n < list.length; n++) {
      const h = list[n]!.hash | 0;
      let i = h & mask;
      while (slots[2 * i + 1] !== 0) i = (i + 1) & mask;
      slots[2 * i] = h;
      slots[2 * i + 1] = n + 1;
    }
    this.slots = slots;
    this.mask = mask;
  }

  /** The entries in the order they were made. */
  entries(): IterableIterator<KeyedEntry<V>> {
    return this.list[Symbol.iterator]();
  }
}
