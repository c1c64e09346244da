/**
 * The exchange's column encoding of batches: every kind of value a row holds
 * comes back as it was sent (numbers bit for bit, -0 and NaN included), a value
 * shared by consecutive rows arrives shared, and a frame that does not add up
 * is refused rather than sized by.
 */
import { describe, expect, test } from "bun:test";
import { decodeBatch, encodeBatch } from "../../../core/cluster/batch-codec.ts";
import { encodeMessageFrame, FrameKind, FrameReader } from "../../../core/cluster/frames.ts";
import { RowOp, type Batch } from "../../../core/plugin-api/index.ts";

const bytesOf = (batch: Batch) => {
  const parts = encodeBatch(batch);
  const out = new Uint8Array(parts.bytes);
  let at = 0;
  for (const p of parts.list) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
};
// As a socket delivers them: inside a larger Buffer, at an odd offset.
const roundTrip = (batch: Batch) => {
  const bytes = bytesOf(batch);
  const chunk = Buffer.alloc(bytes.byteLength + 3);
  chunk.set(bytes, 1);
  return decodeBatch(chunk.subarray(1, 1 + bytes.byteLength));
};

describe("batch column encoding", () => {
  test("numbers: int32, wider integers, fractions, -0, NaN and infinities keep their exact value", () => {
    const values = [0, -0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 53 - 1, -(2 ** 60), 0.1, -2.5e-300, NaN, Infinity, -Infinity];
    const batch: Batch = { rows: values.map((v, i) => [v, i]), times: values.map((_, i) => 1_796_158_945_566_000 + i) };
    const got = roundTrip(batch);
    expect(got.rows.length).toBe(values.length);
    got.rows.forEach((r, i) => {
      expect(Object.is(r[0], values[i])).toBe(true);
      expect(r[1]).toBe(i);
    });
    expect(got.times).toEqual(batch.times);
    // An int32-only column keeps -0 apart from 0 too.
    expect(Object.is(roundTrip({ rows: [[1], [-0]], times: [1, 2] }).rows[1]![0], -0)).toBe(true);
  });

  test("strings, booleans, bigints, bytes, nulls, structs, arrays and maps, mixed in a column", () => {
    const rows = [
      [1, "a", true, 10n ** 30n, new Uint8Array([0, 255]), null, { start: 1, end: 2 }, [1, "x", null], [["k", 1]], undefined],
      [null, "ü€😀", false, -5n, new Uint8Array([]), null, { start: 1, end: 2 }, [], [], "mixed"],
      [2.5, "", null, null, null, null, null, null, null, 7],
    ];
    const got = roundTrip({ rows, times: [1, 2, 3] });
    expect(got.rows).toEqual(rows);
    expect(typeof got.rows[0]![3]).toBe("bigint");
    expect(got.rows[0]![4]).toBeInstanceOf(Uint8Array);
  });

  test("a struct shared by consecutive rows arrives as one object; equal but distinct ones stay distinct", () => {
    const w = { start: 10, end: 20 };
    const rows = [[1, w, 3], [2, w, 4], [3, { start: 10, end: 20 }, 5], [4, w, 6]];
    const got = roundTrip({ rows, times: [9, 9, 9, 9] });
    expect(got.rows).toEqual(rows);
    expect(got.rows[0]![1]).toBe(got.rows[1]![1]);
    expect(got.rows[1]![1]).not.toBe(got.rows[2]![1]);
  });

  test("changes keep their ops and old rows; rows of unequal widths and empty batches decode as sent", () => {
    const changes: Batch = { rows: [["k", 2], ["k", 3], ["j", 1]], times: [5, 6, 7], ops: [RowOp.Insert, RowOp.Update, RowOp.Delete], before: [null, ["k", 2], ["j", 1]] };
    expect(roundTrip(changes)).toEqual(changes);
    const ragged: Batch = { rows: [[1], [1, 2], []], times: [1, 2, 3] };
    expect(roundTrip(ragged)).toEqual(ragged);
    expect(roundTrip({ rows: [], times: [] })).toEqual({ rows: [], times: [] });
    const wide = { rows: [[1, 2, 3, 4, 5, "six"], [7, 8, 9, 10, 11, "twelve"]], times: [1, 2] };
    expect(roundTrip(wide)).toEqual(wide);
  });

  test("a frame reader hands a batch frame on as a data message", () => {
    const got: [FrameKind, number, unknown][] = [];
    const batch: Batch = { rows: [[1, "a"]], times: [3] };
    const frame = encodeMessageFrame(9, { kind: "batch", batch });
    expect(frame[4]).toBe(FrameKind.Batch);
    // Split across chunks, as a socket delivers.
    const reader = new FrameReader((kind, channel, body) => got.push([kind, channel, body]));
    reader.push(frame.subarray(0, 6));
    reader.push(frame.subarray(6));
    expect(got).toEqual([[FrameKind.Data, 9, { kind: "batch", batch }]]);
  });

  test("a batch whose counts do not add up is refused", () => {
    const good = bytesOf({ rows: [[1], [2], [3]], times: [1, 2, 3] });
    const claimsMore = good.slice();
    new DataView(claimsMore.buffer).setUint32(0, 1_000_000_000, true);
    expect(() => decodeBatch(claimsMore)).toThrow(/malformed batch/);
    expect(() => decodeBatch(good.subarray(0, good.byteLength - 2))).toThrow(/malformed batch/);
  });
});
