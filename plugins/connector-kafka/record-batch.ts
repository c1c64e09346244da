/**
 * Record batches (magic 2) of a fetch response, read in place. The source asks
 * for a fetch's record sets raw (`markRaw` on the response payload before
 * kafkajs decodes it): each partition's `messages` is then a `RawRecordSet`
 * instead of kafkajs's record objects, and the source reads every record's
 * offset, timestamp and value bytes with a `RecordCursor` straight into rows.
 * That skips an object, two number-to-string conversions (and back), and a
 * Buffer per record.
 */

const rawPayloads = new WeakSet<Uint8Array>();

/** Makes kafkajs's fetch decoding keep this response's record sets raw. */
export function markRaw(payload: Uint8Array): void {
  rawPayloads.add(payload);
}

export function isRawPayload(payload: Uint8Array): boolean {
  return rawPayloads.has(payload);
}

/** One record batch: its header, and where its (uncompressed) records lie. */
export interface RawBatch {
  /** The response payload, or the batch's decompressed records. */
  buf: Buffer;
  /** The first record's first byte, and the end of the last record. */
  pos: number;
  end: number;
  count: number;
  firstOffset: number;
  lastOffsetDelta: number;
  firstTimestamp: number;
  maxTimestamp: number;
  logAppendTime: boolean;
  producerId: string;
  inTransaction: boolean;
  isControl: boolean;
}

/** A partition's record set in a raw fetch: its batches, or kafkajs's messages for a legacy (magic 0/1) message set. */
export class RawRecordSet {
  constructor(
    readonly batches: RawBatch[],
    readonly legacy: unknown[] | null,
  ) {}
}

/** Size of a batch's header before its records (records count included). */
export const BATCH_HEADER = 61;

/** Reads a batch header at `o` (kafkajs's RecordBatch v0 layout); the records are placed by the caller. */
export function batchHeader(buf: Buffer, o: number): Omit<RawBatch, "buf" | "pos" | "end"> & { attributes: number } {
  const attributes = buf.readInt16BE(o + 21);
  return {
    attributes,
    count: buf.readInt32BE(o + 57),
    firstOffset: Number(buf.readBigInt64BE(o)),
    lastOffsetDelta: buf.readInt32BE(o + 23),
    firstTimestamp: Number(buf.readBigInt64BE(o + 27)),
    maxTimestamp: Number(buf.readBigInt64BE(o + 35)),
    logAppendTime: (attributes & 0x08) !== 0,
    producerId: String(buf.readBigInt64BE(o + 43)),
    inTransaction: (attributes & 0x10) !== 0,
    isControl: (attributes & 0x20) !== 0,
  };
}

/**
 * Walks a batch's records: after `next()` returns true, `offset`, `timestamp`
 * (ms) and the key's and value's positions (length -1 for null) describe the
 * record. Headers are skipped.
 */
export class RecordCursor {
  offset = 0;
  timestamp = 0;
  keyStart = 0;
  keyLength = -1;
  valueStart = 0;
  valueLength = -1;
  private o: number;
  private left: number;

  constructor(readonly batch: RawBatch) {
    this.o = batch.pos;
    this.left = batch.count;
  }

  next(): boolean {
    const b = this.batch;
    if (this.left === 0 || this.o >= b.end) return false;
    this.left--;
    const buf = b.buf;
    const length = this.varint();
    const end = this.o + length;
    if (end > b.end) throw new Error(`kafka record batch at offset ${b.firstOffset}: a record runs past the batch's end`);
    this.o++; // attributes (unused in record format v2)
    const timestampDelta = this.varint();
    const offsetDelta = this.varint();
    this.offset = b.firstOffset + offsetDelta;
    this.timestamp = b.logAppendTime ? b.maxTimestamp : b.firstTimestamp + timestampDelta;
    this.keyLength = this.varint();
    this.keyStart = this.o;
    if (this.keyLength > 0) this.o += this.keyLength;
    this.valueLength = this.varint();
    this.valueStart = this.o;
    if (buf.length < end) throw new Error(`kafka record batch at offset ${b.firstOffset}: truncated`);
    this.o = end;
    return true;
  }

  key(): Buffer | null {
    return this.keyLength < 0 ? null : this.batch.buf.subarray(this.keyStart, this.keyStart + this.keyLength);
  }

  value(): Buffer | null {
    return this.valueLength < 0 ? null : this.batch.buf.subarray(this.valueStart, this.valueStart + this.valueLength);
  }

  /** A zigzag varint (varlong for timestamps: exact below 2^53). */
  private varint(): number {
    const buf = this.batch.buf;
    let b = buf[this.o++]!;
    let u = b & 127;
    let scale = 128;
    while (b >= 128) {
      b = buf[this.o++]!;
      u += (b & 127) * scale;
      scale *= 128;
    }
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
  }
}
