/**
 * The hash edge routes each row to the subtask owning its key's key group (the
 * same one keyed state restores it on), keeps rows in order within a subtask,
 * and its key hasher hashes a run of one key once without carrying anything
 * it remembers past the batch.
 */
import { expect, test } from "bun:test";
import { Channel } from "../../../core/runtime/channel.ts";
import { HashEdge, keyHasherOf } from "../../../core/runtime/edges.ts";
import type { Batch, Row } from "../../../core/plugin-api/index.ts";
import { hashValues } from "../../../core/state/hash.ts";
import { subtaskOfHash } from "../../../core/state/key-groups.ts";

const taken = (ch: Channel) => {
  const out: Batch[] = [];
  for (let m = ch.take(); m; m = ch.take()) if (m.kind === "batch") out.push(m.batch);
  return out;
};

test("each row goes to the subtask of its key's key group, in order, with its time", async () => {
  const channels = [new Channel(8), new Channel(8), new Channel(8)];
  const edge = new HashEdge(channels, keyHasherOf([(row) => row[0], (row) => row[1]]), 128);
  const window = { start: 0, end: 10 };
  const rows: Row[] = Array.from({ length: 300 }, (_, i) => [i % 17, i % 2 ? window : "w", i]);
  await edge.send({ rows, times: rows.map((r) => (r[2] as number) * 10) });
  const got = channels.map(taken);
  let total = 0;
  got.forEach((batches, s) => {
    for (const b of batches) {
      total += b.rows.length;
      b.rows.forEach((r, j) => {
        expect(subtaskOfHash(hashValues([r[0], r[1]]), 3, 128)).toBe(s);
        expect(b.times[j]).toBe((r[2] as number) * 10);
        if (j > 0) expect(r[2] as number).toBeGreaterThan(b.rows[j - 1]![2] as number);
      });
    }
  });
  expect(total).toBe(300);
});

test("a batch whose rows all belong to one subtask is passed on whole; no empty batch is sent", async () => {
  const channels = [new Channel(8), new Channel(8)];
  const edge = new HashEdge(channels, keyHasherOf([(row) => row[0]]), 128);
  const key = [0, 1, 2, 3].find((k) => subtaskOfHash(hashValues([k]), 2, 128) === 1)!;
  const batch: Batch = { rows: [[key, "a"], [key, "b"]], times: [1, 2] };
  await edge.send(batch);
  expect(taken(channels[0]!)).toEqual([]);
  const [only] = taken(channels[1]!);
  expect(only).toBe(batch);
});

test("the key hasher hashes a run of one key once, as keyed state does, and forgets it on reset", () => {
  let evaluations = 0;
  const struct = { start: 5, end: 15 };
  const hasher = keyHasherOf([(row) => (evaluations++, row[0])]);
  const h1 = hasher([struct]);
  expect(h1).toBe(hashValues([struct]));
  expect(hasher([struct])).toBe(h1);
  expect(evaluations).toBe(2); // the key is still evaluated; its hash is what is remembered
  // A value changed in place between batches is hashed afresh after reset.
  hasher.reset!();
  struct.end = 16;
  expect(hasher([struct])).toBe(hashValues([{ start: 5, end: 16 }]));
  expect(hasher([3])).toBe(hashValues([3]));
  expect(hasher([NaN])).toBe(hashValues([NaN]));
});
