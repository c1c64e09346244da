/**
 * A hash map from group keys to values, keyed by the key's 32-bit hash with
 * chaining for collisions, so the hot path never builds a string key.
 */
import { keysEqual } from "./hash.ts";

export interface KeyedEntry<V> {
  hash: number;
  key: unknown[];
  value: V;
  next: KeyedEntry<V> | null;
}

export class KeyedMap<V> {
  private readonly buckets = new Map<number, KeyedEntry<V>>();
  size = 0;

  get(hash: number, key: readonly unknown[]): KeyedEntry<V> | undefined {
    for (let e = this.buckets.get(hash | 0); e; e = e.next ?? undefined) if (keysEqual(e.key, key)) return e;
    return undefined;
  }

  /** The entry for `key`, created with `make()` (and a copy of `key`) when absent. */
  getOrCreate(hash: number, key: readonly unknown[], make: () => V): KeyedEntry<V> {
    const head = this.buckets.get(hash | 0);
    for (let e = head; e; e = e.next ?? undefined) if (keysEqual(e.key, key)) return e;
    const entry: KeyedEntry<V> = { hash, key: key.slice(), value: make(), next: head ?? null };
    this.buckets.set(hash | 0, entry);
    this.size++;
    return entry;
  }

  delete(entry: KeyedEntry<V>): void {
    const head = this.buckets.get(entry.hash | 0);
    if (head === entry) {
      if (entry.next) this.buckets.set(entry.hash | 0, entry.next);
      else this.buckets.delete(entry.hash | 0);
      this.size--;
      return;
    }
    for (let e = head; e && e.next; e = e.next) {
      if (e.next === entry) {
        e.next = entry.next;
        this.size--;
        return;
      }
    }
  }

  *entries(): IterableIterator<KeyedEntry<V>> {
    for (const head of this.buckets.values()) for (let e: KeyedEntry<V> | null = head; e; e = e.next) yield e;
  }
}
