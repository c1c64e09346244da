/**
 * The record encoder that replaces kafkajs's writes the same bytes as
 * kafkajs's own for every kind of key, value and timestamp delta.
 */
import { expect, test } from "bun:test";
import { createRequire } from "node:module";
import { createRecordEncoder } from "../../../plugins/connector-kafka/kafkajs-fixes.ts";
import { markRaw, RawRecordSet, RecordCursor } from "../../../plugins/connector-kafka/record-batch.ts";

const require = createRequire(import.meta.url);
const Encoder = require("kafkajs/src/protocol/encoder.js");

// kafkajs's own Record, loaded apart from the patched module cache entry.
function originalRecord(): (args: unknown) => { buffer: Buffer } {
  const path = require.resolve("kafkajs/src/protocol/recordBatch/record/v0/index.js");
  const source = require("node:fs").readFileSync(path, "utf8");
  const module = { exports: {} as any };
  const fn = new Function("module", "exports", "require", source);
  fn(module, module.exports, (p: string) => require(require("node:path").resolve(require("node:path").dirname(path), p)));
  return module.exports;
}

test("the fast record encoder writes kafkajs's bytes exactly", () => {
  const original = originalRecord();
  const fast = createRecordEncoder(Encoder, original);
  const cases = [
    { offsetDelta: 0, timestampDelta: 0, key: null, value: "{}" },
    { offsetDelta: 5, timestampDelta: 1234, key: "user-1", value: '{"a":"é ü 東京"}' },
    { offsetDelta: 70000, timestampDelta: -5000, key: Buffer.from([0, 1, 2]), value: Buffer.alloc(300, 7) },
    { offsetDelta: 127, timestampDelta: 2 ** 40, key: "", value: "" },
    { offsetDelta: 1, timestampDelta: 3, key: "k", value: null },
    { offsetDelta: 2, timestampDelta: 9, key: "k", value: "v".repeat(20000) },
  ];
  for (const c of cases) {
    expect(Buffer.compare((fast(c) as any).buffer, original(c).buffer)).toBe(0);
  }
  // Headers go to kafkajs's own encoder.
  const withHeaders = { offsetDelta: 0, timestampDelta: 0, key: "k", value: "v", headers: { h: "x" } };
  expect(Buffer.compare((fast(withHeaders) as any).buffer, original(withHeaders).buffer)).toBe(0);
});

test("a process that loads the connector gets kafkajs with the replacements in place", async () => {
  // In its own process, as the runnel command loads plugins (this test process may have loaded kafkajs already).
  const client = require.resolve("../../../plugins/connector-kafka/client.ts");
  const proc = Bun.spawn(["bun", "-e", `const m = await import(${JSON.stringify(client)}); console.log(JSON.stringify([m.kafkajsGroupingPatched, m.kafkajsRecordPatched, m.kafkajsDecoderPatched, m.kafkajsProducePatched, m.kafkajsFramingPatched, m.kafkajsFetchPatched, m.kafkajsReceivePatched]))`], { stdout: "pipe", stderr: "pipe" });
  const out = await new Response(proc.stdout).text();
  expect(await proc.exited).toBe(0);
  expect(JSON.parse(out.trim())).toEqual([true, true, true, true, true, true, true]);
});

test("the fast record decoder reads records as kafkajs's own does", () => {
  const { createRecordDecoder } = require("../../../plugins/connector-kafka/kafkajs-fixes.ts");
  const Decoder = require("kafkajs/src/protocol/decoder.js");
  const path = require.resolve("kafkajs/src/protocol/recordBatch/record/v0/decoder.js");
  const source = require("node:fs").readFileSync(path, "utf8");
  const module = { exports: {} as any };
  new Function("module", "exports", "require", source)(module, module.exports, (p: string) => require(require("node:path").resolve(require("node:path").dirname(path), p)));
  const original = module.exports;
  const fast = createRecordDecoder(original);
  const encode = createRecordEncoder(Encoder, originalRecord());
  const records = [
    { offsetDelta: 0, timestampDelta: 0, key: null, value: "{}" },
    { offsetDelta: 70000, timestampDelta: -5000, key: Buffer.from([0, 1, 2]), value: Buffer.alloc(300, 7) },
    { offsetDelta: 3, timestampDelta: 2 ** 40, key: "k", value: null },
    { offsetDelta: 4, timestampDelta: 1, key: "k", value: "v", headers: { h: "x", i: ["1", "2"] } },
  ];
  for (const timestampType of [0, 1]) {
    const context = { firstOffset: "123456789012", firstTimestamp: "1700000000000", maxTimestamp: "1700000009999", magicByte: 2, isControlBatch: false, timestampType, inTransaction: true, producerId: "7" };
    for (const r of records) {
      const bytes: Buffer = (encode(r) as any).buffer;
      // The batch decoder hands each record's bytes after its length prefix.
      const body = new Decoder(bytes).readVarIntBytes();
      const a = fast(new Decoder(body), context);
      const b = original(new Decoder(body), context);
      expect(a).toEqual(b);
    }
  }
});

/** Loads a kafkajs module apart from the (patched) module cache, with its requires resolved normally. */
function isolated(rel: string, overrides: Record<string, unknown> = {}): any {
  const path = require.resolve(`kafkajs/src/${rel}`);
  const source = require("node:fs").readFileSync(path, "utf8");
  const module = { exports: {} as any };
  const nodePath = require("node:path");
  new Function("module", "exports", "require", source)(module, module.exports, (p: string) => {
    const full = require.resolve(nodePath.resolve(nodePath.dirname(path), p));
    return full in overrides ? overrides[full] : require(full);
  });
  return module.exports;
}

test("the one-buffer produce request writes kafkajs's bytes exactly, framed the same", async () => {
  const { createProduceRequest, createRequestFraming, crc32c, crc32cSoftware } = require("../../../plugins/connector-kafka/kafkajs-fixes.ts");
  const Long = require("kafkajs/src/utils/long.js");
  const { Types } = require("kafkajs/src/protocol/message/compression/index.js");
  // kafkajs's own produce request over its own record encoder and batch (none of our replacements).
  const record = require.resolve("kafkajs/src/protocol/recordBatch/record/v0/index.js");
  const originalProduce = isolated("protocol/requests/produce/v3/request.js", { [record]: originalRecord() });
  const originalFraming = isolated("protocol/request.js");
  const fast = createProduceRequest(originalProduce, Encoder, (v: unknown) => Long.fromValue(v), Types.None);
  const framing = createRequestFraming(Encoder);
  const messages = (n: number, offset: number) =>
    Array.from({ length: n }, (_, i) => ({
      key: i % 3 === 0 ? null : i % 3 === 1 ? `user-${i}` : Buffer.from([i & 255, 1]),
      // Buffers, ASCII text, and text with multi-byte characters whose UTF-8 length crosses varint sizes.
      value: i % 5 === 0 ? Buffer.alloc(i, 9) : i % 7 === 0 ? `{"id":${i + offset},"s":"${"y".repeat(i % 150)}"}` : `{"id":${i + offset},"s":"é ü 東京 ${"x".repeat(i % 200)}"}`,
      ...(i % 4 === 0 ? { timestamp: String(1_700_000_000_000 + ((i * 7919) % 5000)) } : {}),
    }));
  const cases = [
    { acks: -1, timeout: 30000, transactionalId: "runnel-t-0-1", producerId: Long.fromValue(4711), producerEpoch: 3, compression: Types.None,
      topicData: [{ topic: "a", partitions: [{ partition: 0, firstSequence: 12, messages: messages(500, 0) }, { partition: 3, firstSequence: 0, messages: messages(1, 9) }] }, { topic: "bé", partitions: [{ partition: 1, firstSequence: 5, messages: messages(70, 1) }] }] },
    { acks: 1, timeout: 100, transactionalId: null, producerId: -1, producerEpoch: 0, topicData: [{ topic: "t", partitions: [{ partition: 2, messages: messages(3000, 5).map(({ timestamp: _, ...m }) => m) }] }] },
  ];
  for (const c of cases) {
    const ours = fast(c);
    const theirs = originalProduce(c);
    expect(ours.apiKey).toBe(theirs.apiKey);
    // Date.now() goes into batches without timestamps: the same instant for both.
    const now = Date.now;
    Date.now = () => 1_750_000_000_000;
    try {
      const a = await ours.encode();
      const b = await theirs.encode();
      expect(Buffer.compare(a.buffer, b.buffer)).toBe(0);
      // A short client id fits the room kept before the request; a long one does not.
      for (const clientId of ["runnel-é", "c".repeat(300)]) {
        const framedA = await framing({ correlationId: 77, clientId, request: ours });
        const framedB = await originalFraming({ correlationId: 77, clientId, request: theirs });
        expect(Buffer.compare(framedA.buffer, framedB.buffer)).toBe(0);
      }
    } finally {
      Date.now = now;
    }
  }
  // The CRC agrees with kafkajs's on lengths around the 8-byte stride.
  const crcOriginal = require("kafkajs/src/protocol/recordBatch/crc32C/index.js");
  for (const n of [0, 1, 7, 8, 9, 63, 64, 1000]) {
    const b = Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + 7) & 255));
    expect(crc32c(b)).toBe(crcOriginal(b));
    expect(crc32cSoftware(b)).toBe(crcOriginal(b));
    // A range of a larger buffer, as the produce encoder checksums a batch inside its scratch buffer.
    const padded = Buffer.concat([Buffer.from([1, 2, 3]), b, Buffer.from([4])]);
    expect(crc32c(padded, 3, 3 + n)).toBe(crcOriginal(b));
    expect(crc32cSoftware(padded, 3, 3 + n)).toBe(crcOriginal(b));
  }
});

test("the in-place fetch decoder returns kafkajs's records for plain, transactional, compressed, header-carrying and cut-off batches, and so does its raw record set read with a cursor", async () => {
  const { createDecodeMessages } = require("../../../plugins/connector-kafka/kafkajs-fixes.ts");
  const Decoder = require("kafkajs/src/protocol/decoder.js");
  const Long = require("kafkajs/src/utils/long.js");
  const { Types } = require("kafkajs/src/protocol/message/compression/index.js");
  const recordDecoderPath = require.resolve("kafkajs/src/protocol/recordBatch/record/v0/decoder.js");
  const batchDecoderPath = require.resolve("kafkajs/src/protocol/recordBatch/v0/decoder.js");
  // kafkajs's own decoders, none of our replacements.
  const originalRecordDecoder = isolated("protocol/recordBatch/record/v0/decoder.js");
  const originalBatchDecoder = isolated("protocol/recordBatch/v0/decoder.js", { [recordDecoderPath]: originalRecordDecoder });
  const original = isolated("protocol/requests/fetch/v4/decodeMessages.js", { [batchDecoderPath]: originalBatchDecoder });
  const { lookupCodecByAttributes } = require("kafkajs/src/protocol/message/compression/index.js");
  const fast = createDecodeMessages(Decoder, originalBatchDecoder, require("kafkajs/src/protocol/messageSet/decoder.js"), originalRecordDecoder, lookupCodecByAttributes);
  const { RecordBatch } = isolated("protocol/recordBatch/v0/index.js");
  const Record = originalRecord();
  const batch = async (first: number, n: number, opts: Record<string, unknown> = {}, headers = false) => {
    const records = Array.from({ length: n }, (_, i) =>
      Record({ offsetDelta: i, timestampDelta: i * 3, key: i % 2 ? `k${i}` : null, value: i % 7 === 0 ? null : `{"id":${first + i}}`, ...(headers && i === 1 ? { headers: { h: "x" } } : {}) }),
    );
    const encoded = await RecordBatch({ firstOffset: Long.fromValue(first), firstTimestamp: 1_700_000_000_000, maxTimestamp: 1_700_000_009_999, lastOffsetDelta: n - 1, records, ...opts });
    return encoded.buffer as Buffer;
  };
  const batches = Buffer.concat([
    await batch(100, 50),
    await batch(150, 20, { transactional: true, producerId: Long.fromValue(77), producerEpoch: 2, firstSequence: 9 }),
    await batch(170, 30, { compression: Types.GZIP }),
    await batch(200, 5, {}, true),
    await batch(2 ** 40, 4),
  ]);
  const cutOff = Buffer.concat([batches, (await batch(300, 10)).subarray(0, 70)]);
  for (const set of [batches, cutOff]) {
    const framed = Buffer.concat([Buffer.from([0, 0, 0, 0]), set]);
    framed.writeInt32BE(set.length, 0);
    const a = await fast(new Decoder(framed));
    const b = await original(new Decoder(framed));
    expect(a.length).toBe(109);
    expect(a).toEqual(b);
    // Marked raw, the same record set read in place with a cursor gives every record's fields as kafkajs does.
    markRaw(framed);
    const rawSet = await fast(new Decoder(framed));
    expect(rawSet).toBeInstanceOf(RawRecordSet);
    const read: unknown[] = [];
    for (const batch of rawSet.batches) {
      const c = new RecordCursor(batch);
      while (c.next()) {
        read.push({ offset: String(c.offset), timestamp: String(c.timestamp), key: c.key(), value: c.value(), producerId: batch.producerId, inTransaction: batch.inTransaction, isControl: batch.isControl });
      }
    }
    expect(read).toEqual(b.map((r: any) => ({ offset: r.offset, timestamp: r.timestamp, key: r.key, value: r.value, producerId: r.batchContext.producerId, inTransaction: r.batchContext.inTransaction, isControl: r.isControlRecord })));
  }
});

test("the partitioner picks kafkajs's DefaultPartitioner's partitions: given, by key hash, round robin over partitions with a leader", () => {
  const { createDefaultPartitioner } = require("../../../plugins/connector-kafka/kafkajs-fixes.ts");
  const murmur2 = require("kafkajs/src/producer/partitioners/default/murmur2.js");
  const start = 0xfffffff0; // near 2^32, so the counter passes where kafkajs's low 31 bits wrap
  const fixedBytes = Buffer.alloc(32);
  fixedBytes.writeUInt32BE(start, 0);
  const randomBytes = require.resolve("kafkajs/src/producer/partitioners/legacy/randomBytes.js");
  const original = isolated("producer/partitioners/legacy/partitioner.js", { [randomBytes]: () => fixedBytes })(murmur2)();
  const fast = createDefaultPartitioner(murmur2, () => start)();
  const all = [0, 1, 2, 3, 4].map((partitionId) => ({ partitionId, leader: partitionId === 2 ? -1 : 1 }));
  const messages = [
    ...Array.from({ length: 40 }, (_, i) => ({ key: i % 3 === 0 ? `user-${i}` : i % 3 === 1 ? Buffer.from([i, 7]) : null, value: "v" })),
    { partition: 2, key: "k", value: "v" },
    { partition: 0, key: null, value: "v" },
  ];
  for (const topic of ["a", "b"]) {
    for (const message of messages) {
      expect(fast({ topic, partitionMetadata: all, message })).toBe(original({ topic, partitionMetadata: all, message }));
    }
  }
  const leaderless = all.map((p) => ({ ...p, leader: -1 }));
  for (let i = 0; i < 7; i++) {
    const message = { key: null, value: "v" };
    expect(fast({ topic: "a", partitionMetadata: leaderless, message })).toBe(original({ topic: "a", partitionMetadata: leaderless, message }));
  }
});

test("grouping a batch with the partitioner's whole-batch form gives kafkajs's grouping: same partitions, same order, round robin carried across batches", () => {
  const { createDefaultPartitioner, groupMessagesPerPartition } = require("../../../plugins/connector-kafka/kafkajs-fixes.ts");
  const murmur2 = require("kafkajs/src/producer/partitioners/default/murmur2.js");
  const start = 0x7ffffff0; // the counter passes 2^31 within the batches
  const fixedBytes = Buffer.alloc(32);
  fixedBytes.writeUInt32BE(start, 0);
  const randomBytes = require.resolve("kafkajs/src/producer/partitioners/legacy/randomBytes.js");
  const original = isolated("producer/partitioners/legacy/partitioner.js", { [randomBytes]: () => fixedBytes })(murmur2)();
  const kafkajsGrouping = isolated("producer/groupMessagesPerPartition.js", {});
  const fast = createDefaultPartitioner(murmur2, () => start)();
  const all = [0, 1, 2, 3, 4].map((partitionId) => ({ partitionId, leader: partitionId === 2 ? -1 : 1 }));
  const leaderless = all.map((p) => ({ ...p, leader: -1 }));
  const batch = (n: number, seed: number) =>
    Array.from({ length: n }, (_, i) => (i % 11 === 3 ? { partition: (i + seed) % 5, value: `v${i}` } : i % 7 === 5 ? { key: `user-${i * seed}`, value: `v${i}` } : { key: null, value: `v${i}` }));
  for (const [topic, meta, n] of [["a", all, 50], ["b", all, 1], ["a", all, 333], ["a", leaderless, 20], ["a", all, 0], ["b", all, 9]] as const) {
    const messages = batch(n, n + 1);
    const ours = groupMessagesPerPartition({ topic, partitionMetadata: meta, messages, partitioner: fast });
    const theirs = kafkajsGrouping({ topic, partitionMetadata: meta, messages, partitioner: original });
    expect(Object.keys(ours)).toEqual(Object.keys(theirs));
    expect(ours).toEqual(theirs);
  }
});
