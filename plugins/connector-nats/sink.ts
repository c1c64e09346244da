/**
 * The NATS sink: publishes each row to `subject`. When a JetStream stream
 * captures the subject, messages go through JetStream and every publish
 * acknowledgement is awaited before a checkpoint completes (at-least-once:
 * after a restore, what was published since the checkpoint is published
 * again). Otherwise it is a NATS Core publish, flushed to the server at each
 * checkpoint; NATS Core keeps nothing, so subscribers that are not connected
 * miss messages (at-most-once past the server).
 */
import { jetstream, jetstreamManager, type JetStreamClient, type PubAck } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Batch, SinkContext, SinkWriter } from "../../core/plugin-api/index.ts";
import { connectNats, describeError } from "./client.ts";
import type { NatsOptions } from "./options.ts";

/** Unacknowledged JetStream publishes at once, per subtask. */
const MAX_IN_FLIGHT = 4096;

export class NatsSinkWriter implements SinkWriter {
  private inFlight = new Set<Promise<PubAck>>();
  private error: Error | null = null;

  private constructor(
    private readonly ctx: SinkContext<NatsOptions>,
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient | null,
    private readonly subject: string,
  ) {}

  static async create(ctx: SinkContext<NatsOptions>): Promise<NatsSinkWriter> {
    if (!ctx.format) throw new Error(`nats sink '${ctx.tableName}' needs a format (e.g. format = 'json')`);
    const subject = ctx.options.subject!;
    const nc = await connectNats(ctx.options, `runnel-${ctx.tableName}-sink-${ctx.subtaskIndex}`);
    let js: JetStreamClient | null = null;
    try {
      const jsm = await jetstreamManager(nc);
      const stream = await jsm.streams.find(subject).catch(() => null);
      if (stream) {
        js = jetstream(nc);
        if (ctx.subtaskIndex === 0) ctx.log.info(`nats sink '${ctx.tableName}': '${subject}' is captured by stream '${stream}'; publishing through JetStream`);
      }
    } catch {
      // No JetStream on this server: NATS Core publishing.
    }
    return new NatsSinkWriter(ctx, nc, js, subject);
  }

  async write(batch: Batch): Promise<void> {
    if (this.error) throw this.error;
    const format = this.ctx.format!;
    const { rows, ops, before } = batch;
    let bytes = 0;
    for (let i = 0; i < rows.length; i++) {
      const data = format.serialize(rows[i]!, ops?.[i], before?.[i]);
      bytes += typeof data === "string" ? data.length : data.byteLength;
      if (this.js) {
        if (this.inFlight.size >= MAX_IN_FLIGHT) await Promise.race(this.inFlight);
        if (this.error) throw this.error;
        const p = this.js.publish(this.subject, data);
        this.inFlight.add(p);
        p.then(
          () => this.inFlight.delete(p),
          (err) => {
            this.inFlight.delete(p);
            this.ctx.metrics.add("errors_total");
            this.error ??= new Error(`nats sink '${this.ctx.tableName}': JetStream refused a message on '${this.subject}': ${describeError(err)}`);
          },
        );
      } else {
        this.nc.publish(this.subject, data);
      }
    }
    this.ctx.metrics.add("messages_sent_total", rows.length);
    this.ctx.metrics.add("bytes_sent_total", bytes);
  }

  /** At the barrier: every message acknowledged by JetStream, or at least received by the server. */
  async prepareCommit(): Promise<null> {
    if (this.js) await Promise.allSettled([...this.inFlight]);
    else await this.nc.flush();
    if (this.error) throw this.error;
    return null;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
    await this.nc.drain().catch(() => this.nc.close());
  }
}
