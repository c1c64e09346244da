/**
 * Two hot spots of kafkajs 2.2.4's producer, replaced by equivalents:
 * - `groupMessagesPerPartition` copies a partition's whole array for every
 *   message it adds (quadratic in the batch size: two thirds of the sink's CPU
 *   time in `bun run bench:kafka`); ours is linear.
 * - the record encoder allocates a zero-filled 512-byte buffer and does 64-bit
 *   `Long` arithmetic for every record; ours writes each record into a buffer
 *   of its exact size with plain numbers, byte for byte the same output
 *   (records with headers still go to kafkajs's own encoder).
 * - the record decoder does `Long` arithmetic and string conversions through
 *   `Long` for every record's offset and timestamp; ours uses plain numbers
 *   (exact below 2^53) and builds the same objects (records with headers
 *   still go to kafkajs's decoder).
 * They have to be in place before kafkajs loads, because its modules keep the
 * functions they required; so client.ts imports this module before kafkajs.
 * If kafkajs was loaded earlier in the process the originals stay (correct,
 * only slower).
 */
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

function groupMessagesPerPartition({ topic, partitionMetadata, messages, partitioner }: {
  topic: string;
  partitionMetadata: unknown[];
  messages: unknown[];
  partitioner: (args: { topic: string; partitionMetadata: unknown[]; message: unknown }) => number;
}): Record<number, unknown[]> {
  const result: Record<number, unknown[]> = {};
  if (partitionMetadata.length === 0) return result;
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    (result[partition] ??= []).push(message);
  }
  return result;
}

const zigzag = (n: number) => (n >= 0 ? n * 2 : -n * 2 - 1);

function uvarintSize(u: number): number {
  let size = 1;
  while (u >= 128) {
    u = Math.floor(u / 128);
    size++;
  }
  return size;
}

function writeUVarint(buf: Buffer, offset: number, u: number): number {
  while (u >= 128) {
    buf[offset++] = (u % 128) | 128;
    u = Math.floor(u / 128);
  }
  buf[offset++] = u;
  return offset;
}

type Bytes = Buffer | string | null | undefined;
const byteLength = (v: Bytes) => (v === null || v === undefined ? -1 : typeof v === "string" ? Buffer.byteLength(v) : v.length);

function writeBytes(buf: Buffer, offset: number, v: Bytes, length: number): number {
  offset = writeUVarint(buf, offset, zigzag(length));
  if (length <= 0) return offset;
  if (typeof v === "string") buf.write(v, offset, length, "utf8");
  else (v as Buffer).copy(buf, offset);
  return offset + length;
}

/** Record v0 (varint length, attributes, timestamp delta, offset delta, key, value, no headers) as a kafkajs Encoder. */
export function createRecordEncoder(Encoder: any, original: (args: any) => unknown) {
  return function Record(args: { offsetDelta?: number; timestampDelta?: number | { toNumber(): number }; key?: Bytes; value?: Bytes; headers?: Record<string, unknown> }) {
    const { offsetDelta = 0, key, value, headers } = args;
    if (headers && Object.keys(headers).length > 0) return original(args);
    const td = typeof args.timestampDelta === "object" && args.timestampDelta !== null ? args.timestampDelta.toNumber() : Number(args.timestampDelta ?? 0);
    if (!Number.isSafeInteger(td) || Math.abs(td) > 2 ** 50) return original(args);
    const keyLength = byteLength(key);
    const valueLength = byteLength(value);
    const body =
      1 +
      uvarintSize(zigzag(td)) +
      uvarintSize(zigzag(offsetDelta)) +
      uvarintSize(zigzag(keyLength)) +
      Math.max(keyLength, 0) +
      uvarintSize(zigzag(valueLength)) +
      Math.max(valueLength, 0) +
      1;
    const total = uvarintSize(zigzag(body)) + body;
    const buf = Buffer.allocUnsafe(total);
    let o = writeUVarint(buf, 0, zigzag(body));
    buf[o++] = 0; // attributes
    o = writeUVarint(buf, o, zigzag(td));
    o = writeUVarint(buf, o, zigzag(offsetDelta));
    o = writeBytes(buf, o, key, keyLength);
    o = writeBytes(buf, o, value, valueLength);
    buf[o++] = 0; // no headers
    const encoder = Object.create(Encoder.prototype);
    encoder.buf = buf;
    encoder.offset = o;
    return encoder;
  };
}

function preload(path: string, replace: (original: any) => unknown): boolean {
  const resolved = require.resolve(path);
  const entry = require.cache[resolved] ?? (require(resolved), require.cache[resolved]);
  if (!entry) return false;
  entry.exports = replace(entry.exports);
  return true;
}

export const kafkajsRecordPatched = (() => {
  try {
    if (require.cache[require.resolve("kafkajs/src/protocol/requests/produce/v3/request.js")]) return false;
    const Encoder = require("kafkajs/src/protocol/encoder.js");
    return preload("kafkajs/src/protocol/recordBatch/record/v0/index.js", (original) => createRecordEncoder(Encoder, original));
  } catch {
    return false;
  }
})();

function readUVarint(buf: Buffer, at: { o: number }): number {
  let result = 0;
  let scale = 1;
  for (;;) {
    const b = buf[at.o++]!;
    result += (b & 127) * scale;
    if (b < 128) return result;
    scale *= 128;
  }
}
const unzigzag = (u: number) => (u % 2 === 0 ? u / 2 : -(u + 1) / 2);

/** Record v0 decoding with numbers, producing kafkajs's record objects. */
export function createRecordDecoder(original: (decoder: any, batchContext?: any) => unknown) {
  const LOG_APPEND_TIME = 1;
  const firstNumbers = new WeakMap<object, { offset: number; timestamp: number }>();
  return function RecordDecoder(decoder: { buffer: Buffer; offset: number }, batchContext: any = {}) {
    const buf = decoder.buffer;
    const start = decoder.offset;
    const at = { o: start };
    const attributes = (buf[at.o++]! << 24) >> 24;
    const timestampDelta = unzigzag(readUVarint(buf, at));
    const offsetDelta = unzigzag(readUVarint(buf, at));
    const keyLength = unzigzag(readUVarint(buf, at));
    const key = keyLength < 0 ? null : buf.slice(at.o, (at.o += keyLength));
    const valueLength = unzigzag(readUVarint(buf, at));
    const value = valueLength < 0 ? null : buf.slice(at.o, (at.o += valueLength));
    const headerCount = unzigzag(readUVarint(buf, at));
    let first = firstNumbers.get(batchContext);
    if (!first) {
      first = { offset: Number(batchContext.firstOffset), timestamp: Number(batchContext.firstTimestamp) };
      firstNumbers.set(batchContext, first);
    }
    const offset = first.offset + offsetDelta;
    const timestamp = first.timestamp + timestampDelta;
    if (headerCount !== 0 || !Number.isSafeInteger(offset) || !Number.isSafeInteger(timestamp)) {
      decoder.offset = start;
      return original(decoder, batchContext);
    }
    decoder.offset = at.o;
    return {
      magicByte: batchContext.magicByte,
      attributes,
      timestamp: batchContext.timestampType === LOG_APPEND_TIME && batchContext.maxTimestamp ? batchContext.maxTimestamp : String(timestamp),
      offset: String(offset),
      key,
      value,
      headers: {},
      isControlRecord: batchContext.isControlBatch ?? false,
      batchContext,
    };
  };
}

export const kafkajsDecoderPatched = (() => {
  try {
    if (require.cache[require.resolve("kafkajs/src/protocol/recordBatch/v0/decoder.js")]) return false;
    return preload("kafkajs/src/protocol/recordBatch/record/v0/decoder.js", (original) => createRecordDecoder(original));
  } catch {
    return false;
  }
})();

export const kafkajsGroupingPatched = (() => {
  try {
    const path = require.resolve("kafkajs/src/producer/groupMessagesPerPartition.js");
    const sendMessages = require.resolve("kafkajs/src/producer/sendMessages.js");
    if (require.cache[sendMessages]) return false;
    const existing = require.cache[path];
    if (existing) {
      existing.exports = groupMessagesPerPartition;
      return true;
    }
    require(path);
    require.cache[path]!.exports = groupMessagesPerPartition;
    return true;
  } catch {
    return false;
  }
})();
