/**
 * State tables through the real backend: copy-on-write snapshots hold each
 * entry as it was at the barrier however it changes while encoding, deltas hold
 * only what changed, a restore at another parallelism reads only the key groups
 * a subtask owns, and files no checkpoint needs are deleted.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { hashValues } from "../../../core/state/hash.ts";
import { keyGroupOf, keyGroupRange, subtaskOfKeyGroup } from "../../../core/state/key-groups.ts";
import { EntryMap, restoreOrder, slotOf, StateEntry, snapshotTuning, type KeyedTable } from "../../../core/state/tables.ts";
import type { RestoredFile } from "../../../core/state/operator-state.ts";
import { StateHarness } from "../../kit/operator-state.ts";

setDefaultTimeout(60_000);

const put = (t: KeyedTable<number[]>, k: number, v: number) => {
  const e = t.update(hashValues([k]), [k], () => [0]);
  e.value[0] = v;
};
const dump = (t: KeyedTable<number[]>) => new Map([...t.entries()].map((e) => [e.key[0] as number, e.value[0]!]));

describe("key groups", () => {
  test("ranges cover every key group once, and routing agrees with them", () => {
    for (const [p, max] of [[1, 128], [3, 128], [7, 128], [128, 128], [5, 8]] as const) {
      const owners = new Array(max).fill(-1);
      for (let i = 0; i < p; i++) {
        const [lo, hi] = keyGroupRange(i, p, max);
        for (let kg = lo; kg < hi; kg++) {
          expect(owners[kg]).toBe(-1);
          owners[kg] = i;
          expect(subtaskOfKeyGroup(kg, p, max)).toBe(i);
        }
      }
      expect(owners.every((o) => o >= 0)).toBe(true);
    }
  });
});

describe("a full snapshot's view of the entries", () => {
  test("it visits the entries that existed when it began, not those made while it reads (which would never end under a stream of new keys)", () => {
    const map = new EntryMap<number>();
    const add = (k: number) => map.add(new StateEntry(hashValues([k]), [k], k, null));
    for (let k = 0; k < 1000; k++) add(k);
    const now = map.entriesNow();
    const seen: number[] = [];
    let next = 1000;
    for (const e of now) {
      seen.push(e.key[0] as number);
      // Every visit, two new keys arrive (new buckets, and some in old buckets' chains).
      add(next++);
      add(next++);
      if (seen.length > 5000) break; // chasing the new keys: it would never end
    }
    const old = seen.filter((k) => k < 1000);
    expect(new Set(old).size).toBe(1000);
    expect(seen.length).toBeLessThan(1100); // only chains of old buckets may hold a few new ones
  });
});

/** A seeded linear congruential generator: `rand(n)` is a whole number below n. */
function lcg(seed: number): (n: number) => number {
  return (n) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
}

/**
 * An entry index and a Map kept side by side. `visit` looks a key up in both, then removes it when present
 * and `remove()` says so, or adds it (valued `value`) when absent.
 */
function indexBesideMap(hashOf: (k: number) => number) {
  const map = new EntryMap<number>();
  const ref = new Map<number, StateEntry<number>>();
  const visit = (k: number, value: number, remove: () => boolean) => {
    const was = ref.get(k);
    const found = map.get(hashOf(k), [k]);
    if (was && remove()) {
      map.remove(was);
      ref.delete(k);
    } else if (!was) {
      const e = new StateEntry(hashOf(k), [k], value, null);
      map.add(e);
      ref.set(k, e);
    }
    return { found, was };
  };
  return { map, ref, visit };
}

describe("the entry index", () => {
  test("random adds, lookups and removals agree with a Map, with many keys sharing a hash and runs wrapping the index's end", () => {
    const rand = lcg(7);
    // Few distinct hashes for many keys (long probe runs), including hashes above 2^31 and near the index's end.
    const hashOf = (k: number) => [0, 1, 7, 0x7fffffff, 0x80000000, 0xffffffff, 15, 16][k % 8]! + (k % 3 === 0 ? 0 : k);
    const { map, ref, visit } = indexBesideMap(hashOf);
    for (let step = 0; step < 60_000; step++) {
      const { found, was } = visit(rand(3000), step, () => rand(3) === 0);
      expect(found).toBe(was);
      expect(map.size).toBe(ref.size);
    }
    for (const [k, e] of ref) expect(map.get(hashOf(k), [k])).toBe(e);
    expect(new Set(map.entries())).toEqual(new Set(ref.values()));
  });

  test("while it grows (the previous index drained a few slots per operation), entries are found, added and removed in either index", () => {
    const rand = lcg(11);
    // Some keys share a hash (runs of a few dozen, one of them across the index's end).
    const hashOf = (k: number) => (k % 97 === 0 ? [0xffffffff, 3, 0x80000000][k % 3]! : Math.imul(k, 0x9e3779b1));
    const { map, ref, visit } = indexBesideMap(hashOf);
    // New keys keep coming (the index grows to 64k slots, several times), while old ones are looked up and removed.
    let wrong = 0;
    for (let step = 0; step < 80_000; step++) {
      const { found, was } = visit(rand(3) === 0 ? rand(step + 1) : step, step, () => rand(2) === 0);
      if (found !== was) wrong++;
      if (step % 997 === 0) for (const [key, e] of ref) if (map.get(hashOf(key), [key]) !== e) wrong++;
    }
    expect(wrong).toBe(0);
    expect(map.size).toBe(ref.size);
    expect(ref.size).toBeGreaterThan(20_000);
    for (const [k, e] of ref) expect(map.get(hashOf(k), [k])).toBe(e);
    expect(new Set(map.entries())).toEqual(new Set(ref.values()));
  });

  test("room made at once (as a restore does), also in the middle of a growth and after removals, keeps every entry found", () => {
    const rand = lcg(13);
    const hashOf = (k: number) => (k % 89 === 0 ? 0xffffffff : Math.imul(k, 0x9e3779b1));
    const { map, ref, visit } = indexBesideMap(hashOf);
    let wrong = 0;
    for (let step = 0; step < 30_000; step++) {
      const { found, was } = visit(rand(3) === 0 ? rand(step + 1) : step, step, () => rand(2) === 0);
      if (found !== was) wrong++;
      // At these steps the index is growing (or not), with holes left by removals; twice the room once, then less (a no-op).
      if (step === 700 || step === 9_000 || step === 21_000) map.reserve(step === 9_000 ? 10 : 2 * map.size + 5_000);
    }
    expect(wrong).toBe(0);
    expect(map.size).toBe(ref.size);
    for (const [k, e] of ref) expect(map.get(hashOf(k), [k])).toBe(e);
    expect(new Set(map.entries())).toEqual(new Set(ref.values()));
  });
});

describe("where a probe starts in the entry index", () => {
  test("a key group's hashes start in its own stretch of the index (a 128th of it, in group order); every slot is reachable", () => {
    const mask = (1 << 20) - 1;
    const stretch = (mask + 1) / 128;
    const seen = new Set<number>();
    for (let n = 0; n < 200_000; n++) {
      const h = hashValues([n]);
      const slot = slotOf(h, mask);
      const group = keyGroupOf(h, 128);
      expect(slot >= group * stretch && slot < (group + 1) * stretch).toBe(true);
      seen.add(slot);
    }
    expect(seen.size).toBeGreaterThan(170_000); // spread within the stretches, not piled up
    // Small indexes take the hash's low bits.
    expect(slotOf(0x12345, 63)).toBe(0x12345 & 63);
  });
});

describe("the order a restore applies a chain of files in", () => {
  const chunk = (name: string) => new TextEncoder().encode(name);
  const file = (chunks: [number, string][], droppedUpTo: number | null = null): RestoredFile => ({
    chunks: chunks.map(([, n]) => chunk(n)),
    groups: chunks.map(([g]) => g),
    puts: chunks.length,
    droppedUpTo,
  });
  const names = (order: Iterable<Uint8Array | number>) => [...order].map((s) => (typeof s === "number" ? s : new TextDecoder().decode(s)));

  test("every file's chunks of a key group before the next group's, files in checkpoint order and chunks in file order within a group", () => {
    // Files written in rounds (groups ascending within each), deletions first; the delta misses group 1 and adds group 5.
    const full = file([[0, "f0a"], [1, "f1a"], [3, "f3a"], [0, "f0b"], [3, "f3b"]]);
    const delta = file([[0, "d0-deletes"], [3, "d3-deletes"], [0, "d0a"], [3, "d3a"], [5, "d5a"], [3, "d3b"]]);
    const next = file([[3, "n3a"]]);
    expect(names(restoreOrder([full, delta, next]))).toEqual(
      ["f0a", "f0b", "d0-deletes", "d0a", "f1a", "f3a", "f3b", "d3-deletes", "d3a", "d3b", "n3a", "d5a"],
    );
  });

  test("a chain in which a time table dropped entries is applied file by file, each drop before its file", () => {
    const a = file([[0, "a0"], [2, "a2"]]);
    const b = file([[1, "b1"]], 500);
    expect(names(restoreOrder([a, b]))).toEqual(["a0", "a2", 500, "b1"]);
  });
});

/** The heap backend, and the disk backend with a cache small enough that most entries live in SQLite. */
const BACKENDS = [
  { name: "in memory", harness: (id: string, max?: number) => new StateHarness(id, max) },
  { name: "on disk", harness: (id: string, max?: number) => new StateHarness(id, max, undefined, 200_000) },
];

for (const backend of BACKENDS) describe(`keyed tables ${backend.name}`, () => {
  test("a snapshot holds values as they were at the barrier, though they change and go while it encodes", async () => {
    const harness = backend.harness("cow");
    const ctx = harness.context();
    const table = ctx.state.keyed<number[]>("t");
    for (let k = 0; k < 20_000; k++) {
      put(table, k, k);
      if (k % 1000 === 0) ctx.state.maintain();
    }
    // Start the checkpoint, then change and delete entries before its background encoding is done.
    const checkpoint = harness.checkpoint([{ ctx }]);
    for (let k = 0; k < 20_000; k += 3) {
      put(table, k, -1);
      if (k % 999 === 0) ctx.state.maintain();
    }
    for (let k = 1; k < 20_000; k += 7) table.delete(table.get(hashValues([k]), [k])!);
    for (let k = 20_000; k < 20_100; k++) put(table, k, k);
    await checkpoint;
    const restored = (await harness.restore(0, 1)).state.keyed<number[]>("t");
    expect(dump(restored)).toEqual(new Map(Array.from({ length: 20_000 }, (_, k) => [k, k])));
    // The next checkpoint holds the changes made meanwhile.
    const live = dump(table);
    await harness.checkpoint([{ ctx }]);
    expect(dump((await harness.restore(0, 1)).state.keyed<number[]>("t"))).toEqual(live);
  });

  for (const [roundBytes, walked] of [
    [snapshotTuning.roundBytes, false],
    [32 * 1024, false],
    [32 * 1024, true],
  ] as const) {
    const deltas = walked ? "deltas walk the table (too many changes to list)" : "deltas read their change list";
    test(`processing between the background encoder's slices changes, deletes and adds entries: full and delta snapshots hold the barrier's values (rounds of ${roundBytes} bytes; ${deltas})`, async () => {
      const defaults = { ...snapshotTuning };
      // Small rounds: the records encoded early (copy-on-write) fill several and go out while the encoder runs.
      snapshotTuning.roundBytes = roundBytes;
      if (roundBytes < defaults.roundBytes) snapshotTuning.minSliceMs = 0;
      // A third of the keys change before each delta's barrier: past the share a table lists, once past this floor.
      if (walked) snapshotTuning.listFloor = 1024;
      try {
        await interleaved(`interleaved-${roundBytes}-${walked}`, walked);
      } finally {
        Object.assign(snapshotTuning, defaults);
      }
    });
  }

  async function interleaved(name: string, walked: boolean): Promise<void> {
    const harness = backend.harness(name);
    const ctx = harness.context();
    const table = ctx.state.keyed<number[]>("t");
    const keys = 150_000;
    for (let k = 0; k < keys; k++) {
      put(table, k, k);
      if (k % 1000 === 0) ctx.state.maintain();
    }
    let next = keys;
    let round = 0;
    for (const kind of ["full", "delta", "delta"]) {
      if (kind === "delta") {
        for (let k = round; k < next; k += walked ? 3 : 5) if (table.get(hashValues([k]), [k])) put(table, k, k * 1000 + round);
        expect((table as unknown as { changedList: unknown[] | null }).changedList === null).toBe(walked);
      }
      const atBarrier = dump(table);
      let encoded = false;
      const checkpoint = harness.checkpoint([{ ctx }]).then((c) => ((encoded = true), c));
      // Batches run between the encoder's slices (each yields to the event loop) until it is done.
      let batches = 0;
      for (let k = 0; !encoded; k = (k + 7919) % next, batches++) {
        if (table.get(hashValues([k]), [k])) {
          if (k % 3 === 0) table.delete(table.get(hashValues([k]), [k])!);
          else put(table, k, -k);
        }
        put(table, next, next);
        next++;
        if (batches % 100 === 0) {
          ctx.state.maintain();
          await new Promise((r) => setImmediate(r));
        }
      }
      await checkpoint;
      expect(batches).toBeGreaterThan(100); // the encoder really was interleaved with changes
      expect(dump((await harness.restore(0, 1)).state.keyed<number[]>("t"))).toEqual(atBarrier);
      round++;
    }
  }

  test("deltas hold only what changed: bytes follow the keys touched", async () => {
    const harness = backend.harness("delta");
    const ctx = harness.context();
    const table = ctx.state.keyed<number[]>("t");
    for (let k = 0; k < 100_000; k++) {
      put(table, k, k);
      if (k % 1000 === 0) ctx.state.maintain();
    }
    const full = await harness.checkpoint([{ ctx }]);
    for (let k = 0; k < 1_000; k++) put(table, k * 97, 1);
    ctx.state.maintain();
    const delta = await harness.checkpoint([{ ctx }]);
    const none = await harness.checkpoint([{ ctx }]);
    expect(delta.bytes / full.bytes).toBeLessThan(0.02);
    expect(delta.bytes / full.bytes).toBeGreaterThan(0.005);
    expect(none.bytes).toBe(0);
    const files = delta.operators.delta![0]!.tables.t!.files;
    expect(files.map((f) => f.full)).toEqual([true, false]);
    expect(dump((await harness.restore(0, 1)).state.keyed<number[]>("t"))).toEqual(dump(table));
  });

  test("within one interval a key is deleted and made again, or written back, read again and deleted: the delta restores each key's last state", async () => {
    const harness = backend.harness("order");
    const ctx = harness.context();
    const table = ctx.state.keyed<number[]>("t");
    // Enough untouched keys that the changes below go in a delta, not a full file.
    for (let k = 0; k < 20_000; k++) {
      put(table, k, k);
      if (k % 100 === 0) ctx.state.maintain();
    }
    await harness.checkpoint([{ ctx }]);
    for (let k = 0; k < 1_000; k++) {
      table.delete(table.get(hashValues([k]), [k])!);
      put(table, k, -k - 1);
      if (k % 100 === 0) ctx.state.maintain(); // on disk: the new value leaves memory after its deletion
    }
    for (let k = 1_000; k < 2_000; k++) put(table, k, k + 1);
    ctx.state.maintain(); // on disk: most of these changes leave memory...
    for (let k = 1_000; k < 2_000; k++) table.delete(table.get(hashValues([k]), [k])!); // ...and are read back to be deleted
    ctx.state.maintain();
    const expected = new Map<number, number>();
    for (let k = 0; k < 1_000; k++) expected.set(k, -k - 1);
    for (let k = 2_000; k < 20_000; k++) expected.set(k, k);
    expect(dump(table)).toEqual(expected);
    const cp = await harness.checkpoint([{ ctx }]);
    expect(cp.operators.order![0]!.tables.t!.files.map((f) => f.full)).toEqual([true, false]);
    expect(dump((await harness.restore(0, 1)).state.keyed<number[]>("t"))).toEqual(expected);
  });

  test("a full file is written again instead of a delta that would bring the files past twice the keys, and restores the same", async () => {
    const harness = backend.harness("rebase");
    const ctx = harness.context();
    const table = ctx.state.keyed<number[]>("t");
    const keys = 50_000;
    for (let k = 0; k < keys; k++) {
      put(table, k, k);
      if (k % 1000 === 0) ctx.state.maintain();
    }
    const kinds: boolean[][] = [];
    for (let round = 0; round < 4; round++) {
      // Each round changes 60% of the keys: a second delta would bring the files to 2.2 records a key.
      if (round > 0) for (let k = 0; k < keys * 0.6; k++) put(table, k, k + round);
      ctx.state.maintain();
      const cp = await harness.checkpoint([{ ctx }]);
      kinds.push(cp.operators.rebase![0]!.tables.t!.files.map((f) => f.full));
    }
    expect(kinds).toEqual([[true], [true, false], [true], [true, false]]);
    expect(dump((await harness.restore(0, 1)).state.keyed<number[]>("t"))).toEqual(dump(table));
  });

  test("restoring at another parallelism: each subtask gets exactly its key groups, reading only their sections (files of several rounds of key groups)", async () => {
    const harness = backend.harness("rescale", 16);
    const roundBytes = snapshotTuning.roundBytes;
    snapshotTuning.roundBytes = 256 * 1024;
    const contexts = [0, 1].map((i) => harness.context(i, 2));
    const tables = contexts.map((c) => c.state.keyed<number[]>("t"));
    const keys = 200_000;
    for (let k = 0; k < keys; k++) {
      const kg = keyGroupOf(hashValues([k]), 16);
      put(tables[subtaskOfKeyGroup(kg, 2, 16)]!, k, k * 10);
      if (k % 1000 === 0) for (const c of contexts) c.state.maintain();
    }
    const written = await harness.checkpoint(contexts.map((ctx) => ({ ctx })));
    let read = 0;
    const readRange = harness.store.readRange.bind(harness.store);
    harness.store.readRange = async (path, offset, length) => {
      read += length;
      return readRange(path, offset, length);
    };
    const total = (await harness.store.listFiles("state/")).length;
    expect(total).toBe(2);
    const seen = new Map<number, number>();
    for (let i = 0; i < 5; i++) {
      const before = read;
      const t = (await harness.restore(i, 5)).state.keyed<number[]>("t");
      const [lo, hi] = keyGroupRange(i, 5, 16);
      for (const e of t.entries()) {
        const kg = keyGroupOf(e.hash, 16);
        expect(kg >= lo && kg < hi).toBe(true);
        seen.set(e.key[0] as number, e.value[0]!);
      }
      // About a fifth of the state, plus the two footers; never all of it.
      expect(read - before).toBeLessThan(0.35 * written.bytes);
    }
    expect(seen).toEqual(new Map(Array.from({ length: keys }, (_, k) => [k, k * 10])));
    snapshotTuning.roundBytes = roundBytes;
  });

  test("files no retained checkpoint references are deleted", async () => {
    const harness = backend.harness("gc");
    const ctx = harness.context();
    const table = ctx.state.keyed<number[]>("t");
    for (let round = 0; round < 20; round++) {
      for (let k = 0; k < 100; k++) put(table, k + round, round);
      await harness.checkpoint([{ ctx }]);
    }
    const referenced = new Set((await harness.store.retained()).flatMap((cp) => cp.operators.gc![0]!.tables.t!.files.map((f) => f.path)));
    const present = await harness.store.listFiles("state/");
    expect(new Set(present)).toEqual(referenced);
    expect(present.length).toBeLessThanOrEqual(9 + 2);
  });
});

describe("time-keyed tables", () => {
  test("dropping by time is one range deletion that restores exactly", async () => {
    const harness = new StateHarness("time");
    const ctx = harness.context();
    const table = ctx.state.timeKeyed<number[]>("panes");
    for (let t = 0; t < 10; t++) for (let k = 0; k < 100; k++) table.update(t * 1000, hashValues([k]), [k], () => [t]);
    await harness.checkpoint([{ ctx }]);
    table.dropUpTo(4000);
    for (let k = 0; k < 5; k++) table.update(12_000, hashValues([k]), [k], () => [12]);
    const delta = await harness.checkpoint([{ ctx }]);
    expect(delta.operators.time![0]!.tables.panes!.files.at(-1)!.deletes).toBe(0);
    const restored = (await harness.restore(0, 1)).state.timeKeyed<number[]>("panes");
    expect([...restored.times()]).toEqual([5000, 6000, 7000, 8000, 9000, 12000]);
    expect(restored.size).toBe(505);
  });

  test("entries dropped between checkpoints are owed nothing: the next delta holds only the rest, and restores exactly", async () => {
    const harness = new StateHarness("time");
    const ctx = harness.context();
    const table = ctx.state.timeKeyed<number[]>("panes");
    await harness.checkpoint([{ ctx }]);
    // Windows made and fired within one interval (as most are): the change list must not keep them alive.
    for (let t = 0; t < 50; t++) {
      for (let k = 0; k < 200; k++) table.update(t * 1000, hashValues([k]), [k], () => [t]);
      table.dropUpTo(t * 1000 - 3000);
    }
    expect(table.pendingChanges).toBe(3 * 200);
    table.update(47_000, hashValues([0]), [0], () => [0]).value[0] = -1;
    const delta = await harness.checkpoint([{ ctx }]);
    expect(delta.operators.time![0]!.tables.panes!.files.at(-1)!.puts).toBe(3 * 200);
    const restored = (await harness.restore(0, 1)).state.timeKeyed<number[]>("panes");
    expect([...restored.times()]).toEqual([47_000, 48_000, 49_000]);
    const at47 = new Map([...restored.at(47_000)].map((e) => [e.key[0] as number, e.value[0]]));
    expect(at47.size).toBe(200);
    expect([...at47].every(([k, v]) => v === (k === 0 ? -1 : 47))).toBe(true);
  });
});
