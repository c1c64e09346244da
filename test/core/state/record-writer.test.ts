/**
 * The record writer against msgpackr's reader: every value state holds reads
 * back as msgpackr reads its own encoding of it (the writer's fast paths and its
 * fallback to msgpackr alike), at every MessagePack size boundary.
 */
import { describe, expect, test } from "bun:test";
import { ByteBuffer, writeDelete, writePut } from "../../../core/state/record-writer.ts";
import { packr, unpackSequence } from "../../../core/state/file-format.ts";
import { GroupedRecords, type StateChunk } from "../../../core/state/file-format.ts";

const ints = [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -1, -31, -32, -33, -127, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 53)];
const floats = [0.5, -0.25, 1e-300, 1.7e15 + 0.5, 1_700_000_000_000_000, Number.MAX_VALUE, Number.MIN_VALUE, NaN, Infinity, -Infinity];
const strings = ["", "a", "x".repeat(31), "x".repeat(32), "x".repeat(255), "x".repeat(256), "x".repeat(65535), "x".repeat(65536), "é", "naïve café", "日本語のテキスト", "😀 emoji", "é".repeat(20), "é".repeat(200), "€".repeat(30_000), "a\u0000b"];
const others: unknown[] = [null, true, false, undefined, 12n, -(2n ** 70n), new Date(1_700_000_000_000), new Uint8Array([1, 2, 3]), { a: 1, b: "two", c: [3] }, { nested: { deeper: [1, { x: null }] }, "é key": -0.5 }, Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])), {}, new Map([["k", 1]])];
const arrays = [[], [1, "a", null], Array.from({ length: 15 }, (_, i) => i), Array.from({ length: 16 }, (_, i) => i), Array.from({ length: 65536 }, (_, i) => i % 7), [[1, [2, [3, ["deep"]]]], { nested: [1, 2] }]];

/** What msgpackr's reader gives for msgpackr's own encoding of `v`. */
const viaMsgpackr = (v: unknown) => unpackSequence(packr.pack([v]).subarray(1))[0];

function roundTrip(time: number | null, hash: number, key: unknown[], value: unknown) {
  const into = new ByteBuffer(4);
  writePut(into, time, hash, key, value);
  writeDelete(into, time, hash, key);
  const [put, del] = unpackSequence(into.buf.subarray(0, into.n));
  return { put: put as unknown[], del: del as unknown[] };
}

describe("the record writer reads back as msgpackr's own encoding does", () => {
  for (const [label, values] of Object.entries({ ints, floats, strings, others, arrays })) {
    test(label, () => {
      for (const v of values) {
        const { put, del } = roundTrip(1_700_000_000_000_000, 0xdeadbeef, [v, "k"], [v, 7]);
        expect(put).toEqual([1, 1_700_000_000_000_000, 0xdeadbeef, [viaMsgpackr(v), "k"], [viaMsgpackr(v), 7]]);
        expect(del).toEqual([0, 1_700_000_000_000_000, 0xdeadbeef, [viaMsgpackr(v), "k"]]);
      }
    });
  }

  test("-0 stays -0 (msgpackr writes it as 0)", () => {
    const { put } = roundTrip(null, 0, [-0], -0);
    expect(Object.is(put[4], -0)).toBe(true);
    expect(Object.is((put[3] as unknown[])[0], -0)).toBe(true);
  });

  test("a key group's buffer grows across many records and keeps every one", () => {
    const grouped = new GroupedRecords();
    const want: unknown[] = [];
    for (let i = 0; i < 20_000; i++) {
      const value = [i, `name-${i}`, i % 3 === 0 ? null : i * 1.5, "é".repeat(i % 40)];
      grouped.put(i % 3, i % 2 === 0 ? null : i, i * 2654435761 >>> 0, [i], value);
      if (i % 3 === 1) want.push([1, i % 2 === 0 ? null : i, (i * 2654435761) >>> 0, [i], value]);
    }
    grouped.addRecord(1, [0, null, 5, ["gone"]]);
    want.push([0, null, 5, ["gone"]]);
    const chunks = grouped.take();
    expect(chunks.map((c) => c.kg)).toEqual([0, 1, 2]);
    const one = chunks[1]!;
    expect(one.puts).toBe(6667);
    expect(one.deletes).toBe(1);
    expect(unpackSequence(one.bytes)).toEqual(want);
  });

  test("records of many key groups, written interleaved over several rounds, come back per group in the order written", () => {
    const grouped = new GroupedRecords();
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const rounds: { chunks: StateChunk[]; want: Map<number, { records: unknown[]; puts: number; deletes: number }> }[] = [];
    for (let round = 0; round < 3; round++) {
      const want = new Map<number, { records: unknown[]; puts: number; deletes: number }>();
      const expect1 = (kg: number) => want.get(kg) ?? (want.set(kg, { records: [], puts: 0, deletes: 0 }), want.get(kg)!);
      for (let i = 0; i < 5000; i++) {
        // Key groups up to 5000 (a job's max parallelism can be that high), long values past the short-record copy.
        const kg = random() < 0.5 ? Math.floor(random() * 8) : Math.floor(random() * 5000);
        const value = random() < 0.1 ? "v".repeat(Math.floor(random() * 300)) : [i, round];
        const w = expect1(kg);
        const kind = random();
        if (kind < 0.7) {
          grouped.put(kg, null, i, [i], value);
          w.records.push([1, null, i, [i], value]);
          w.puts++;
        } else if (kind < 0.85) {
          grouped.addRecord(kg, [0, i, i, [i]]);
          w.records.push([0, i, i, [i]]);
          w.deletes++;
        } else {
          // Records encoded elsewhere (a disk table's), added with their counts.
          const a = packr.pack([1, null, i, [i], value]);
          const b = packr.pack([0, null, i, [i]]);
          const both = new Uint8Array(a.byteLength + b.byteLength);
          both.set(a);
          both.set(b, a.byteLength);
          grouped.add(kg, both, 1, 1);
          w.records.push([1, null, i, [i], value], [0, null, i, [i]]);
          w.puts++;
          w.deletes++;
        }
      }
      rounds.push({ chunks: grouped.take(), want });
      expect(grouped.bytes).toBe(0);
    }
    // Checked after every round is written: a round's chunks stay as they were while later rounds write
    // into buffers as large as theirs (a writer may hold chunks that long).
    for (const { chunks, want } of rounds) {
      expect(chunks.map((c) => c.kg)).toEqual([...want.keys()].sort((a, b) => a - b));
      for (const c of chunks) {
        const w = want.get(c.kg)!;
        expect([c.puts, c.deletes]).toEqual([w.puts, w.deletes]);
        expect(unpackSequence(c.bytes)).toEqual(w.records);
      }
    }
    expect(grouped.take()).toEqual([]);
  });

  test("buffers given back once written are written into by later rounds, which hold only their own records", () => {
    const grouped = new GroupedRecords();
    const round = (n: number, tag: string) => {
      for (let i = 0; i < n; i++) grouped.put(i % 16, null, i, [i], [tag, i]);
      return grouped.take();
    };
    // Round 1 grows the groups' buffers with long records; round 3 writes fewer, shorter ones into them.
    const first = round(4000, "first round, a longer value");
    const firstBuffers = new Set(first.map((c) => c.bytes.buffer));
    grouped.reuse(first);
    const second = round(100, "2");
    const third = round(50, "3");
    expect(second.some((c) => firstBuffers.has(c.bytes.buffer))).toBe(false);
    expect(third.every((c) => firstBuffers.has(c.bytes.buffer))).toBe(true);
    for (const [chunks, n, tag] of [[second, 100, "2"], [third, 50, "3"]] as const) {
      for (const c of chunks) {
        const want: unknown[] = [];
        for (let i = c.kg; i < n; i += 16) want.push([1, null, i, [i], [tag, i]]);
        expect(unpackSequence(c.bytes)).toEqual(want);
      }
    }
  });
});

