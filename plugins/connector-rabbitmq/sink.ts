/**
 * The RabbitMQ sink: publishes on a confirm channel (publisher confirms) with
 * the `mandatory` flag, and at each checkpoint barrier waits until the broker
 * has confirmed every message, so a completed checkpoint never leaves a row
 * unpublished. At-least-once: a restore publishes again what was sent after
 * the checkpoint. A message the broker nacks, or returns because no queue is
 * bound for its routing key, fails the job with the broker's answer.
 */
import type { ChannelModel, ConfirmChannel } from "amqplib";
import type { Batch, SinkContext, SinkWriter } from "../../core/plugin-api/index.ts";
import { connectRabbit, describeError, where } from "./client.ts";
import type { RabbitmqOptions } from "./options.ts";

export class RabbitmqSinkWriter implements SinkWriter {
  private error: Error | null = null;
  private readonly keyIndex: number;
  private readonly exchange: string;
  private readonly routingKey: string;

  private constructor(
    private readonly ctx: SinkContext<RabbitmqOptions>,
    private readonly conn: ChannelModel,
    private readonly channel: ConfirmChannel,
  ) {
    const o = ctx.options;
    this.exchange = o["sink.exchange"];
    this.routingKey = o["sink.routing_key"] ?? o.queue ?? "";
    const keyField = o["sink.routing_key_field"];
    this.keyIndex = keyField === undefined ? -1 : ctx.fields.findIndex((f) => f.name.toLowerCase() === keyField.toLowerCase());
    const fail = (message: string) => {
      ctx.metrics.add("errors_total");
      this.error ??= new Error(`rabbitmq sink '${ctx.tableName}': ${message}`);
    };
    channel.on("return", (msg) =>
      fail(`the broker returned a message: no queue is bound to exchange '${msg.fields.exchange || "(default)"}' for routing key '${msg.fields.routingKey}' (options 'sink.exchange', 'sink.routing_key'; ${(msg.fields as { replyText?: string }).replyText ?? "NO_ROUTE"})`),
    );
    channel.on("error", (err) => fail(`the broker closed the channel: ${describeError(err)}`));
    conn.on("close", () => fail(`the connection to ${where(o)} closed`));
    conn.on("error", (err) => ctx.log.warn(`rabbitmq sink '${ctx.tableName}': ${describeError(err)}`));
  }

  static async create(ctx: SinkContext<RabbitmqOptions>): Promise<RabbitmqSinkWriter> {
    if (!ctx.format) throw new Error(`rabbitmq sink '${ctx.tableName}' needs a format (e.g. format = 'json')`);
    const conn = await connectRabbit(ctx.options, `runnel-${ctx.tableName}-sink-${ctx.subtaskIndex}`);
    try {
      const channel = await conn.createConfirmChannel();
      return new RabbitmqSinkWriter(ctx, conn, channel);
    } catch (err) {
      await conn.close().catch(() => {});
      throw err;
    }
  }

  async write(batch: Batch): Promise<void> {
    if (this.error) throw this.error;
    const format = this.ctx.format!;
    const persistent = this.ctx.options["sink.persistent"];
    const { rows, ops, before } = batch;
    const k = this.keyIndex;
    let bytes = 0;
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const encoded = format.serialize(row, ops?.[i], before?.[i]);
      const content = typeof encoded === "string" ? Buffer.from(encoded) : Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength);
      bytes += content.byteLength;
      const key = k >= 0 ? String(row[k] ?? "") : this.routingKey;
      const ok = this.channel.publish(this.exchange, key, content, { persistent, mandatory: true }, (err) => {
        if (err) {
          this.ctx.metrics.add("errors_total");
          this.error ??= new Error(`rabbitmq sink '${this.ctx.tableName}': the broker refused (nack) a message for exchange '${this.exchange || "(default)"}' routing key '${key}'`);
        }
      });
      // The socket's buffer is full: wait for it to drain before writing more.
      if (!ok) await new Promise<void>((resolve) => this.channel.once("drain", () => resolve()));
    }
    this.ctx.metrics.add("messages_sent_total", rows.length);
    this.ctx.metrics.add("bytes_sent_total", bytes);
  }

  /** At the barrier: every message confirmed by the broker. */
  async prepareCommit(): Promise<null> {
    if (this.error) throw this.error;
    try {
      await this.channel.waitForConfirms();
    } catch (err) {
      throw this.error ?? new Error(`rabbitmq sink '${this.ctx.tableName}': the broker did not confirm messages: ${describeError(err)}`);
    }
    if (this.error) throw this.error;
    return null;
  }

  async close(): Promise<void> {
    this.error ??= new Error("closed");
    await this.channel.waitForConfirms().catch(() => {});
    await this.conn.close().catch(() => {});
  }
}
