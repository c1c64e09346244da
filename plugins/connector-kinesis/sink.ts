/**
 * The Kinesis sink writer: records are buffered and sent with PutRecords
 * (up to 500 records / 5 MiB a request), records the stream refused in a
 * partial failure are sent again with backoff, and everything is sent before
 * a checkpoint completes (`prepareCommit`). Kinesis has no transactions, so
 * this is at-least-once: a job restored from a checkpoint sends again what it
 * had sent after that checkpoint.
 */
import { PutRecordsCommand, type KinesisClient, type PutRecordsRequestEntry } from "@aws-sdk/client-kinesis";
import type { Batch, SinkContext, SinkWriter } from "../../core/plugin-api/index.ts";
import { describeError, isMissingStream, isTransient, missingStreamError, whereOf } from "./client.ts";
import type { KinesisOptions } from "./options.ts";

/** Kinesis's limits per record: data plus partition key, and the key's length. */
const MAX_RECORD_BYTES = 1024 * 1024;
const MAX_PARTITION_KEY_CHARS = 256;
/** How long refused records are retried before the job fails (and restarts from its checkpoint). */
const RETRY_LIMIT_MS = 120_000;
const MAX_BACKOFF_MS = 2_000;

interface Pending {
  entry: PutRecordsRequestEntry;
  bytes: number;
}

const encoder = new TextEncoder();

export class KinesisSinkWriter implements SinkWriter {
  private buffer: Pending[] = [];
  private bufferBytes = 0;
  private sending: Promise<void> = Promise.resolve();
  private sendError: Error | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly keyIndex: number;
  private readonly stream: string;
  private readonly maxRecords: number;
  private readonly maxBytes: number;
  private readonly flushMs: number;
  private closed = false;
  /** Records sent and accepted, and records the stream refused at least once (for logs and tests). */
  sent = 0;
  retried = 0;

  constructor(
    private readonly ctx: SinkContext<KinesisOptions>,
    private readonly client: KinesisClient,
  ) {
    const o = ctx.options;
    this.stream = o.stream_name;
    this.maxRecords = o["sink.max_records_per_batch"];
    this.maxBytes = o["sink.max_bytes_per_batch"];
    this.flushMs = o["sink.flush_interval_millis"];
    const keyField = o["sink.partition_key_field"];
    this.keyIndex = keyField === undefined ? -1 : ctx.fields.findIndex((f) => f.name.toLowerCase() === keyField.toLowerCase());
    if (!ctx.format) throw new Error(`kinesis sink '${ctx.tableName}' needs a format (e.g. format = 'json')`);
  }

  private get name(): string {
    return `kinesis sink '${this.ctx.tableName}'`;
  }

  write(batch: Batch): void | Promise<void> {
    if (this.sendError) throw this.sendError;
    const format = this.ctx.format!;
    const { rows, ops, before } = batch;
    const k = this.keyIndex;
    let started = false;
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const encoded = format.serialize(row, ops?.[i], before?.[i]);
      const data = typeof encoded === "string" ? encoder.encode(encoded) : encoded;
      const value = k >= 0 ? row[k] : null;
      let key = value === null || value === undefined ? randomKey() : value instanceof Uint8Array ? Buffer.from(value).toString("hex") : String(value);
      // Kinesis takes keys of 1 to 256 characters: longer ones are cut (equal keys still go to one shard).
      if (key.length > MAX_PARTITION_KEY_CHARS) key = key.slice(0, MAX_PARTITION_KEY_CHARS);
      if (key.length === 0) key = "-";
      const bytes = data.length + Buffer.byteLength(key);
      if (bytes > MAX_RECORD_BYTES) {
        throw new Error(
          `${this.name}: a record of ${bytes} bytes (data plus partition key) is over Kinesis's limit of 1 MiB for stream '${this.stream}'; ` +
            `write smaller rows`,
        );
      }
      if (this.buffer.length >= this.maxRecords || this.bufferBytes + bytes > this.maxBytes) {
        this.startSend();
        started = true;
      }
      this.buffer.push({ entry: { Data: data, PartitionKey: key }, bytes });
      this.bufferBytes += bytes;
    }
    if (this.buffer.length > 0 && this.timer === null && !this.closed) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.startSend();
      }, this.flushMs);
    }
    // Backpressure: a batch that filled requests waits until they are sent.
    if (started) return this.sending.then(() => this.throwIfFailed());
  }

  private throwIfFailed(): void {
    if (this.sendError) throw this.sendError;
  }

  /** Queues the buffer as one PutRecords request after the one in flight. */
  private startSend(): void {
    if (this.buffer.length === 0) return;
    const records = this.buffer;
    this.buffer = [];
    this.bufferBytes = 0;
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    this.sending = this.sending.then(async () => {
      if (this.sendError) return;
      try {
        await this.put(records);
      } catch (err) {
        this.sendError ??= err instanceof Error && err.message.startsWith(this.name) ? err : new Error(`${this.name}: writing to stream '${this.stream}' failed: ${describeError(err)}`);
      }
    });
  }

  /** Sends records until every one is accepted; those refused in a partial failure go again, with backoff. */
  private async put(records: Pending[]): Promise<void> {
    let todo = records;
    let delay = 100;
    const start = Date.now();
    let lastError = "";
    while (todo.length > 0) {
      try {
        const res = await this.client.send(new PutRecordsCommand({ StreamName: this.stream, Records: todo.map((r) => r.entry) }), {
          abortSignal: this.ctx.signal,
        });
        const failed: Pending[] = [];
        const results = res.Records ?? [];
        for (let i = 0; i < todo.length; i++) {
          const r = results[i];
          if (r?.ErrorCode) {
            failed.push(todo[i]!);
            lastError = `${r.ErrorCode}: ${r.ErrorMessage ?? ""}`;
          }
        }
        this.sent += todo.length - failed.length;
        if (failed.length === 0) return;
        this.retried += failed.length;
        todo = failed;
      } catch (err) {
        if (isMissingStream(err)) throw new Error(`${this.name}: ${missingStreamError(this.ctx.options).message}`);
        if (!isTransient(err) || this.ctx.signal.aborted) throw err;
        lastError = describeError(err);
      }
      if (Date.now() - start > RETRY_LIMIT_MS) {
        throw new Error(
          `${this.name}: stream '${this.stream}' in ${whereOf(this.ctx.options)} kept refusing ${todo.length} records for ${RETRY_LIMIT_MS / 1000} s (${lastError}); ` +
            `add shards or lower the write rate; the job restarts from its last checkpoint`,
        );
      }
      await Bun.sleep(delay);
      delay = Math.min(delay * 2, MAX_BACKOFF_MS);
    }
  }

  private async flush(): Promise<void> {
    this.startSend();
    await this.sending;
    this.throwIfFailed();
  }

  /** At-least-once: every record written so far is in the stream before the checkpoint completes. */
  async prepareCommit(_checkpointId: number): Promise<null> {
    await this.flush();
    return null;
  }

  async close(): Promise<void> {
    this.closed = true;
    try {
      if (!this.ctx.signal.aborted) await this.flush();
    } finally {
      if (this.timer !== null) clearTimeout(this.timer);
      this.client.destroy();
    }
  }
}

/** A random partition key spreads records evenly over the shards. */
function randomKey(): string {
  return crypto.randomUUID();
}
