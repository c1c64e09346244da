/**
 * The Kafka sink writer.
 *
 * at_least_once: records are sent as they come (idempotent producer) and every
 * send is awaited at the checkpoint barrier, so a completed checkpoint means
 * its records are in Kafka; a restart may repeat the ones after it.
 *
 * exactly_once: records go into a Kafka transaction. At the barrier the writer
 * flushes and records the transaction (transactional id, producer id, epoch)
 * in the checkpoint; once the checkpoint completes the transaction is
 * committed, and records after the barrier go into the next transaction.
 *
 * Transactional ids are `<prefix>-<subtask>-<checkpoint id mod 3>`. Three slots
 * suffice because the engine has one checkpoint in flight at a time: the
 * transaction holding data of checkpoint N is committed before the barrier of
 * N+1 is injected, so slot N mod 3 is reused (for N+3) only after checkpoint
 * N+1 completed, and a job restored to N finds slot N mod 3 still holding
 * exactly transaction N (open or committed) — never a later one.
 *
 * Recovery (see `recover`): the engine re-commits the restored checkpoint's
 * transactions with an EndTxn request carrying the recorded producer id and
 * epoch (kafkajs cannot resume a transaction, so we send it through its broker
 * object; committing an already committed transaction again answers success).
 * Every other slot this subtask owns is re-initialised (InitProducerId), which
 * fences earlier producers and aborts their open transactions, before anything
 * new is written — Flink's KafkaSink does the same by probing its ids. Ids of
 * subtasks beyond the known parallelisms (an earlier run with more subtasks
 * that never completed a checkpoint) are found with ListTransactions.
 */
import type { Message, Producer, Transaction } from "kafkajs";
import type { Batch, SinkContext, SinkWriter } from "../../core/plugin-api/index.ts";
import { COORDINATOR_TYPE, createCluster, DefaultPartitioner, describeError, ISOLATION, listTransactions, producerIdentities, recordProducerIdentities, withRetry, type Kafka, type KCluster } from "./client.ts";
import type { KafkaOptions } from "./options.ts";

export const TXN_SLOTS = 3;
const SEND_CHUNK = 8192;
/** Records wait at most this long (while more arrive) before they are sent. */
const LINGER_MS = 50;

/** What the checkpoint records of a transaction to commit. */
export interface PreparedTransaction {
  version: 1;
  transactionalId: string;
  producerId: number;
  producerEpoch: number;
}

/** Writer state kept in the checkpoint. */
export interface KafkaSinkState {
  version: 1;
  /** The checkpoint this state belongs to (its transaction sits in slot id mod 3). */
  checkpointId: number;
  parallelism: number;
}

interface OpenTransaction {
  transactionalId: string;
  producer: Producer;
  txn: Transaction;
  records: number;
}

const textEncoder = new TextEncoder();

export function transactionalIdPrefix(o: KafkaOptions, tableName: string): string {
  return o["sink.transactional_id_prefix"] ?? `runnel-${tableName}-${o.topic}`;
}

export class KafkaSinkWriter implements SinkWriter {
  private buffer: Message[] = [];
  private bufferSince = 0;
  private sending: Promise<void> = Promise.resolve();
  private sendError: unknown = null;
  private readonly exactlyOnce: boolean;
  private readonly topic: string;
  private readonly keyIndex: number;
  private readonly timeIndex: number;
  private readonly prefix: string;
  /** Checkpoint id the records written now belong to. */
  private epoch: number;
  private producer: Producer | null = null;
  private readonly slotProducers: (Producer | null)[] = new Array(TXN_SLOTS).fill(null);
  private current: OpenTransaction | null = null;
  /** Transactions prepared at a barrier, waiting for their checkpoint to complete. */
  private readonly awaiting = new Map<number, OpenTransaction>();
  private cluster: KCluster | null = null;
  private closed = false;

  constructor(
    private readonly ctx: SinkContext<KafkaOptions>,
    private readonly kafka: Kafka,
  ) {
    const o = ctx.options;
    this.exactlyOnce = o["sink.commit_mode"] === "exactly_once";
    this.topic = o.topic;
    const index = (name: string | undefined) => (name === undefined ? -1 : ctx.fields.findIndex((f) => f.name.toLowerCase() === name.toLowerCase()));
    this.keyIndex = index(o["sink.key_field"]);
    this.timeIndex = index(o["sink.timestamp_field"]);
    this.prefix = transactionalIdPrefix(o, ctx.tableName);
    const restored = ctx.restored as KafkaSinkState | undefined;
    this.epoch = (restored?.checkpointId ?? 0) + 1;
  }

  static async create(ctx: SinkContext<KafkaOptions>, kafka: Kafka): Promise<KafkaSinkWriter> {
    if (!ctx.format) throw new Error(`kafka sink '${ctx.tableName}' needs a format (e.g. format = 'json')`);
    const writer = new KafkaSinkWriter(ctx, kafka);
    if (writer.exactlyOnce) {
      recordProducerIdentities();
      writer.cluster = createCluster(kafka, ISOLATION.READ_COMMITTED);
      await withRetry("connect", () => writer.cluster!.connect(), ctx.signal, 30_000);
      await writer.recover(ctx.restored as KafkaSinkState | undefined);
    } else {
      writer.producer = writer.newProducer(undefined);
      await withRetry("connect", () => writer.producer!.connect(), ctx.signal, 30_000);
    }
    return writer;
  }

  private newProducer(transactionalId: string | undefined): Producer {
    return this.kafka.producer({
      createPartitioner: DefaultPartitioner,
      allowAutoTopicCreation: false,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionalId,
      transactionTimeout: this.ctx.options["sink.transaction_timeout"] / 1000,
      // Long enough to ride out a broker restart; idempotence keeps retries from duplicating.
      retry: { retries: 12, initialRetryTime: 200, maxRetryTime: 5000 },
    });
  }

  private txnId(subtask: number, slot: number): string {
    return `${this.prefix}-${subtask}-${slot}`;
  }

  /**
   * Aborts every open transaction of the transactional ids this subtask owns
   * (its own, and those of former subtasks j with j mod parallelism = this
   * subtask), except the slot of the restored checkpoint, whose transactions
   * the engine commits. Re-initialising an id bumps its epoch, which aborts
   * whatever it had open and fences any zombie writer still using it.
   */
  private async recover(restored: KafkaSinkState | undefined): Promise<void> {
    const p = this.ctx.parallelism;
    const oldP = restored?.parallelism ?? p;
    const keep = restored ? restored.checkpointId % TXN_SLOTS : -1;
    const ids: string[] = [];
    for (let j = this.ctx.subtaskIndex; j < Math.max(p, oldP); j += p) {
      for (let slot = 0; slot < TXN_SLOTS; slot++) {
        if (restored && j < oldP && slot === keep) continue;
        ids.push(this.txnId(j, slot));
      }
    }
    // Ids beyond both parallelisms: open transactions of an earlier run with more subtasks
    // (started without state, so its parallelism is unknown). The broker lists them.
    const known = new Set(ids);
    for (const id of await this.openTransactionsBeyond(Math.max(p, oldP))) if (!known.has(id)) ids.push(id);
    const timeout = this.ctx.options["sink.transaction_timeout"] / 1000;
    try {
      await Promise.all(
        ids.map((transactionalId) =>
          withRetry(
            "abort",
            async () => {
              const coordinator = await this.cluster!.findGroupCoordinator({ groupId: transactionalId, coordinatorType: COORDINATOR_TYPE.TRANSACTION });
              await coordinator.initProducerId({ transactionalId, transactionTimeout: timeout });
            },
            this.ctx.signal,
          ),
        ),
      );
    } catch (err) {
      throw this.explain(err);
    }
  }

  /** Turns the broker's refusals the user can fix into messages naming the option. */
  private explain(err: unknown): Error {
    const type = (err as { type?: string }).type;
    const name = `kafka sink '${this.ctx.tableName}'`;
    if (type === "INVALID_TRANSACTION_TIMEOUT") {
      return new Error(
        `${name}: the broker refuses 'sink.transaction_timeout' (${this.ctx.options["sink.transaction_timeout"] / 1e6} s); ` +
          `it must not exceed the broker's transaction.max.timeout.ms (15 minutes unless configured otherwise). Lower it, or raise the broker setting.`,
      );
    }
    if (type === "TRANSACTIONAL_ID_AUTHORIZATION_FAILED") {
      return new Error(
        `${name}: not allowed to use transactional ids '${this.prefix}-*' (sink.transactional_id_prefix); grant WRITE and DESCRIBE on them, or use at_least_once`,
      );
    }
    return new Error(`${name}: ${describeError(err)}`);
  }

  /** Open transactions of this job's ids `<prefix>-<j>-<slot>` with j ≥ `from` that this subtask owns. */
  private async openTransactionsBeyond(from: number): Promise<string[]> {
    let listed;
    try {
      listed = await withRetry("list transactions", () => listTransactions(this.cluster!, ["Ongoing"]), this.ctx.signal, 30_000);
    } catch (err) {
      this.ctx.log.warn(`kafka sink '${this.ctx.tableName}': could not list open transactions (${describeError(err)}); only the known transactional ids were checked`);
      return [];
    }
    const pattern = new RegExp(`^${this.prefix.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}-(\\d+)-(\\d+)$`);
    const out: string[] = [];
    for (const t of listed) {
      const m = pattern.exec(t.transactionalId);
      if (!m) continue;
      const j = Number(m[1]);
      if (j >= from && j % this.ctx.parallelism === this.ctx.subtaskIndex && Number(m[2]) < TXN_SLOTS) out.push(t.transactionalId);
    }
    return out;
  }

  write(batch: Batch): void | Promise<void> {
    if (this.sendError) throw this.sendError;
    if (batch.rows.length > SEND_CHUNK) return this.writeInChunks(batch);
    return this.writeRows(batch, 0, batch.rows.length);
  }

  /** A large batch is sent as it is encoded, so at most two chunks are held at once. */
  private async writeInChunks(batch: Batch): Promise<void> {
    for (let from = 0; from < batch.rows.length; from += SEND_CHUNK) {
      await this.writeRows(batch, from, Math.min(batch.rows.length, from + SEND_CHUNK));
    }
  }

  private writeRows(batch: Batch, from: number, to: number): void | Promise<void> {
    const format = this.ctx.format!;
    const { rows, ops, before } = batch;
    const k = this.keyIndex;
    const ti = this.timeIndex;
    if (this.buffer.length === 0) this.bufferSince = performance.now();
    for (let i = from; i < to; i++) {
      const row = rows[i]!;
      const encoded = format.serialize(row, ops?.[i], before?.[i]);
      const message: Message = { value: typeof encoded === "string" ? encoded : Buffer.from(encoded) };
      if (k >= 0) {
        const key = row[k];
        message.key = key === null || key === undefined ? null : key instanceof Uint8Array ? Buffer.from(key) : String(key);
      }
      if (ti >= 0) {
        const t = row[ti];
        if (typeof t === "number") message.timestamp = String(Math.floor(t / 1000));
      }
      this.buffer.push(message);
    }
    if (this.buffer.length >= SEND_CHUNK || performance.now() - this.bufferSince >= LINGER_MS) return this.send();
  }

  /** Sends the buffer after the send in flight; waits for that one first (backpressure). */
  private async send(): Promise<void> {
    await this.sending;
    if (this.sendError) throw this.sendError;
    if (this.buffer.length === 0) return;
    const messages = this.buffer;
    this.buffer = [];
    this.sending = this.sendNow(messages).catch((err) => {
      this.sendError = new Error(`kafka sink '${this.ctx.tableName}': writing to topic '${this.topic}' failed: ${describeError(err)}`);
    });
  }

  private async sendNow(messages: Message[]): Promise<void> {
    const topicMessages = [{ topic: this.topic, messages }];
    if (!this.exactlyOnce) {
      await this.producer!.sendBatch({ topicMessages, acks: -1 });
      return;
    }
    const open = this.current ?? (await this.beginTransaction());
    open.records += messages.length;
    await open.txn.sendBatch({ topicMessages, acks: -1 });
  }

  private async beginTransaction(): Promise<OpenTransaction> {
    const slot = this.epoch % TXN_SLOTS;
    const transactionalId = this.txnId(this.ctx.subtaskIndex, slot);
    let producer = this.slotProducers[slot];
    if (!producer) {
      producer = this.newProducer(transactionalId);
      await withRetry("connect", () => producer!.connect(), this.ctx.signal, 30_000);
      this.slotProducers[slot] = producer;
    }
    let txn: Transaction;
    try {
      txn = await producer.transaction();
    } catch (err) {
      throw this.explain(err);
    }
    this.current = { transactionalId, producer, txn, records: 0 };
    return this.current;
  }

  private async flush(): Promise<void> {
    await this.send();
    await this.sending;
    if (this.sendError) throw this.sendError;
  }

  async prepareCommit(checkpointId: number): Promise<PreparedTransaction | null> {
    await this.flush();
    this.epoch = checkpointId + 1;
    const open = this.current;
    this.current = null;
    if (!this.exactlyOnce || !open || open.records === 0) {
      if (open) await open.txn.commit(); // nothing in it: closing it costs nothing
      return null;
    }
    const identity = producerIdentities.get(open.transactionalId);
    if (!identity) throw new Error(`kafka sink '${this.ctx.tableName}': no producer id recorded for transactional id '${open.transactionalId}'`);
    this.awaiting.set(checkpointId, open);
    return { version: 1, transactionalId: open.transactionalId, producerId: identity.producerId, producerEpoch: identity.producerEpoch };
  }

  snapshot(): KafkaSinkState {
    return { version: 1, checkpointId: this.epoch - 1, parallelism: this.ctx.parallelism };
  }

  async commit(checkpointId: number, prepared: unknown): Promise<void> {
    const p = prepared as PreparedTransaction;
    if (p?.version !== 1) throw new Error(`kafka sink '${this.ctx.tableName}': checkpoint ${checkpointId} holds a transaction record of an unknown version`);
    const open = this.awaiting.get(checkpointId);
    this.awaiting.delete(checkpointId);
    if (open) {
      try {
        await open.txn.commit();
        return;
      } catch (err) {
        // The producer's state is unknown now: replace it, and finish the commit by hand below.
        const slot = this.slotProducers.indexOf(open.producer);
        if (slot >= 0) this.slotProducers[slot] = null;
        open.producer.disconnect().catch(() => {});
        this.ctx.log.warn(`kafka sink '${this.ctx.tableName}': commit of '${p.transactionalId}' failed (${describeError(err)}); retrying`);
      }
    }
    await this.commitRecorded(checkpointId, p);
  }

  /** Commits a transaction from its recorded id and epoch (after a restart, or a failed commit). */
  private async commitRecorded(checkpointId: number, p: PreparedTransaction): Promise<void> {
    if (!this.cluster) {
      this.cluster = createCluster(this.kafka, ISOLATION.READ_COMMITTED);
      await this.cluster.connect();
    }
    try {
      await withRetry(
        "commit",
        async () => {
          const coordinator = await this.cluster!.findGroupCoordinator({ groupId: p.transactionalId, coordinatorType: COORDINATOR_TYPE.TRANSACTION });
          await coordinator.endTxn({ transactionalId: p.transactionalId, producerId: p.producerId, producerEpoch: p.producerEpoch, transactionResult: true });
        },
        this.ctx.signal,
      );
    } catch (err) {
      const type = (err as { type?: string }).type;
      if (type === "INVALID_PRODUCER_EPOCH" || type === "PRODUCER_FENCED" || type === "INVALID_PRODUCER_ID_MAPPING" || type === "INVALID_TXN_STATE") {
        throw new Error(
          `kafka sink '${this.ctx.tableName}': the transaction '${p.transactionalId}' of checkpoint ${checkpointId} can no longer be committed (${type}): ` +
            `it was aborted, most likely because it outlived 'sink.transaction_timeout' (${this.ctx.options["sink.transaction_timeout"] / 1e6} s) before the job came back, ` +
            `or another job uses the same 'sink.transactional_id_prefix'. Its records are lost for exactly-once readers; ` +
            `raise the timeout (up to the broker's transaction.max.timeout.ms) and give each job its own prefix.`,
        );
      }
      throw new Error(`kafka sink '${this.ctx.tableName}': committing transaction '${p.transactionalId}' failed: ${describeError(err)}`);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Nothing uncommitted is published: an open transaction is aborted by the next start (or its timeout).
    await this.sending.catch(() => {});
    const producers = [this.producer, ...this.slotProducers].filter((p): p is Producer => p !== null);
    await Promise.all(producers.map((p) => p.disconnect().catch(() => {})));
    await this.cluster?.disconnect().catch(() => {});
  }
}

export { textEncoder };
