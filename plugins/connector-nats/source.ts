/**
 * NATS sources.
 *
 * JetStream (`stream`): a durable pull consumer shared by the subtasks (the
 * server hands each message to one of them). Messages are acknowledged only
 * when the checkpoint holding them completes, and the checkpoint records the
 * stream sequences taken into state whose acknowledgement may not have been
 * applied, so after a restore the server's redelivery of those is acknowledged
 * and dropped, and everything else is redelivered and read again: each message
 * counts once in Runnel's state. The set is pruned below the consumer's ack
 * floor (nothing below it can come back). Messages held longer than half of
 * `consumer.ack_wait` (a slow checkpoint) get a progress acknowledgement so the
 * server does not hand them to another subtask meanwhile.
 *
 * Core (`subject`): a plain subscription, in a queue group when there are
 * several subtasks; at-most-once (NATS Core keeps nothing).
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, ReplayPolicy, type Consumer, type ConsumerMessages, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { nanos, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { crashPoint, type SourceContext, type SourcePoll, type SourceReader } from "../../core/plugin-api/index.ts";
import { decodeMessages } from "../shared/decode.ts";
import { Inbox } from "../shared/inbox.ts";
import { RangeSet } from "../shared/range-set.ts";
import { connectNats, describeError } from "./client.ts";
import type { NatsOptions } from "./options.ts";

const POLL_WAIT_MS = 100;
const MAINTENANCE_MS = 1_000;

export const consumerName = (ctx: { options: NatsOptions; tableName: string }) => ctx.options["consumer.name"] ?? `runnel-${ctx.tableName}`;

interface Incoming {
  data: Uint8Array;
  subject: string;
  /** Stream sequence (JetStream) or 0. */
  seq: number;
  /** Event time, µs. */
  time: number;
  msg?: JsMsg;
}

abstract class NatsReader implements SourceReader {
  protected readonly inbox = new Inbox<Incoming>(50_000);
  protected closed = false;

  constructor(
    protected readonly ctx: SourceContext<NatsOptions>,
    protected readonly nc: NatsConnection,
  ) {
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === "disconnect") ctx.metrics.add("disconnects_total");
        if (s.type === "reconnect") ctx.log.info(`nats source '${ctx.tableName}': reconnected to ${s.server}`);
      }
    })().catch(() => {});
    void nc.closed().then((err) => {
      if (!this.closed) this.inbox.fail(new Error(`nats source '${ctx.tableName}': the connection closed${err ? `: ${describeError(err)}` : ""}`));
    });
  }

  abstract splits(): string[];
  abstract snapshot(): Record<string, unknown>;
  /** Whether a message is new (not already in state); may acknowledge it. */
  protected accept(_m: Incoming): boolean {
    return true;
  }

  async poll(maxRows: number): Promise<SourcePoll> {
    if (this.closed) return { batches: [] };
    const items = await this.inbox.take(maxRows, POLL_WAIT_MS);
    if (items.length === 0) return { batches: [] };
    let bytes = 0;
    for (const m of items) bytes += m.data.byteLength;
    this.ctx.metrics.add("messages_received_total", items.length);
    this.ctx.metrics.add("bytes_received_total", bytes);
    const { rows, times } = await decodeMessages(this.ctx, items.filter((m) => this.accept(m)), {
      data: (m) => m.data,
      time: (m) => m.time,
      where: (m) => (m.seq ? `stream sequence ${m.seq} (subject '${m.subject}')` : `subject '${m.subject}'`),
      metadata: (m, key) => (key === "subject" ? m.subject : key === "sequence" ? m.seq || null : key === "timestamp" ? m.time : null),
    });
    return { batches: rows.length > 0 ? [{ split: this.splits()[0]!, rows, times }] : [] };
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.nc.drain().catch(() => this.nc.close());
  }
}

/** Reads a JetStream stream through a durable consumer; see the file comment. */
export class JetStreamReader extends NatsReader {
  /** Sequences in state (restored or held) whose acknowledgement may not be applied yet. */
  private readonly taken: RangeSet;
  /** Messages since the last snapshot, then per snapshot not yet completed. */
  private epoch: JsMsg[] = [];
  private sealed: { msgs: JsMsg[]; at: number }[] = [];
  private epochStart = Date.now();
  private readonly heldSeqs = new Set<number>();
  private messages: ConsumerMessages | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;
  private pruning = false;
  /** Ack after completion when the reader was closed by a final checkpoint, then really close. */
  private closing: (() => void) | null = null;
  private readonly split: string;
  private readonly explicit: boolean;

  private constructor(
    ctx: SourceContext<NatsOptions>,
    nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly stream: string,
    private readonly consumerName: string,
  ) {
    super(ctx, nc);
    this.split = `${stream}/${consumerName}/${ctx.subtaskIndex}`;
    this.explicit = ctx.options["consumer.ack_policy"] === "explicit";
    // Every subtask may be handed any message, so each knows every former subtask's sequences.
    this.taken = new RangeSet();
    const prefix = `${stream}/${consumerName}/`;
    for (const [key, value] of Object.entries(ctx.restored)) if (key.startsWith(prefix)) this.taken.union(RangeSet.fromJSON(value));
  }

  static async create(ctx: SourceContext<NatsOptions>): Promise<JetStreamReader> {
    if (!ctx.format) throw new Error(`nats source '${ctx.tableName}' needs a format (e.g. format = 'json')`);
    const o = ctx.options;
    const stream = o.stream!;
    const name = consumerName(ctx);
    const nc = await connectNats(o, `runnel-${ctx.tableName}-${ctx.subtaskIndex}`);
    try {
      const jsm = await jetstreamManager(nc);
      await ensureConsumer(jsm, ctx, stream, name);
      const reader = new JetStreamReader(ctx, nc, jsm, stream, name);
      const consumer = await jetstream(nc).consumers.get(stream, name);
      await reader.start(consumer);
      return reader;
    } catch (err) {
      await nc.close().catch(() => {});
      throw err;
    }
  }

  private async start(consumer: Consumer): Promise<void> {
    const o = this.ctx.options;
    this.messages = await consumer.consume({ max_messages: o["consumer.max_batch"], ...(o["consumer.max_bytes"] ? { max_bytes: o["consumer.max_bytes"] } : {}) });
    const messages = this.messages;
    // A pump: stops taking from the iterator while the inbox is full, which stops further pulls.
    void (async () => {
      for await (const m of messages) {
        this.inbox.push({ data: m.data, subject: m.subject, seq: m.seq, time: Number(m.timestampNanos / 1000n), msg: m });
        if (this.inbox.full) await this.inbox.room();
      }
    })().catch((err) => {
      if (!this.closed) this.inbox.fail(new Error(`nats source '${this.ctx.tableName}': reading stream '${this.stream}' failed: ${describeError(err)}`));
    });
    this.timer = setInterval(() => void this.maintain(), MAINTENANCE_MS);
    void this.maintain();
  }

  splits(): string[] {
    return [this.split];
  }

  protected override accept(m: Incoming): boolean {
    const msg = m.msg!;
    if (!this.explicit) return true;
    if (this.taken.has(m.seq)) {
      this.ctx.metrics.add("duplicates_dropped_total");
      // Held (not yet in a completed checkpoint): acknowledged with the rest; else in state already.
      if (this.heldSeqs.has(m.seq)) this.epoch.push(msg);
      else msg.ack();
      return false;
    }
    this.taken.add(m.seq);
    this.heldSeqs.add(m.seq);
    this.epoch.push(msg);
    return true;
  }

  snapshot(): Record<string, unknown> {
    if (this.explicit) {
      this.sealed.push({ msgs: this.epoch, at: this.epochStart });
      this.epoch = [];
      this.epochStart = Date.now();
    }
    return { [this.split]: this.taken.toJSON() };
  }

  onCheckpointComplete(_checkpointId: number): Promise<void> | void {
    if (!this.explicit) return;
    // For crash tests: the N-th completion that has something to acknowledge.
    if (this.sealed.some((s) => s.msgs.length > 0)) crashPoint("nats-source-before-ack");
    const sealed = this.sealed;
    this.sealed = [];
    let n = 0;
    for (const s of sealed) {
      for (const m of s.msgs) {
        m.ack();
        this.heldSeqs.delete(m.seq);
      }
      n += s.msgs.length;
    }
    this.ctx.metrics.add("acks_total", n);
    if (this.closing) {
      const done = this.closing;
      this.closing = null;
      return this.nc.flush().catch(() => {}).then(done);
    }
  }

  /** Consumer state for lag and pruning; progress acknowledgements for messages held too long. */
  private async maintain(): Promise<void> {
    if (this.pruning || this.closed) return;
    this.pruning = true;
    try {
      const info = await this.jsm.consumers.info(this.stream, this.consumerName);
      // Messages the job has not read: still at the server, or pulled and waiting in the inbox.
      this.ctx.metrics.set("lag", info.num_pending + this.inbox.size);
      this.ctx.metrics.set("ack_pending", info.num_ack_pending);
      this.taken.dropBelow(info.ack_floor.stream_seq + 1);
      this.ctx.metrics.set("dedup_ranges", this.taken.rangeCount);
    } catch (err) {
      this.ctx.metrics.add("errors_total");
      if (!this.closed) this.ctx.log.warn(`nats source '${this.ctx.tableName}': consumer info for '${this.consumerName}' failed: ${describeError(err)}`);
    } finally {
      this.pruning = false;
    }
    if (!this.explicit) return;
    const halfWait = this.ctx.options["consumer.ack_wait"] / 2000;
    const now = Date.now();
    const stale = [...this.sealed.filter((s) => now - s.at > halfWait), ...(now - this.epochStart > halfWait ? [{ msgs: this.epoch, at: this.epochStart }] : [])];
    for (const s of stale) {
      for (const m of s.msgs) m.working();
      this.ctx.metrics.add("progress_acks_total", s.msgs.length);
    }
    for (const s of this.sealed) if (now - s.at > halfWait) s.at = now;
    if (now - this.epochStart > halfWait) this.epochStart = now;
  }

  override async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    // A stop's final checkpoint completes after its barrier closed the reader: wait (briefly) to acknowledge it.
    if (this.explicit && this.sealed.length > 0) {
      await new Promise<void>((resolve) => {
        this.closing = resolve;
        setTimeout(resolve, 10_000);
      });
    }
    this.closed = true;
    await this.messages?.close().catch(() => {});
    await super.close();
  }
}

/** Creates the durable consumer, or brings an existing one's settings in line with the table's. */
async function ensureConsumer(jsm: JetStreamManager, ctx: SourceContext<NatsOptions>, stream: string, name: string): Promise<void> {
  const o = ctx.options;
  const filters = (o["consumer.filter_subjects"] ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  const settings = {
    description: o["consumer.description"],
    ack_wait: nanos(o["consumer.ack_wait"] / 1000),
    max_ack_pending: o["consumer.max_ack_pending"],
    max_deliver: o["consumer.max_deliver"],
    ...(o["consumer.rate_limit"] > 0 ? { rate_limit_bps: o["consumer.rate_limit"] } : {}),
    ...(o["consumer.inactive_threshold"] ? { inactive_threshold: nanos(o["consumer.inactive_threshold"] / 1000) } : {}),
    num_replicas: o["consumer.num_replicas"],
    ...(filters.length === 1 ? { filter_subject: filters[0] } : filters.length > 1 ? { filter_subjects: filters } : {}),
  };
  try {
    await jsm.streams.info(stream);
  } catch (err) {
    throw new Error(`nats source '${ctx.tableName}': stream '${stream}' (option 'stream'): ${describeError(err)}; create the stream first (Runnel does not create streams)`);
  }
  let exists = true;
  try {
    await jsm.consumers.info(stream, name);
  } catch {
    exists = false;
  }
  try {
    if (exists) await jsm.consumers.update(stream, name, settings);
    else {
      await jsm.consumers.add(stream, {
        ...settings,
        durable_name: name,
        ack_policy: o["consumer.ack_policy"] === "explicit" ? AckPolicy.Explicit : AckPolicy.None,
        replay_policy: o["consumer.replay_policy"] === "original" ? ReplayPolicy.Original : ReplayPolicy.Instant,
        deliver_policy: o["source.offset"] === "latest" ? DeliverPolicy.New : DeliverPolicy.All,
      });
    }
  } catch (err) {
    // A race between subtasks creating the same consumer is fine; anything else is reported.
    try {
      await jsm.consumers.info(stream, name);
    } catch {
      throw new Error(`nats source '${ctx.tableName}': cannot ${exists ? "update" : "create"} consumer '${name}' on stream '${stream}': ${describeError(err)}`);
    }
  }
}

/** A NATS Core subscription: at-most-once, one queue group across subtasks. */
export class CoreSubjectReader extends NatsReader {
  private readonly sub: Subscription;
  private readonly split: string;

  constructor(ctx: SourceContext<NatsOptions>, nc: NatsConnection) {
    super(ctx, nc);
    const subject = ctx.options.subject!;
    this.split = `${subject}/${ctx.subtaskIndex}`;
    this.sub = nc.subscribe(subject, {
      ...(ctx.parallelism > 1 ? { queue: `runnel-${ctx.tableName}` } : {}),
      callback: (err, msg) => {
        if (err) return this.inbox.fail(new Error(`nats source '${ctx.tableName}': subscription to '${subject}' failed: ${describeError(err)}`));
        if (this.inbox.full) return void ctx.metrics.add("dropped_full_total");
        this.inbox.push({ data: msg.data, subject: msg.subject, seq: 0, time: Date.now() * 1000 });
      },
    });
  }

  static async create(ctx: SourceContext<NatsOptions>): Promise<CoreSubjectReader> {
    if (!ctx.format) throw new Error(`nats source '${ctx.tableName}' needs a format (e.g. format = 'json')`);
    const nc = await connectNats(ctx.options, `runnel-${ctx.tableName}-${ctx.subtaskIndex}`);
    const reader = new CoreSubjectReader(ctx, nc);
    await nc.flush();
    return reader;
  }

  splits(): string[] {
    return [this.split];
  }

  snapshot(): Record<string, unknown> {
    return {};
  }

  override async close(): Promise<void> {
    this.sub.unsubscribe();
    await super.close();
  }
}
