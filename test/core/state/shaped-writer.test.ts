/**
 * Writers compiled for a record's shape write exactly the generic writer's
 * bytes, for every kind of value at every place of a record, and for records
 * whose shape differs from the one compiled (other types, lengths, nulls),
 * including past the number of shapes a writer compiles.
 */
import { describe, expect, test } from "bun:test";
import { ByteBuffer, writePut } from "../../../core/state/record-writer.ts";
import { ShapedWriter } from "../../../core/state/shaped-writer.ts";

const numbers = [0, -0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, 0.5, -0.25, 1.7e15 + 0.5, Number.MAX_VALUE, NaN, Infinity, -Infinity];
const strings = ["", "a", "x".repeat(31), "x".repeat(32), "x".repeat(300), "é", "日本語", "😀", "€".repeat(30_000)];
const others: unknown[] = [null, true, false, undefined, 12n, new Date(1_700_000_000_000), new Uint8Array([1, 2]), { a: 1, b: [2] }, [], [1, "a", null], Array.from({ length: 16 }, (_, i) => i), [[[[["deep"]]]]]];
const every = [...numbers, ...strings, ...others];

function generic(time: number | null, hash: number, key: unknown[], value: unknown): Uint8Array {
  const w = new ByteBuffer(4);
  writePut(w, time, hash, key, value);
  return w.buf.slice(0, w.n);
}

/** Writes the records through one writer into one buffer (a small one, so it grows), and compares each record's bytes. */
function expectSameBytes(writer: ShapedWriter, records: [number | null, number, unknown[], unknown][]): void {
  const w = new ByteBuffer(8);
  for (const [time, hash, key, value] of records) {
    const start = w.n;
    writer.put(w, time, hash, key, value);
    const got = w.buf.slice(start, w.n);
    const want = generic(time, hash, key, value);
    if (!Buffer.from(got).equals(Buffer.from(want))) throw new Error(`bytes differ for ${Bun.inspect([time, hash, key, value]).slice(0, 300)}`);
  }
}

describe("a shaped writer writes the generic writer's bytes", () => {
  test("the shape of a grouped count and sum, with every number at every place", () => {
    const writer = new ShapedWriter();
    const records: [number | null, number, unknown[], unknown][] = [];
    for (const n of numbers) records.push([null, 0xdeadbeef, [n], [[n, 1.5], n]], [1_700_000_000_000_000, -5, [7], [[3, n], 2]], [n, n, [n], [[n, n], n]]);
    expectSameBytes(writer, records);
    expect(writer.shapes).toBe(1);
  });

  test("every value in every place of a record learned from each (keys of two, values nested)", () => {
    for (const first of every) {
      const writer = new ShapedWriter();
      const records: [number | null, number, unknown[], unknown][] = [[1, 2, [first, "k"], [first, [first, 3]]]];
      for (const v of every) records.push([1, 2, [v, "k"], [v, [v, 3]]], [null, 2, [first, v], [[v], v]], [-1.5, 7, [v], v]);
      expectSameBytes(writer, records);
    }
  });

  test("records of another shape (types, lengths, nulls) are written right, compiled or generic", () => {
    const writer = new ShapedWriter();
    const shapes: [number | null, number, unknown[], unknown][] = [
      [null, 1, [1], [[1, 2], 3]],
      [null, 1, ["a"], [[1, 2], 3]],
      [null, 1, [1], [[1, 2, 3], 3]],
      [null, 1, [1], [[null, 2], null]],
      [null, 1, [1, 2], { a: 1 }],
      [null, 1, [true], [false, "s", null]],
      [null, 1, [], 5],
      [null, 1, Array.from({ length: 16 }, (_, i) => i), 5],
      [null, 1, Array.from({ length: 17 }, (_, i) => `k${i}`), [1, 2]],
      [null, 1, [1], "no array"],
      ["not a time" as unknown as number, 1, [1], 1],
    ];
    // Twice, so the second pass goes through the writers the first compiled (and the generic writer for the rest).
    expectSameBytes(writer, [...shapes, ...shapes]);
    expect(writer.shapes).toBe(4);
  });

  test("keys of 16 values and more (a longer array header) are written right from the first record", () => {
    for (const length of [15, 16, 17, 40]) {
      const key = Array.from({ length }, (_, i) => (i % 2 ? `k${i}` : i));
      expectSameBytes(new ShapedWriter(), [
        [null, 1, key, [1, 2.5]],
        [7, 2, key, [3, 4]],
      ]);
    }
  });

  test("a string or an object beside numbers regrows the buffer midway through a record", () => {
    const writer = new ShapedWriter();
    const long = "é".repeat(50_000);
    expectSameBytes(writer, [
      [null, 1, ["k", 1], [1, "short", 2.5, null]],
      [3, 4, [long, 2], [1, long, 2.5, 7]],
      [3, 4, ["k", 2], [1, "x", Number.MAX_VALUE, long]],
      [null, 1, [{ a: long }, 3], [{ b: [1, long] }, "s", 0, 1]],
    ]);
  });
});
