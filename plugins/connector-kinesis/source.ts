/**
 * The Kinesis source reader. Shards are splits. Each subtask lists the
 * stream's shards (at start and every few seconds, so shards made by
 * resharding are picked up) and reads the ones it owns: a shard whose parent
 * is listed belongs to its parent's subtask, any other to subtask
 * (number in its id) mod parallelism. Keeping a lineage on one subtask lets it
 * finish a closed parent before it starts the children, so records of one
 * partition key stay in order across a split.
 *
 * The checkpoint holds, per shard, the last sequence number read (a restored
 * job resumes AFTER_SEQUENCE_NUMBER), whether the shard is finished, or, for a
 * shard started at `latest` that has produced nothing yet, when it was started
 * (resumed AT_TIMESTAMP). The positions of every subtask reach every subtask on
 * restore, so a job may come back with another parallelism.
 */
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListShardsCommand,
  type GetRecordsCommandOutput,
  type KinesisClient,
  type Shard,
  type _Record,
} from "@aws-sdk/client-kinesis";
import type { Row, SourceContext, SourcePoll, SourceReader, SplitBatch } from "../../core/plugin-api/index.ts";
import { describeError, errorName, isMissingStream, isTransient, missingStreamError, whereOf } from "./client.ts";
import type { KinesisOptions } from "./options.ts";

/** How long the stream may stay unreachable before the job fails (it restarts from its checkpoint). */
const UNREACHABLE_LIMIT_MS = 120_000;
const DISCOVERY_INTERVAL_MS = 5_000;
const POLL_WAIT_MS = 100;
/** Kinesis allows 5 GetRecords calls per second per shard. */
const READ_INTERVAL_MS = 200;
/** After an empty read at the tip of a shard. */
const IDLE_READ_INTERVAL_MS = 500;
const MAX_BACKOFF_MS = 5_000;
const MAX_RECORDS_PER_READ = 10_000;

/** A shard's position, as kept in checkpoints (one per shard). */
export interface ShardPosition {
  v: 1;
  /** Sequence number of the last record read. */
  seq?: string;
  /** Started at `latest` and nothing read yet: when (ms since the epoch). */
  at?: number;
  /** Read to its end (a closed shard). */
  done?: true;
}

interface ShardCursor {
  id: string;
  iterator?: string;
  /** Take the first iterator at LATEST (a shard of a job started at `latest`). */
  latest: boolean;
  nextReadAt: number;
  backoffMs: number;
  inflight: Promise<void> | null;
  outcome: { res?: GetRecordsCommandOutput; error?: unknown } | null;
}

/** The number in 'shardId-000000000007', for a round-robin spread of the stream's first shards. */
function shardNumber(id: string): number {
  const m = /(\d+)$/.exec(id);
  if (m) return Number(m[1]);
  let h = 0;
  for (let i = 0; i < id.length; i++) h = (h * 31 + id.charCodeAt(i)) | 0;
  return Math.abs(h);
}

export class KinesisSourceReader implements SourceReader {
  /** The stream's shards at the last listing. */
  private listed = new Map<string, Shard>();
  /** Owner of every shard seen, remembered so a parent ageing out of the listing never moves its children. */
  private readonly owners = new Map<string, number>();
  /** Positions of the shards this subtask owns (finished ones included, until they leave the listing). */
  private readonly positions = new Map<string, ShardPosition>();
  private readonly cursors = new Map<string, ShardCursor>();
  private lastDiscovery = 0;
  private discoverSoon = false;
  private unreachableSince: number | null = null;
  private readonly abort = new AbortController();
  private readonly stream: string;
  private readonly metadataKeys: string[];
  private closed = false;

  private constructor(
    private readonly ctx: SourceContext<KinesisOptions>,
    private readonly client: KinesisClient,
  ) {
    this.stream = ctx.options.stream_name;
    this.metadataKeys = ctx.metadata ?? [];
    ctx.signal.addEventListener("abort", () => this.abort.abort(), { once: true });
  }

  static async create(ctx: SourceContext<KinesisOptions>, client: KinesisClient): Promise<KinesisSourceReader> {
    if (!ctx.format) throw new Error(`kinesis source '${ctx.tableName}' needs a format (e.g. format = 'json')`);
    const reader = new KinesisSourceReader(ctx, client);
    await reader.discover(true);
    return reader;
  }

  private get name(): string {
    return `kinesis source '${this.ctx.tableName}'`;
  }

  private async listShards(): Promise<Shard[]> {
    const out: Shard[] = [];
    let token: string | undefined;
    do {
      const res = await this.client.send(
        new ListShardsCommand(token ? { NextToken: token } : { StreamName: this.stream }),
        { abortSignal: this.abort.signal },
      );
      out.push(...(res.Shards ?? []));
      token = res.NextToken;
    } while (token);
    return out;
  }

  private ownerOf(id: string): number {
    const known = this.owners.get(id);
    if (known !== undefined) return known;
    const parent = this.listed.get(id)?.ParentShardId;
    const owner = parent && this.listed.has(parent) ? this.ownerOf(parent) : shardNumber(id) % this.ctx.parallelism;
    this.owners.set(id, owner);
    return owner;
  }

  /** Lists the shards and takes up the ones this subtask owns and has not seen yet. */
  private async discover(initial: boolean): Promise<void> {
    this.lastDiscovery = Date.now();
    this.discoverSoon = false;
    let shards: Shard[];
    try {
      shards = await this.listShards();
    } catch (err) {
      if (isMissingStream(err)) throw new Error(`${this.name}: ${missingStreamError(this.ctx.options).message}`);
      if (initial && !isTransient(err)) throw new Error(`${this.name}: cannot list the shards of stream '${this.stream}' in ${whereOf(this.ctx.options)}: ${describeError(err)}`);
      throw err;
    }
    this.listed = new Map(shards.map((s) => [s.ShardId!, s]));
    const fresh = initial && Object.keys(this.ctx.restored).length === 0;
    const now = Date.now();
    const ids = [...this.listed.keys()].sort((a, b) => shardNumber(a) - shardNumber(b));
    for (const id of ids) {
      if (this.ownerOf(id) !== this.ctx.subtaskIndex || this.positions.has(id)) continue;
      const restored = this.ctx.restored[id] as ShardPosition | undefined;
      if (restored !== undefined) {
        if (restored?.v !== 1) throw new Error(`${this.name}: the checkpoint holds a position of an unknown version for shard ${id}`);
        this.positions.set(id, { ...restored });
      } else if (fresh && this.ctx.options["source.offset"] === "latest") {
        // A job started at `latest` skips what closed shards hold and reads open ones from now on.
        const closed = this.listed.get(id)!.SequenceNumberRange?.EndingSequenceNumber !== undefined;
        this.positions.set(id, closed ? { v: 1, done: true } : { v: 1, at: now });
        if (!closed) this.cursors.set(id, this.cursor(id, true));
      } else {
        // `earliest`, and shards that appear while the job runs (or that no checkpoint knew): from their start.
        this.positions.set(id, { v: 1 });
      }
      if (!initial) this.ctx.log.info(`${this.name}: reading new shard ${id} of stream '${this.stream}'`);
    }
    // Finished shards that have left the listing (past the stream's retention) need no position any more.
    for (const [id, p] of this.positions) if (p.done && !this.listed.has(id)) this.positions.delete(id);
    this.startReady();
  }

  private cursor(id: string, latest: boolean): ShardCursor {
    return { id, latest, nextReadAt: 0, backoffMs: READ_INTERVAL_MS, inflight: null, outcome: null };
  }

  /** Starts cursors on owned shards whose parents are finished (closed parents first, then children). */
  private startReady(): void {
    for (const [id, p] of this.positions) {
      if (p.done || this.cursors.has(id)) continue;
      const shard = this.listed.get(id);
      if (!shard) continue;
      if (!this.parentFinished(shard.ParentShardId) || !this.parentFinished(shard.AdjacentParentShardId)) continue;
      this.cursors.set(id, this.cursor(id, false));
    }
  }

  /**
   * A parent is finished when this subtask read it to its end, or when it is
   * gone from the listing. A merge's adjacent parent may belong to another
   * subtask, which this one cannot see: it is taken as finished.
   */
  private parentFinished(parent: string | undefined): boolean {
    if (!parent || !this.listed.has(parent)) return true;
    if (this.ownerOf(parent) !== this.ctx.subtaskIndex) return true;
    return this.positions.get(parent)?.done === true;
  }

  splits(): string[] {
    const out: string[] = [];
    for (const [id, p] of this.positions) if (!p.done) out.push(id);
    return out;
  }

  private async iteratorFor(c: ShardCursor): Promise<string> {
    const p = this.positions.get(c.id)!;
    const base = { StreamName: this.stream, ShardId: c.id };
    const req = p.seq !== undefined
      ? { ...base, ShardIteratorType: "AFTER_SEQUENCE_NUMBER" as const, StartingSequenceNumber: p.seq }
      : p.at !== undefined
        ? c.latest
          ? { ...base, ShardIteratorType: "LATEST" as const }
          : { ...base, ShardIteratorType: "AT_TIMESTAMP" as const, Timestamp: new Date(p.at) }
        : { ...base, ShardIteratorType: "TRIM_HORIZON" as const };
    const res = await this.client.send(new GetShardIteratorCommand(req), { abortSignal: this.abort.signal });
    c.latest = false;
    return res.ShardIterator!;
  }

  private startRead(c: ShardCursor, limit: number): void {
    c.outcome = null;
    c.inflight = (async () => {
      try {
        c.iterator ??= await this.iteratorFor(c);
        const res = await this.client.send(new GetRecordsCommand({ ShardIterator: c.iterator, Limit: limit }), { abortSignal: this.abort.signal });
        c.outcome = { res };
      } catch (error) {
        c.outcome = { error };
      }
    })();
  }

  async poll(maxRows: number): Promise<SourcePoll> {
    if (this.closed) return { batches: [] };
    let now = Date.now();
    if (this.discoverSoon || now - this.lastDiscovery > DISCOVERY_INTERVAL_MS) {
      try {
        await this.discover(false);
      } catch (err) {
        if (!isTransient(err)) throw err;
        this.noteUnreachable(err);
      }
    }
    now = Date.now();
    const limit = Math.max(100, Math.min(MAX_RECORDS_PER_READ, maxRows));
    const waiting: Promise<void>[] = [];
    let nextAt = Infinity;
    for (const c of this.cursors.values()) {
      if (!c.inflight && !c.outcome && now >= c.nextReadAt) this.startRead(c, limit);
      if (c.inflight) waiting.push(c.inflight);
      else if (!c.outcome) nextAt = Math.min(nextAt, c.nextReadAt);
    }
    const ready = () => [...this.cursors.values()].some((c) => c.outcome !== null);
    if (!ready()) {
      const wait = Math.min(POLL_WAIT_MS, Math.max(1, nextAt - now));
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([...waiting, new Promise<void>((resolve) => (timer = setTimeout(resolve, wait)))]);
      clearTimeout(timer);
    }
    const batches: SplitBatch[] = [];
    for (const c of [...this.cursors.values()]) {
      if (!c.outcome) continue;
      const { res, error } = c.outcome;
      c.inflight = null;
      c.outcome = null;
      if (error !== undefined) await this.onReadError(c, error);
      else {
        await this.prepareRecords(res!);
        const batch = this.onRecords(c, res!);
        if (batch) batches.push(batch);
      }
    }
    return { batches };
  }

  /** Lets the format fetch what the records need (the schema whose id they carry) before they are read. */
  private async prepareRecords(res: GetRecordsCommandOutput): Promise<void> {
    const format = this.ctx.format!;
    if (!format.prepare) return;
    for (const r of res.Records ?? []) {
      if (!r.Data || r.Data.byteLength === 0) continue;
      const ready = format.prepare(r.Data);
      if (ready) await ready;
    }
  }

  private onRecords(c: ShardCursor, res: GetRecordsCommandOutput): SplitBatch | null {
    this.unreachableSince = null;
    c.backoffMs = READ_INTERVAL_MS;
    const p = this.positions.get(c.id)!;
    const records = res.Records ?? [];
    const rows: Row[] = [];
    const times: number[] = [];
    const format = this.ctx.format!;
    for (const r of records) {
      p.seq = r.SequenceNumber!;
      let row: Row | null;
      try {
        if (!r.Data || r.Data.byteLength === 0) {
          if (format.skipsEmptyRecords) continue;
          throw new Error("the record has no data");
        }
        row = format.deserialize(r.Data);
      } catch (err) {
        this.ctx.badRecord(`stream '${this.stream}' shard ${c.id} sequence number ${r.SequenceNumber}`, err);
        continue;
      }
      if (row === null) continue;
      const ts = (r.ApproximateArrivalTimestamp?.getTime() ?? Date.now()) * 1000;
      if (this.metadataKeys.length > 0) this.appendMetadata(row, c.id, r, ts);
      rows.push(row);
      times.push(ts);
    }
    if (records.length > 0) delete p.at;
    c.iterator = res.NextShardIterator ?? undefined;
    const ending = this.listed.get(c.id)?.SequenceNumberRange?.EndingSequenceNumber;
    // A closed shard ends when Kinesis hands out no next iterator; some
    // emulators keep handing them out, so reaching its last sequence number counts too.
    if (!res.NextShardIterator || (ending !== undefined && p.seq !== undefined && BigInt(p.seq) >= BigInt(ending))) {
      p.done = true;
      delete p.at;
      this.cursors.delete(c.id);
      this.discoverSoon = true;
      this.ctx.log.info(`${this.name}: shard ${c.id} of stream '${this.stream}' is closed and read to its end`);
    } else {
      const behind = res.MillisBehindLatest ?? 0;
      c.nextReadAt = Date.now() + (records.length > 0 || behind > 0 ? READ_INTERVAL_MS : IDLE_READ_INTERVAL_MS);
    }
    return rows.length > 0 ? { split: c.id, rows, times } : null;
  }

  private async onReadError(c: ShardCursor, err: unknown): Promise<void> {
    if (this.closed) return;
    const name = errorName(err);
    if (name === "ExpiredIteratorException") {
      // Iterators last 5 minutes; take a new one from the position.
      c.iterator = undefined;
      c.nextReadAt = 0;
      return;
    }
    if (name === "ResourceNotFoundException") {
      let shards: Shard[] | null = null;
      try {
        shards = await this.listShards();
      } catch (e) {
        if (isMissingStream(e)) throw new Error(`${this.name}: ${missingStreamError(this.ctx.options).message}`);
      }
      if (shards && !shards.some((s) => s.ShardId === c.id)) {
        this.ctx.log.warn(`${this.name}: shard ${c.id} of stream '${this.stream}' is gone (past the stream's retention); records it still held were not read`);
        this.positions.get(c.id)!.done = true;
        this.cursors.delete(c.id);
        this.discoverSoon = true;
        return;
      }
    }
    if (!isTransient(err)) {
      throw new Error(`${this.name}: reading shard ${c.id} of stream '${this.stream}' failed: ${describeError(err)}`);
    }
    this.noteUnreachable(err);
    // ProvisionedThroughputExceeded (another reader shares the shard's 5 reads/s) and network errors: back off.
    c.nextReadAt = Date.now() + c.backoffMs;
    c.backoffMs = Math.min(c.backoffMs * 2, MAX_BACKOFF_MS);
  }

  private noteUnreachable(err: unknown): void {
    const now = Date.now();
    if (this.unreachableSince === null) {
      this.unreachableSince = now;
      this.ctx.log.warn(`${this.name}: ${describeError(err)}; retrying`);
    } else if (now - this.unreachableSince > UNREACHABLE_LIMIT_MS) {
      throw new Error(
        `${this.name}: stream '${this.stream}' in ${whereOf(this.ctx.options)} could not be read for ${UNREACHABLE_LIMIT_MS / 1000} s (${describeError(err)}); ` +
          `the job can be restarted from its last checkpoint once it is reachable`,
      );
    }
  }

  private appendMetadata(row: Row, shard: string, r: _Record, ts: number): void {
    for (const key of this.metadataKeys) {
      switch (key) {
        case "shard_id":
          row.push(shard);
          break;
        case "sequence_number":
          row.push(r.SequenceNumber ?? null);
          break;
        case "partition_key":
          row.push(r.PartitionKey ?? null);
          break;
        case "arrival_time":
          row.push(ts);
          break;
        case "stream_name":
          row.push(this.stream);
          break;
        default:
          row.push(null);
      }
    }
  }

  snapshot(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [id, p] of this.positions) out[id] = { ...p };
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.abort.abort();
    await Promise.all([...this.cursors.values()].map((c) => c.inflight)).catch(() => {});
    this.client.destroy();
  }
}
