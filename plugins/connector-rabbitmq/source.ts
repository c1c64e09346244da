/**
 * The RabbitMQ source: consumes a queue with manual acknowledgements and a
 * prefetch window. Messages are acknowledged (one `multiple` ack up to the last
 * delivery tag) only when the checkpoint holding them completes, so the broker
 * keeps — and after a crash requeues — whatever Runnel's state does not hold.
 * At-least-once: a crash after a checkpoint completed but before its ack
 * reached the broker redelivers those messages, and AMQP gives no identity to
 * tell them from new ones (publishers' message ids are not trusted to be
 * unique). The connection closing fails the job (it restarts from its last
 * checkpoint; the broker requeues what was unacknowledged). Subtasks consume
 * the same queue; the broker spreads messages over them.
 */
import type { Channel, ChannelModel, ConsumeMessage } from "amqplib";
import { crashPoint, type SourceContext, type SourcePoll, type SourceReader } from "../../core/plugin-api/index.ts";
import { decodeMessages } from "../shared/decode.ts";
import { Inbox } from "../shared/inbox.ts";
import { connectRabbit, describeError, where } from "./client.ts";
import type { RabbitmqOptions } from "./options.ts";

const POLL_WAIT_MS = 100;

export class RabbitmqSourceReader implements SourceReader {
  private readonly inbox = new Inbox<ConsumeMessage>(1 << 20);
  /** The last delivery tag taken into state since the last snapshot, then per snapshot not completed. */
  private lastTag: ConsumeMessage | null = null;
  private sealed: ConsumeMessage[] = [];
  private closed = false;
  private closing: (() => void) | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private consumerTag = "";
  private readonly split: string;

  private constructor(
    private readonly ctx: SourceContext<RabbitmqOptions>,
    private readonly conn: ChannelModel,
    private readonly channel: Channel,
  ) {
    this.split = `rabbitmq/${ctx.options.queue}/${ctx.subtaskIndex}`;
    const lost = (why: string) => {
      if (this.closed) return;
      ctx.metrics.add("errors_total");
      this.inbox.fail(new Error(`rabbitmq source '${ctx.tableName}': ${why}; the broker requeues what was not acknowledged, and a restart resumes from the last checkpoint`));
    };
    conn.on("close", (err) => lost(`the connection to ${where(ctx.options)} closed${err ? `: ${describeError(err)}` : ""}`));
    conn.on("error", (err) => ctx.log.warn(`rabbitmq source '${ctx.tableName}': ${describeError(err)}`));
    channel.on("close", () => lost(`the channel on queue '${ctx.options.queue}' closed`));
    channel.on("error", (err) => lost(`the broker closed the channel: ${describeError(err)}`));
  }

  static async create(ctx: SourceContext<RabbitmqOptions>): Promise<RabbitmqSourceReader> {
    if (!ctx.format) throw new Error(`rabbitmq source '${ctx.tableName}' needs a format (e.g. format = 'json')`);
    const o = ctx.options;
    const conn = await connectRabbit(o, `runnel-${ctx.tableName}-${ctx.subtaskIndex}`);
    try {
      const channel = await conn.createChannel();
      await checkQueue(channel, o.queue!, ctx.tableName);
      await channel.prefetch(o["source.prefetch"]);
      const reader = new RabbitmqSourceReader(ctx, conn, channel);
      const reply = await channel.consume(o.queue!, (msg) => {
        if (msg === null) reader.inbox.fail(new Error(`rabbitmq source '${ctx.tableName}': the broker cancelled the consumer of queue '${o.queue}' (deleted?)`));
        else reader.inbox.push(msg);
      }, { noAck: false });
      reader.consumerTag = reply.consumerTag;
      reader.timer = setInterval(() => void reader.measureLag(), 2_000);
      return reader;
    } catch (err) {
      await conn.close().catch(() => {});
      throw err;
    }
  }

  splits(): string[] {
    return [this.split];
  }

  async poll(maxRows: number): Promise<SourcePoll> {
    if (this.closed) return { batches: [] };
    const items = await this.inbox.take(maxRows, POLL_WAIT_MS);
    if (items.length === 0) return { batches: [] };
    const ctx = this.ctx;
    let bytes = 0;
    let redelivered = 0;
    for (const m of items) {
      bytes += m.content.byteLength;
      if (m.fields.redelivered) redelivered++;
    }
    const { rows, times } = await decodeMessages(ctx, items, {
      data: (m) => m.content,
      time: (m) => (typeof m.properties.timestamp === "number" ? m.properties.timestamp * 1_000_000 : Date.now() * 1000),
      where: (m) => `queue '${ctx.options.queue}' delivery ${m.fields.deliveryTag}${m.properties.messageId ? ` (message id ${m.properties.messageId})` : ""}`,
      metadata: metadataOf,
    });
    // Deliveries on a channel are acknowledged in order: the last one taken stands for all before it.
    this.lastTag = items[items.length - 1]!;
    ctx.metrics.add("messages_received_total", items.length);
    ctx.metrics.add("bytes_received_total", bytes);
    if (redelivered > 0) ctx.metrics.add("redelivered_total", redelivered);
    return { batches: rows.length > 0 ? [{ split: this.split, rows, times }] : [] };
  }

  snapshot(): Record<string, unknown> {
    if (this.lastTag) this.sealed.push(this.lastTag);
    this.lastTag = null;
    return {};
  }

  onCheckpointComplete(_checkpointId: number): void {
    const last = this.sealed[this.sealed.length - 1];
    this.sealed = [];
    if (last && !this.closed) {
      crashPoint("rabbitmq-source-before-ack");
      this.channel.ack(last, true);
      this.ctx.metrics.add("acks_total");
    }
    if (this.closing) {
      const done = this.closing;
      this.closing = null;
      done();
    }
  }

  /** Messages ready in the queue (not yet delivered to any consumer) plus those delivered here and not read yet. */
  private async measureLag(): Promise<void> {
    if (this.closed) return;
    try {
      const q = await this.channel.checkQueue(this.ctx.options.queue!);
      this.ctx.metrics.set("lag", q.messageCount + this.inbox.size);
      this.ctx.metrics.set("consumers", q.consumerCount);
    } catch {
      // The channel is closing; the close handler reports it.
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    // A stop's final checkpoint completes after its barrier closed the reader: wait (briefly) to acknowledge it.
    if (this.sealed.length > 0) {
      await new Promise<void>((resolve) => {
        this.closing = resolve;
        setTimeout(resolve, 10_000);
      });
    }
    this.closed = true;
    // Stop deliveries, then close: unacknowledged messages return to the queue.
    await this.channel.cancel(this.consumerTag).catch(() => {});
    await this.conn.close().catch(() => {});
  }
}

export async function checkQueue(channel: Channel, queue: string, table: string): Promise<void> {
  try {
    await channel.checkQueue(queue);
  } catch (err) {
    throw new Error(`rabbitmq table '${table}': queue '${queue}' (option 'queue'): ${describeError(err)}; declare the queue first (Runnel does not create queues)`);
  }
}

function metadataOf(m: ConsumeMessage, key: string): unknown {
  switch (key) {
    case "routing_key":
      return m.fields.routingKey;
    case "exchange":
      return m.fields.exchange;
    case "message_id":
      return m.properties.messageId ?? null;
    case "redelivered":
      return m.fields.redelivered;
    case "timestamp":
      return typeof m.properties.timestamp === "number" ? m.properties.timestamp * 1_000_000 : null;
    default:
      return null;
  }
}
