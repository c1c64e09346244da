/** Iceberg's bucket hash and transforms against the values the Iceberg spec's appendix lists. */
import { describe, expect, test } from "bun:test";
import { field, t } from "../../../core/plugin-api/index.ts";
import { applyTransform, bucketHash, dirValue, parseDirValue, type PartitionField } from "../../../plugins/connector-iceberg/transforms.ts";

describe("iceberg bucket hash (32-bit Murmur3 x86, seed 0)", () => {
  test("matches the spec's hashes for int, long, timestamp and string", () => {
    expect(bucketHash(field("i", t.int()), 34)).toBe(2017239379);
    expect(bucketHash(field("l", t.bigint()), 34)).toBe(2017239379);
    expect(bucketHash(field("ts", t.timestamp()), Date.UTC(2017, 10, 16, 22, 31, 8) * 1000)).toBe(-2047944441);
    expect(bucketHash(field("s", t.string()), "iceberg")).toBe(1210000089);
    expect(bucketHash(field("b", t.bytes()), new Uint8Array([0, 1, 2, 3]))).toBe(-188683207);
  });
});

describe("iceberg partition transforms and their directory values", () => {
  const ts = field("ts", t.timestamp());
  const of = (transform: PartitionField["transform"], buckets?: number): PartitionField => ({ name: "p", sourceId: 1, fieldId: 1000, source: ts, transform, buckets });
  const us = Date.UTC(2024, 1, 29, 23, 59, 59) * 1000 + 999;
  test("day and hour count from the epoch, before it too, and parse back from their directory value", () => {
    expect(applyTransform(of("day"), us)).toBe(19782);
    expect(applyTransform(of("hour"), us)).toBe(19782 * 24 + 23);
    expect(applyTransform(of("day"), -1)).toBe(-1);
    for (const p of [of("day"), of("hour"), of("bucket", 16)]) {
      const v = applyTransform(p, us);
      expect(parseDirValue(p, dirValue(p, v))).toBe(v);
    }
    expect(dirValue(of("day"), 19782)).toBe("2024-02-29");
    expect(dirValue(of("hour"), 19782 * 24 + 23)).toBe("2024-02-29-23");
    expect(parseDirValue(of("day"), dirValue(of("day"), null))).toBe(null);
  });
});
