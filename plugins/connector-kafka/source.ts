/**
 * The Kafka source reader. Partitions are splits: partition p belongs to
 * subtask p mod parallelism, so a restored job with the same or another
 * parallelism finds every partition's checkpointed offset in `ctx.restored`.
 * Reads go straight to each partition leader through kafkajs's broker objects
 * (kafkajs's consumer only works inside a consumer group), one fetch in flight
 * while the previous one's records are processed. The checkpoint holds the
 * offsets; the consumer group only hears of them after a checkpoint completes,
 * for lag monitoring.
 */
import type { Row, SourceContext, SourcePoll, SourceReader, SplitBatch } from "../../core/plugin-api/index.ts";
import {
  COORDINATOR_TYPE,
  createCluster,
  describeError,
  fetchRecordSets,
  ISOLATION,
  isTransient,
  withRetry,
  type FetchedMessage,
  type Kafka,
  type KCluster,
  type RawFetchedPartition,
} from "./client.ts";
import { RawRecordSet, RecordCursor } from "./record-batch.ts";
import { fieldsHoldBytes, ReceivePool } from "./receive.ts";
import type { KafkaOptions } from "./options.ts";

/** How long a broker may stay unreachable before the job fails (it restarts from its checkpoint). */
const UNREACHABLE_LIMIT_MS = 120_000;
const DISCOVERY_INTERVAL_MS = 5_000;
const POLL_WAIT_MS = 100;
const ABORT_MARKER_TYPE = 0;
/** Per fetch: large enough to amortise round trips, small enough to keep batches (and memory) moderate. */
const FETCH_MAX_BYTES = 2 << 20;
const FETCH_PARTITION_MAX_BYTES = 1 << 20;

export const splitId = (topic: string, partition: number) => `${topic}/${partition}`;

interface FetchOutcome {
  partitions: RawFetchedPartition[];
  /** Response payloads in buffers of `receivePool`, given back once their records are rows. */
  payloads: Buffer[];
  error?: unknown;
}

export class KafkaSourceReader implements SourceReader {
  /** Next offset to read, per partition this subtask owns. */
  private readonly offsets = new Map<number, number>();
  private inflight: Promise<FetchOutcome> | null = null;
  private lastDiscovery = 0;
  private unreachableSince: number | null = null;
  private retryAt = 0;
  private lastSnapshot: Record<number, number> = {};
  private warnedCommit = false;
  private readonly topic: string;
  private readonly isolation: number;
  private readonly metadataKeys: string[];
  private closed = false;
  /**
   * Reused receive buffers for fetch responses (receive.ts), where no column can hold bytes: rows then keep no
   * view of a response, and its buffer is reused once its records are rows.
   */
  private readonly receivePool: ReceivePool | null;

  private constructor(
    private readonly ctx: SourceContext<KafkaOptions>,
    private readonly kafka: Kafka,
    private readonly cluster: KCluster,
  ) {
    this.topic = ctx.options.topic;
    this.isolation = ctx.options["source.read_mode"] === "read_committed" ? ISOLATION.READ_COMMITTED : ISOLATION.READ_UNCOMMITTED;
    this.metadataKeys = ctx.metadata ?? [];
    // A response may exceed maxBytes by one record batch larger than it (KIP-74); a few times it is plenty.
    this.receivePool = fieldsHoldBytes(ctx.fields) ? null : new ReceivePool(4 * FETCH_MAX_BYTES);
  }

  static async create(ctx: SourceContext<KafkaOptions>, kafka: Kafka): Promise<KafkaSourceReader> {
    if (!ctx.format) throw new Error(`kafka source '${ctx.tableName}' needs a format (e.g. format = 'json')`);
    const isolation = ctx.options["source.read_mode"] === "read_committed" ? ISOLATION.READ_COMMITTED : ISOLATION.READ_UNCOMMITTED;
    const cluster = createCluster(kafka, isolation);
    const reader = new KafkaSourceReader(ctx, kafka, cluster);
    await withRetry("connect", async () => {
      await cluster.connect();
      await cluster.addTargetTopic(ctx.options.topic);
    }, ctx.signal, 30_000);
    await reader.discover(true);
    return reader;
  }

  get groupId(): string {
    return this.ctx.options["source.group_id"] ?? `runnel-${this.ctx.tableName}`;
  }

  private owns(partition: number): boolean {
    return partition % this.ctx.parallelism === this.ctx.subtaskIndex;
  }

  /** Finds partitions (at start, and every few seconds for partitions added later) and where to read them from. */
  private async discover(initial: boolean): Promise<void> {
    this.lastDiscovery = Date.now();
    if (!initial) await this.cluster.refreshMetadata();
    const all = this.cluster.findTopicPartitionMetadata(this.topic).map((p) => p.partitionId);
    if (initial && all.length === 0) {
      throw new Error(`kafka source '${this.ctx.tableName}': topic '${this.topic}' (option 'topic') does not exist; create it first`);
    }
    const fresh = all.filter((p) => this.owns(p) && !this.offsets.has(p)).sort((a, b) => a - b);
    if (fresh.length === 0) return;
    const unknown: number[] = [];
    for (const p of fresh) {
      const restored = this.ctx.restored[splitId(this.topic, p)];
      if (typeof restored === "number") this.offsets.set(p, restored);
      else unknown.push(p);
    }
    if (unknown.length === 0) return;
    // Partitions added while the job runs are read from their start; at the start
    // of a job without state, `source.offset` decides.
    const mode = initial && Object.keys(this.ctx.restored).length === 0 ? this.ctx.options["source.offset"] : "earliest";
    let positions = new Map<number, number>();
    if (mode === "group") positions = await this.groupOffsets(unknown);
    const rest = unknown.filter((p) => !positions.has(p));
    if (rest.length > 0) {
      const fromBeginning = mode !== "latest";
      const res = await this.cluster.fetchTopicsOffset([{ topic: this.topic, partitions: rest.map((partition) => ({ partition })), fromBeginning }]);
      for (const t of res) for (const p of t.partitions) positions.set(p.partition, Number(p.offset));
    }
    for (const p of unknown) this.offsets.set(p, positions.get(p) ?? 0);
    if (!initial) this.ctx.log.info(`kafka source '${this.ctx.tableName}': reading new partitions ${unknown.join(", ")} of '${this.topic}'`);
  }

  private async groupOffsets(partitions: number[]): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    const coordinator = await this.cluster.findGroupCoordinator({ groupId: this.groupId, coordinatorType: COORDINATOR_TYPE.GROUP });
    const res = await coordinator.offsetFetch({ groupId: this.groupId, topics: [{ topic: this.topic, partitions: partitions.map((partition) => ({ partition })) }] });
    for (const t of res.responses) for (const p of t.partitions) if (Number(p.offset) >= 0) out.set(p.partition, Number(p.offset));
    return out;
  }

  splits(): string[] {
    return [...this.offsets.keys()].map((p) => splitId(this.topic, p));
  }

  /** One fetch per partition leader; errors are returned, not thrown, so poll decides. */
  private async fetchOnce(): Promise<FetchOutcome> {
    const payloads: Buffer[] = [];
    const receive = this.receivePool ? { pool: this.receivePool, payloads } : undefined;
    try {
      const partitions = [...this.offsets.keys()];
      const meta = this.cluster.findTopicPartitionMetadata(this.topic);
      const byLeader = new Map<number, number[]>();
      for (const p of partitions) {
        const leader = meta.find((m) => m.partitionId === p)?.leader;
        if (leader === undefined || leader < 0) throw Object.assign(new Error(`no leader for partition ${p}`), { type: "LEADER_NOT_AVAILABLE" });
        let list = byLeader.get(leader);
        if (!list) byLeader.set(leader, (list = []));
        list.push(p);
      }
      const results = await Promise.all(
        [...byLeader].map(async ([leader, ps]) => {
          const broker = await this.cluster.findBroker({ nodeId: leader });
          const res = await fetchRecordSets(broker, {
            replicaId: -1,
            isolationLevel: this.isolation,
            maxWaitTime: POLL_WAIT_MS,
            minBytes: 1,
            maxBytes: FETCH_MAX_BYTES,
            topics: [{ topic: this.topic, partitions: ps.map((partition) => ({ partition, fetchOffset: String(this.offsets.get(partition)!), maxBytes: FETCH_PARTITION_MAX_BYTES })) }],
          }, receive);
          return res.responses.flatMap((r) => r.partitions);
        }),
      );
      return { partitions: results.flat(), payloads };
    } catch (error) {
      return { partitions: [], payloads: [], error };
    }
  }

  async poll(_maxRows: number): Promise<SourcePoll> {
    if (this.closed) return { batches: [] };
    const now = Date.now();
    if (now - this.lastDiscovery > DISCOVERY_INTERVAL_MS) {
      try {
        await this.discover(false);
      } catch (err) {
        if (!isTransient(err)) throw err;
      }
    }
    if (this.offsets.size === 0 || now < this.retryAt) {
      await Bun.sleep(POLL_WAIT_MS);
      return { batches: [] };
    }
    this.inflight ??= this.fetchOnce();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      this.inflight,
      new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), POLL_WAIT_MS * 3))),
    ]);
    clearTimeout(timer);
    if (outcome === null) return { batches: [] };
    this.inflight = null;
    if (outcome.error !== undefined) {
      this.onFetchError(outcome.error);
      return { batches: [] };
    }
    this.unreachableSince = null;
    const batches: SplitBatch[] = [];
    for (const part of outcome.partitions) {
      await this.prepareRecords(part);
      const batch = this.toRows(part);
      if (batch) batches.push(batch);
    }
    // The rows hold copies only (no column holds bytes): the responses' buffers can take the next fetches.
    for (const payload of outcome.payloads) this.receivePool?.release(payload);
    // Prefetch the next records while these are processed.
    this.inflight = this.fetchOnce();
    return { batches };
  }

  private onFetchError(err: unknown): void {
    if (!isTransient(err)) {
      throw new Error(`kafka source '${this.ctx.tableName}': reading '${this.topic}' failed: ${describeError(err)}`);
    }
    const now = Date.now();
    if (this.unreachableSince === null) {
      this.unreachableSince = now;
      this.ctx.log.warn(`kafka source '${this.ctx.tableName}': ${describeError(err)}; retrying`);
    } else if (now - this.unreachableSince > UNREACHABLE_LIMIT_MS) {
      throw new Error(
        `kafka source '${this.ctx.tableName}': the brokers at '${this.ctx.options.bootstrap_servers}' did not answer for ${UNREACHABLE_LIMIT_MS / 1000} s (${describeError(err)}); ` +
          `the job can be restarted from its last checkpoint once they are back`,
      );
    }
    this.retryAt = now + 500;
    this.cluster.refreshMetadata().catch(() => {});
  }

  /** Lets the format fetch what the records need (the schema whose id they carry) before they are read. */
  private async prepareRecords(part: RawFetchedPartition): Promise<void> {
    const format = this.ctx.format!;
    if (!format.prepare) return;
    const values: Buffer[] = [];
    const messages = part.messages;
    for (const m of messages instanceof RawRecordSet ? ((messages.legacy ?? []) as FetchedMessage[]) : messages) if (m.value !== null) values.push(m.value);
    if (messages instanceof RawRecordSet) {
      for (const b of messages.batches) {
        if (b.isControl) continue;
        const c = new RecordCursor(b);
        while (c.next()) if (c.valueLength >= 0) values.push(c.value()!);
      }
    }
    for (const v of values) {
      const ready = format.prepare(v);
      if (ready) await ready;
    }
  }

  private toRows(part: RawFetchedPartition): SplitBatch | null {
    const p = part.partition;
    const from = this.offsets.get(p);
    if (from === undefined) return null;
    const messages = part.messages;
    // read_committed: records of aborted transactions arrive too and are dropped
    // here, from the first offset the broker lists until that producer's abort marker.
    const aborted = this.isolation === ISOLATION.READ_COMMITTED && part.abortedTransactions.length > 0
      ? [...part.abortedTransactions].sort((a, b) => Number(a.firstOffset) - Number(b.firstOffset))
      : null;
    const t = new RowTaker(this.ctx, this.topic, this.metadataKeys, p, from, aborted);
    if (messages instanceof RawRecordSet) {
      const needKey = this.metadataKeys.includes("key");
      for (const b of messages.batches) {
        // A batch wholly before the position: fetched again because the fetch began inside it.
        if (b.firstOffset + b.lastOffsetDelta < from) continue;
        const c = new RecordCursor(b);
        while (c.next()) {
          if (c.offset < from) continue;
          t.take(c.offset, c.timestamp, b.isControl, b.inTransaction, b.producerId, b.isControl || needKey ? c.key() : null, c.valueLength < 0 ? null : b.buf, c.valueStart, c.valueStart + c.valueLength);
        }
      }
      if (messages.legacy) t.takeAll(messages.legacy as FetchedMessage[]);
    } else {
      t.takeAll(messages);
    }
    this.offsets.set(p, t.last + 1);
    return t.rows.length > 0 ? { split: splitId(this.topic, p), rows: t.rows, times: t.times } : null;
  }

  snapshot(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    const snap: Record<number, number> = {};
    for (const [p, offset] of this.offsets) {
      out[splitId(this.topic, p)] = offset;
      snap[p] = offset;
    }
    this.lastSnapshot = snap;
    return out;
  }

  /** Tells the consumer group how far the completed checkpoint got (lag monitoring only). */
  onCheckpointComplete(_checkpointId: number): void {
    const partitions = Object.entries(this.lastSnapshot).map(([p, offset]) => ({ partition: Number(p), offset: String(offset) }));
    if (partitions.length === 0 || this.closed) return;
    const groupId = this.groupId;
    void (async () => {
      const coordinator = await this.cluster.findGroupCoordinator({ groupId, coordinatorType: COORDINATOR_TYPE.GROUP });
      await coordinator.offsetCommit({ groupId, groupGenerationId: -1, memberId: "", retentionTime: -1, topics: [{ topic: this.topic, partitions }] });
    })().catch((err) => {
      if (!this.warnedCommit && !this.closed) {
        this.warnedCommit = true;
        this.ctx.log.warn(`kafka source '${this.ctx.tableName}': could not commit offsets to group '${groupId}' (monitoring only): ${describeError(err)}`);
      }
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.inflight?.catch(() => {});
    await this.cluster.disconnect().catch(() => {});
  }
}

function isAbortMarker(key: Buffer | null): boolean {
  // Control record key: version (int16) then type (int16); type 0 aborts, 1 commits.
  return key !== null && key.length >= 4 && key.readInt16BE(2) === ABORT_MARKER_TYPE;
}

/** Turns one partition's records into rows: positions, transactions, bad records, metadata columns. */
class RowTaker {
  readonly rows: Row[] = [];
  readonly times: number[] = [];
  last: number;
  private readonly abortedProducers = new Set<string>();
  private nextAborted = 0;
  private readonly format: NonNullable<SourceContext<KafkaOptions>["format"]>;
  private readonly inPlace: boolean;

  constructor(
    private readonly ctx: SourceContext<KafkaOptions>,
    private readonly topic: string,
    private readonly keys: string[],
    private readonly partition: number,
    private readonly from: number,
    private readonly aborted: { producerId: string; firstOffset: string }[] | null,
  ) {
    this.last = from - 1;
    this.format = ctx.format!;
    this.inPlace = this.format.deserializeRange !== undefined;
  }

  /** kafkajs's record objects (compressed batches without the fetch replacement, legacy message sets). */
  takeAll(messages: FetchedMessage[]): void {
    for (const m of messages) {
      const offset = Number(m.offset);
      if (offset < this.from) continue;
      this.take(offset, Number(m.timestamp), m.isControlRecord, m.batchContext.inTransaction, m.batchContext.producerId, m.key, m.value, 0, m.value?.length ?? 0);
    }
  }

  /**
   * One record at or after the position; `timestamp` in ms; `key` may be null where neither a control record
   * nor a metadata column needs it; the value is `buf[start, end)` (null `buf`: no value), read in place where
   * the format can (no Buffer view per record).
   */
  take(offset: number, timestamp: number, isControl: boolean, inTransaction: boolean, producerId: string, key: Buffer | null, buf: Buffer | null, start: number, end: number): void {
    this.last = offset;
    const aborted = this.aborted;
    if (aborted) {
      while (this.nextAborted < aborted.length && Number(aborted[this.nextAborted]!.firstOffset) <= offset) {
        this.abortedProducers.add(aborted[this.nextAborted++]!.producerId);
      }
    }
    if (isControl) {
      if (aborted && isAbortMarker(key)) this.abortedProducers.delete(producerId);
      return;
    }
    if (aborted && inTransaction && this.abortedProducers.has(producerId)) return;
    let row: Row | null;
    try {
      if (buf === null) {
        if (this.format.skipsEmptyRecords) return;
        throw new Error("the record has no value (a tombstone)");
      }
      row = this.inPlace ? this.format.deserializeRange!(buf, start, end) : this.format.deserialize(start === 0 && end === buf.length ? buf : buf.subarray(start, end));
    } catch (err) {
      this.ctx.badRecord(`topic '${this.topic}' partition ${this.partition} offset ${offset}`, err);
      return;
    }
    if (row === null) return;
    const ts = timestamp * 1000;
    if (this.keys.length > 0) appendMetadata(row, this.keys, key, this.topic, this.partition, offset, ts);
    this.rows.push(row);
    this.times.push(ts);
  }
}

const textDecoder = new TextDecoder();

function appendMetadata(row: Row, keys: string[], recordKey: Buffer | null, topic: string, partition: number, offset: number, ts: number): void {
  for (const key of keys) {
    switch (key) {
      case "offset":
        row.push(offset);
        break;
      case "partition":
        row.push(partition);
        break;
      case "topic":
        row.push(topic);
        break;
      case "timestamp":
        row.push(ts);
        break;
      case "key":
        row.push(recordKey === null ? null : textDecoder.decode(recordKey));
        break;
      default:
        row.push(null);
    }
  }
}
