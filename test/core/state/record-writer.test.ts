/**
 * The record writer against msgpackr's reader: every value state holds reads
 * back as msgpackr reads its own encoding of it (the writer's fast paths and its
 * fallback to msgpackr alike), at every MessagePack size boundary.
 */
import { describe, expect, test } from "bun:test";
import { byteBuffer, writeDelete, writePut } from "../../../core/state/record-writer.ts";
import { packr, unpackSequence } from "../../../core/state/file-format.ts";
import { GroupedRecords } from "../../../core/state/file-format.ts";

const ints = [0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -1, -31, -32, -33, -127, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 53)];
const floats = [0.5, -0.25, 1e-300, 1.7e15 + 0.5, 1_700_000_000_000_000, Number.MAX_VALUE, Number.MIN_VALUE, NaN, Infinity, -Infinity];
const strings = ["", "a", "x".repeat(31), "x".repeat(32), "x".repeat(255), "x".repeat(256), "x".repeat(65535), "x".repeat(65536), "é", "naïve café", "日本語のテキスト", "😀 emoji", "é".repeat(20), "é".repeat(200), "€".repeat(30_000), "a\u0000b"];
const others: unknown[] = [null, true, false, undefined, 12n, -(2n ** 70n), new Date(1_700_000_000_000), new Uint8Array([1, 2, 3]), { a: 1, b: "two", c: [3] }, { nested: { deeper: [1, { x: null }] }, "é key": -0.5 }, Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])), {}, new Map([["k", 1]])];
const arrays = [[], [1, "a", null], Array.from({ length: 15 }, (_, i) => i), Array.from({ length: 16 }, (_, i) => i), Array.from({ length: 65536 }, (_, i) => i % 7), [[1, [2, [3, ["deep"]]]], { nested: [1, 2] }]];

/** What msgpackr's reader gives for msgpackr's own encoding of `v`. */
const viaMsgpackr = (v: unknown) => unpackSequence(packr.pack([v]).subarray(1))[0];

function roundTrip(time: number | null, hash: number, key: unknown[], value: unknown) {
  const into = byteBuffer(4);
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
});
