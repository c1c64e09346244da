/**
 * Hot spots of kafkajs 2.2.4, replaced by equivalents:
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
 * - the produce request (v3, which v4-v7 reuse) wraps every record in an
 *   Encoder, copies the records into a batch Encoder that grows by zero-filled
 *   doubling, then copies the batch into the partition, the topic, the request
 *   and twice more into the framed request; ours writes an uncompressed request
 *   into one reused scratch buffer with a table-driven CRC32C and copies it
 *   out once, with the same bytes (compressed batches and records with headers
 *   still go to kafkajs's own encoder), and the framing copies the payload once.
 * - a fetch response's record set is sliced into a Buffer and a Decoder per
 *   batch and per record and gathered with `push(...records)`; ours reads
 *   uncompressed batches in place (compressed batches, legacy message sets and
 *   records with headers still go to kafkajs's decoders).
 * - a response's socket chunks are gathered with `Buffer.concat` into a fresh
 *   buffer; a Fetch response on the source's connections is copied into a
 *   reused one instead (receive.ts).
 * They have to be in place before kafkajs loads, because its modules keep the
 * functions they required; so client.ts imports this module before kafkajs.
 * If kafkajs was loaded earlier in the process the originals stay (correct,
 * only slower).
 */
import { createRequire } from "node:module";
import { BATCH_HEADER, batchHeader, isRawPayload, RawRecordSet, type RawBatch } from "./record-batch.ts";
import { processData, resetFraming } from "./receive.ts";

const RECEIVE_PATCHED = Symbol.for("runnel:kafkajs-receive-patched");

const require = createRequire(import.meta.url);

export function groupMessagesPerPartition({ topic, partitionMetadata, messages, partitioner }: {
  topic: string;
  partitionMetadata: unknown[];
  messages: unknown[];
  partitioner: (args: { topic: string; partitionMetadata: unknown[]; message: unknown }) => number;
}): Record<number, unknown[]> {
  const result: Record<number, unknown[]> = {};
  if (partitionMetadata.length === 0) return result;
  const group = (partitioner as { [GROUP]?: GroupMessages })[GROUP];
  if (group) return group(topic, partitionMetadata as PartitionMeta[], messages as PartitionedMessage[]);
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    (result[partition] ??= []).push(message);
  }
  return result;
}

interface PartitionMeta {
  partitionId: number;
  leader: number;
}
interface PartitionedMessage {
  partition?: number | null;
  key?: unknown;
}
/** A partitioner's whole-batch form: the same partitions as calling it per message, in order, without a call and an argument object per message. */
type GroupMessages = (topic: string, partitionMetadata: PartitionMeta[], messages: PartitionedMessage[]) => Record<number, unknown[]>;
const GROUP = Symbol("runnel:group-messages");

/**
 * kafkajs's DefaultPartitioner (Java client compatible: a given partition,
 * else murmur2 of the key, else round robin over partitions with a leader),
 * with the partitions that have a leader found once per metadata array rather
 * than filtered again for every message. `start` seeds the round robin per
 * topic (random, as kafkajs's); tests pass one.
 */
export function createDefaultPartitioner(murmur2: (key: unknown) => number, start: (topic: string) => number) {
  return () => {
    const counters = new Map<string, number>();
    const withLeader = new WeakMap<PartitionMeta[], PartitionMeta[]>();
    const leaders = (partitionMetadata: PartitionMeta[]) => {
      let available = withLeader.get(partitionMetadata);
      if (!available) withLeader.set(partitionMetadata, (available = partitionMetadata.filter((p) => p.leader >= 0)));
      return available;
    };
    const partition = ({ topic, partitionMetadata, message }: { topic: string; partitionMetadata: PartitionMeta[]; message: PartitionedMessage }) => {
      let counter = counters.get(topic);
      if (counter === undefined) counter = start(topic);
      if (message.partition !== null && message.partition !== undefined) {
        counters.set(topic, counter);
        return message.partition;
      }
      if (message.key !== null && message.key !== undefined) {
        counters.set(topic, counter);
        return (murmur2(message.key) & 0x7fffffff) % partitionMetadata.length;
      }
      const available = leaders(partitionMetadata);
      // kafkajs keeps the counter a JS number and takes its low 31 bits.
      counters.set(topic, ++counter);
      if (available.length > 0) return available[(counter & 0x7fffffff) % available.length]!.partitionId;
      return (counter & 0x7fffffff) % partitionMetadata.length;
    };
    const group: GroupMessages = (topic, partitionMetadata, messages) => {
      const result: Record<number, unknown[]> = {};
      let counter = counters.get(topic) ?? start(topic);
      const available = leaders(partitionMetadata);
      const spread = available.length > 0 ? available.map((p) => p.partitionId) : partitionMetadata.map((_, i) => i);
      const lists = spread.map((p) => (result[p] ??= []));
      const n = spread.length;
      for (let i = 0; i < messages.length; i++) {
        const message = messages[i]!;
        if (message.partition !== null && message.partition !== undefined) (result[message.partition] ??= []).push(message);
        else if (message.key !== null && message.key !== undefined) (result[(murmur2(message.key) & 0x7fffffff) % partitionMetadata.length] ??= []).push(message);
        else lists[(++counter & 0x7fffffff) % n]!.push(message);
      }
      counters.set(topic, counter);
      // Partitions no message went to are not in kafkajs's grouping.
      for (const p of spread) if (result[p]!.length === 0) delete result[p];
      return result;
    };
    return Object.assign(partition, { [GROUP]: group });
  };
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

// ------------------------------------------------------------------ produce requests

/** CRC32C (Castagnoli), slicing by 8: kafkajs's is byte at a time. */
const CRC_TABLES = (() => {
  const t = new Uint32Array(8 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 8; s++) t[s * 256 + i] = (t[(s - 1) * 256 + i]! >>> 8) ^ t[t[(s - 1) * 256 + i]! & 0xff]!;
  }
  return t;
})();

/** The software CRC32C, where the hardware one (below) is not available. */
export function crc32cSoftware(buf: Uint8Array, from = 0, to = buf.length): number {
  const t = CRC_TABLES;
  let crc = 0xffffffff;
  let i = from;
  for (; i + 8 <= to; i += 8) {
    const a = crc ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24));
    crc =
      t[7 * 256 + (a & 0xff)]! ^
      t[6 * 256 + ((a >>> 8) & 0xff)]! ^
      t[5 * 256 + ((a >>> 16) & 0xff)]! ^
      t[4 * 256 + (a >>> 24)]! ^
      t[3 * 256 + buf[i + 4]!]! ^
      t[2 * 256 + buf[i + 5]!]! ^
      t[256 + buf[i + 6]!]! ^
      t[buf[i + 7]!]!;
  }
  for (; i < to; i++) crc = t[(crc ^ buf[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * @node-rs/crc32's CRC32C (SSE 4.2 / ARM CRC instructions through N-API, about
 * 5× the software one here; every produced batch is checksummed whole), else
 * the software one when its binary is not there for this platform.
 */
const hardwareCrc32c = (() => {
  try {
    return (require("@node-rs/crc32") as { crc32c(input: Uint8Array, initial?: number): number }).crc32c;
  } catch {
    return null;
  }
})();

export function crc32c(buf: Uint8Array, from = 0, to = buf.length): number {
  if (hardwareCrc32c === null) return crc32cSoftware(buf, from, to);
  return hardwareCrc32c(from === 0 && to === buf.length ? buf : buf.subarray(from, to)) >>> 0;
}

/** A growable buffer reused across requests (one request is encoded at a time: encoding is synchronous). */
class Scratch {
  buf = Buffer.allocUnsafe(1 << 20);
  o = 0;
  reset(): void {
    this.o = 0;
  }
  need(n: number): void {
    if (this.o + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.o + n) size *= 2;
    const bigger = Buffer.allocUnsafe(size);
    this.buf.copy(bigger, 0, 0, this.o);
    this.buf = bigger;
  }
  int8(v: number): void {
    this.need(1);
    this.buf.writeInt8(v, this.o);
    this.o += 1;
  }
  int16(v: number): void {
    this.need(2);
    this.buf.writeInt16BE(v, this.o);
    this.o += 2;
  }
  int32(v: number): void {
    this.need(4);
    this.buf.writeInt32BE(v, this.o);
    this.o += 4;
  }
  int64(high: number, low: number): void {
    this.need(8);
    this.buf.writeInt32BE(high, this.o);
    this.buf.writeInt32BE(low, this.o + 4);
    this.o += 8;
  }
  /** Nullable string with an int16 length, as kafkajs's writeString. */
  string(v: string | null | undefined): void {
    if (v === null || v === undefined) return this.int16(-1);
    const n = Buffer.byteLength(v);
    this.int16(n);
    this.need(n);
    this.buf.write(v, this.o, n, "utf8");
    this.o += n;
  }
}

const scratch = new Scratch();

interface ProduceMessage {
  key?: Buffer | string | null;
  value?: Buffer | string | null;
  timestamp?: string | number | null;
  headers?: Record<string, unknown>;
}
interface ProduceArgs {
  acks: number;
  timeout: number;
  transactionalId?: string | null;
  producerId?: unknown;
  producerEpoch?: number;
  compression?: number;
  topicData: { topic: string; partitions: { partition: number; firstSequence?: number; messages: ProduceMessage[] }[] }[];
}

type LongLike = { getHighBits(): number; getLowBits(): number };

const asText = (v: unknown): Buffer | string | null => (typeof v === "string" ? v : v === null || v === undefined ? null : Buffer.isBuffer(v) ? v : String(v));

const utf8Write: (this: Buffer, s: string, offset: number) => number =
  (Buffer.prototype as any).utf8Write ?? function (this: Buffer, s: string, offset: number) {
    return this.write(s, offset, "utf8");
  };

/**
 * One record (Record v0: length, attributes, timestamp and offset deltas, key,
 * value, no headers) at the scratch's position. A text value is written before
 * its UTF-8 length is known, guessing one byte per character (what writing it
 * returns tells); a value with multi-byte characters is written again with its
 * real length in the prefixes.
 */
function writeRecord(w: Scratch, i: number, td: number, key: Buffer | string | null, value: Buffer | string | null): void {
  const keyLength = key === null ? -1 : typeof key === "string" ? Buffer.byteLength(key) : key.length;
  const tdz = zigzag(td);
  const head = 1 + uvarintSize(tdz) + uvarintSize(2 * i) + uvarintSize(zigzag(keyLength)) + (keyLength > 0 ? keyLength : 0);
  let valueLength = value === null ? -1 : value.length;
  w.need(20 + head + (value === null ? 0 : typeof value === "string" ? 3 * value.length : value.length) + 1);
  const buf = w.buf;
  for (;;) {
    let o = writeUVarint(buf, w.o, zigzag(head + uvarintSize(zigzag(valueLength)) + (valueLength > 0 ? valueLength : 0) + 1));
    buf[o++] = 0; // attributes
    o = writeUVarint(buf, o, tdz);
    o = writeUVarint(buf, o, 2 * i);
    o = writeUVarint(buf, o, zigzag(keyLength));
    if (keyLength > 0) o += typeof key === "string" ? utf8Write.call(buf, key, o) : key!.copy(buf, o);
    o = writeUVarint(buf, o, zigzag(valueLength));
    if (valueLength > 0) {
      const n = typeof value === "string" ? utf8Write.call(buf, value, o) : value!.copy(buf, o);
      if (n !== valueLength) {
        valueLength = n;
        continue;
      }
      o += n;
    }
    buf[o++] = 0; // no headers
    w.o = o;
    return;
  }
}

/** Writes one uncompressed record batch (kafkajs's RecordBatch v0 with Record v0 records). */
function writeBatch(w: Scratch, m: ProduceMessage[], a: ProduceArgs, firstSequence: number, long: (v: unknown) => LongLike): void {
  const dateNow = Date.now();
  // As kafkajs: the timestamps given, sorted as it sorts them (default sort), else now.
  let stamps: (string | number)[] = [];
  for (let i = 0; i < m.length; i++) {
    const t = m[i]!.timestamp;
    if (t != null) stamps.push(t);
  }
  if (stamps.length > 1) stamps = stamps.sort();
  const first = stamps.length === 0 ? dateNow : stamps[0]!;
  const max = stamps.length === 0 ? dateNow : stamps[stamps.length - 1]!;
  const firstNum = Number(first);
  w.int64(0, 0); // firstOffset
  const lengthAt = w.o;
  w.int32(0); // batch length, filled below
  w.int32(0); // partitionLeaderEpoch
  w.int8(2); // magic
  const crcAt = w.o;
  w.int32(0); // crc, filled below
  const crcFrom = w.o;
  w.int16(a.transactionalId ? 16 : 0); // attributes: no compression, create time, transactional bit
  w.int32(m.length - 1); // lastOffsetDelta
  const f = long(first);
  w.int64(f.getHighBits(), f.getLowBits());
  const x = long(max);
  w.int64(x.getHighBits(), x.getLowBits());
  const pid = long(a.producerId ?? -1);
  w.int64(pid.getHighBits(), pid.getLowBits());
  w.int16(a.producerEpoch ?? 0);
  w.int32(firstSequence);
  w.int32(m.length);
  for (let i = 0; i < m.length; i++) {
    const msg = m[i]!;
    writeRecord(w, i, Number(msg.timestamp || dateNow) - firstNum, asText(msg.key), asText(msg.value));
  }
  w.buf.writeInt32BE(w.o - lengthAt - 4, lengthAt);
  w.buf.writeUInt32BE(crc32c(w.buf, crcFrom, w.o), crcAt);
}

/** Whether every batch of the request can take the fast path (uncompressed, timestamps exact, no headers). */
function fastPathApplies(a: ProduceArgs, none: number): boolean {
  if ((a.compression ?? none) !== none) return false;
  for (const t of a.topicData) {
    for (const p of t.partitions) {
      for (const m of p.messages) {
        if (m.headers && Object.keys(m.headers).length > 0) return false;
        if (m.timestamp != null && !Number.isSafeInteger(Number(m.timestamp))) return false;
      }
    }
  }
  return true;
}

/** The whole produce request body (transactional id, acks, timeout, topics) in one buffer, as kafkajs's v3 request writes it. */
export function encodeProduce(a: ProduceArgs, Encoder: any, long: (v: unknown) => LongLike): unknown {
  const w = scratch;
  w.reset();
  w.string(a.transactionalId ?? null);
  w.int16(a.acks);
  w.int32(a.timeout);
  w.int32(a.topicData.length);
  for (const t of a.topicData) {
    w.string(t.topic);
    w.int32(t.partitions.length);
    for (const p of t.partitions) {
      w.int32(p.partition);
      const sizeAt = w.o;
      w.int32(0);
      writeBatch(w, p.messages, a, p.firstSequence ?? 0, long);
      w.buf.writeInt32BE(w.o - sizeAt - 4, sizeAt);
    }
  }
  // Copied out once, after room for the request header, which the framing then writes in place.
  const out = Buffer.allocUnsafe(FRAME_ROOM + w.o);
  w.buf.copy(out, FRAME_ROOM, 0, w.o);
  const encoder = Object.create(Encoder.prototype);
  encoder.buf = out.subarray(FRAME_ROOM);
  encoder.offset = w.o;
  encoder[ROOM_BEFORE] = out;
  return encoder;
}

/** Bytes kept free before an encoded produce request for its header (size, api key and version, correlation id, client id). */
const FRAME_ROOM = 128;
const ROOM_BEFORE = Symbol("runnel:room-before");

export function createProduceRequest(original: (args: ProduceArgs) => any, Encoder: any, long: (v: unknown) => LongLike, none: number) {
  return (args: ProduceArgs) => {
    const request = original(args);
    if (!fastPathApplies(args, none)) return request;
    return { ...request, encode: async () => encodeProduce(args, Encoder, long) };
  };
}

/** Frames a request (size, api key and version, correlation id, client id, payload) with one copy of the payload. */
export function createRequestFraming(Encoder: any) {
  return async ({ correlationId, clientId, request: { apiKey, apiVersion, encode } }: any) => {
    const payload = await encode();
    const body: Buffer = payload.buf;
    const n: number = payload.offset;
    const idLength = clientId === null || clientId === undefined ? -1 : Buffer.byteLength(clientId);
    const headerSize = 2 + 2 + 4 + 2 + Math.max(idLength, 0);
    const room: Buffer | undefined = payload[ROOM_BEFORE];
    const inPlace = room !== undefined && n === body.length && 4 + headerSize <= FRAME_ROOM;
    const out = inPlace ? room.subarray(FRAME_ROOM - 4 - headerSize, FRAME_ROOM + n) : Buffer.allocUnsafe(4 + headerSize + n);
    out.writeInt32BE(headerSize + n, 0);
    out.writeInt16BE(apiKey, 4);
    out.writeInt16BE(apiVersion, 6);
    out.writeInt32BE(correlationId, 8);
    out.writeInt16BE(idLength, 12);
    if (idLength > 0) out.write(clientId, 14, idLength, "utf8");
    if (!inPlace) body.copy(out, 4 + headerSize, 0, n);
    const encoder = Object.create(Encoder.prototype);
    encoder.buf = out;
    encoder.offset = out.length;
    return encoder;
  };
}

export const kafkajsProducePatched = (() => {
  try {
    if (require.cache[require.resolve("kafkajs/src/protocol/requests/produce/v4/request.js")]) return false;
    const Encoder = require("kafkajs/src/protocol/encoder.js");
    const Long = require("kafkajs/src/utils/long.js");
    const { Types } = require("kafkajs/src/protocol/message/compression/index.js");
    return preload("kafkajs/src/protocol/requests/produce/v3/request.js", (original) => createProduceRequest(original, Encoder, (v) => Long.fromValue(v), Types.None));
  } catch {
    return false;
  }
})();

export const kafkajsFramingPatched = (() => {
  try {
    if (require.cache[require.resolve("kafkajs/src/network/connection.js")]) return false;
    const Encoder = require("kafkajs/src/protocol/encoder.js");
    return preload("kafkajs/src/protocol/request.js", () => createRequestFraming(Encoder));
  } catch {
    return false;
  }
})();

// ------------------------------------------------------------------ fetch responses

/**
 * A partition's record set in a fetch response, as kafkajs's decodeMessages
 * returns it (magic 2 batches): uncompressed batches are read in place, with
 * no Buffer slice nor Decoder per record and no `push(...records)`; compressed
 * batches, old message sets and records with headers go to kafkajs's code.
 * For a response marked raw (record-batch.ts) it returns a RawRecordSet
 * instead: the batches' headers and where their records lie (decompressed
 * first where compressed), for the source to read in place.
 */
export function createDecodeMessages(
  Decoder: any,
  RecordBatchDecoder: (d: any) => Promise<{ records: unknown[] }>,
  MessageSetDecoder: (d: any, size: number) => unknown,
  RecordDecoder: (d: any, ctx: any) => unknown,
  codecFor: (attributes: number) => { decompress(b: Buffer): Promise<Buffer> } | null,
) {
  const OVERHEAD = 49;
  return async (decoder: any) => {
    const size = decoder.readInt32();
    const buf: Buffer = decoder.buffer;
    const raw = isRawPayload(buf);
    if (size <= 0 || !decoder.canReadBytes(size)) return raw ? new RawRecordSet([], null) : [];
    const start: number = decoder.offset;
    const end = start + size;
    decoder.offset = end;
    if (buf.readInt8(start + 16) !== 2) {
      const legacy = await MessageSetDecoder(new Decoder(buf.subarray(start, end)), size);
      return raw ? new RawRecordSet([], legacy as unknown[]) : legacy;
    }
    const records: unknown[] = [];
    const batches: RawBatch[] = [];
    let o = start;
    while (end - o >= OVERHEAD) {
      const length = buf.readInt32BE(o + 8);
      const batchEnd = o + 12 + length;
      if (batchEnd > end) break; // a partial batch at the end (maxBytes cut it)
      const attributes = buf.readInt16BE(o + 21);
      if (raw) {
        const { attributes: _, ...header } = batchHeader(buf, o);
        const codec = codecFor(attributes);
        if (codec) {
          const records = header.count <= 0 ? Buffer.alloc(0) : await codec.decompress(buf.subarray(o + BATCH_HEADER, batchEnd));
          batches.push({ ...header, buf: records, pos: 0, end: records.length });
        } else {
          batches.push({ ...header, buf, pos: o + BATCH_HEADER, end: batchEnd });
        }
        o = batchEnd;
        continue;
      }
      if ((attributes & 0x07) !== 0) {
        const batch = await RecordBatchDecoder(new Decoder(buf.subarray(o, batchEnd)));
        for (const r of batch.records) records.push(r);
        o = batchEnd;
        continue;
      }
      const firstOffset = buf.readBigInt64BE(o);
      const firstTimestamp = buf.readBigInt64BE(o + 27);
      const timestampType = (attributes & 0x08) > 0 ? 1 : 0;
      const ctx = {
        firstOffset: String(firstOffset),
        firstTimestamp: String(firstTimestamp),
        partitionLeaderEpoch: buf.readInt32BE(o + 12),
        inTransaction: (attributes & 0x10) > 0,
        isControlBatch: (attributes & 0x20) > 0,
        lastOffsetDelta: buf.readInt32BE(o + 23),
        producerId: String(buf.readBigInt64BE(o + 43)),
        producerEpoch: buf.readInt16BE(o + 51),
        firstSequence: buf.readInt32BE(o + 53),
        maxTimestamp: String(buf.readBigInt64BE(o + 35)),
        timestampType,
        magicByte: buf.readInt8(o + 16),
      };
      const count = buf.readInt32BE(o + 57);
      const exact = firstOffset <= BigInt(Number.MAX_SAFE_INTEGER) && firstTimestamp <= BigInt(Number.MAX_SAFE_INTEGER) && firstTimestamp >= -BigInt(Number.MAX_SAFE_INTEGER);
      const firstOff = Number(firstOffset);
      const firstTs = Number(firstTimestamp);
      const at = { o: o + 61 };
      for (let i = 0; i < count; i++) {
        const len = unzigzag(readUVarint(buf, at));
        const recStart = at.o;
        const recEnd = recStart + len;
        const attr = (buf[at.o++]! << 24) >> 24;
        const td = unzigzag(readUVarint(buf, at));
        const od = unzigzag(readUVarint(buf, at));
        const keyLength = unzigzag(readUVarint(buf, at));
        const key = keyLength < 0 ? null : buf.subarray(at.o, (at.o += keyLength));
        const valueLength = unzigzag(readUVarint(buf, at));
        const value = valueLength < 0 ? null : buf.subarray(at.o, (at.o += valueLength));
        const headerCount = unzigzag(readUVarint(buf, at));
        const offset = firstOff + od;
        const timestamp = firstTs + td;
        if (headerCount !== 0 || !exact || !Number.isSafeInteger(offset) || !Number.isSafeInteger(timestamp)) {
          records.push(RecordDecoder(new Decoder(buf.subarray(recStart, recEnd)), ctx));
        } else {
          records.push({
            magicByte: ctx.magicByte,
            attributes: attr,
            timestamp: timestampType === 1 && ctx.maxTimestamp ? ctx.maxTimestamp : String(timestamp),
            offset: String(offset),
            key,
            value,
            headers: {},
            isControlRecord: ctx.isControlBatch,
            batchContext: ctx,
          });
        }
        at.o = recEnd;
      }
      o = batchEnd;
    }
    return raw ? new RawRecordSet(batches, null) : records;
  };
}

export const kafkajsFetchPatched = (() => {
  try {
    if (require.cache[require.resolve("kafkajs/src/protocol/requests/fetch/v4/response.js")]) return false;
    const Decoder = require("kafkajs/src/protocol/decoder.js");
    const RecordBatchDecoder = require("kafkajs/src/protocol/recordBatch/v0/decoder.js");
    const MessageSetDecoder = require("kafkajs/src/protocol/messageSet/decoder.js");
    const RecordDecoder = require("kafkajs/src/protocol/recordBatch/record/v0/decoder.js");
    const { lookupCodecByAttributes } = require("kafkajs/src/protocol/message/compression/index.js");
    return preload("kafkajs/src/protocol/requests/fetch/v4/decodeMessages.js", () => createDecodeMessages(Decoder, RecordBatchDecoder, MessageSetDecoder, RecordDecoder, lookupCodecByAttributes));
  } catch {
    return false;
  }
})();

// ------------------------------------------------------------------ receiving

/**
 * Responses framed by receive.ts's processData (Fetch responses into reused
 * buffers on connections given a pool). A connection that connects again
 * starts framing afresh: bytes left from its previous socket belong to no
 * response on the new one.
 */
export const kafkajsReceivePatched = (() => {
  try {
    const Connection = require("kafkajs/src/network/connection.js");
    const proto = Connection.prototype;
    if (typeof proto.processData !== "function" || typeof proto.connect !== "function") return false;
    if (proto[RECEIVE_PATCHED]) return true;
    const connect = proto.connect;
    proto.connect = function (this: any) {
      if (!this.isConnected()) resetFraming(this);
      return connect.call(this);
    };
    proto.processData = processData;
    proto[RECEIVE_PATCHED] = true;
    return true;
  } catch {
    return false;
  }
})();
