/**
 * The Redis sink: each row becomes one command on the key `target.key_prefix`
 * + the row's `target.key_column` value — SET (with EX `target.ttl_secs`),
 * RPUSH/LPUSH (then LTRIM to `target.max_length`), HSET on the field named by
 * `target.field_column`, or XADD (MAXLEN ~ `target.max_length`) of a `value`
 * field. The value is the row in the table's format.
 *
 * `at_least_once` (Arroyo's behaviour): commands are pipelined as rows come
 * and all have answered before a checkpoint completes; a restore writes again
 * what came after the checkpoint (harmless for string and hash targets, which
 * end as they would have; lists and streams get duplicates).
 *
 * `exactly_once`: commands are kept until the barrier, stored with the
 * checkpoint, and applied when it completes in one MULTI/EXEC together with a
 * marker key naming that commit (kept 7 days); a commit repeated after a crash
 * finds its marker and does nothing. Redis applies a MULTI/EXEC whole, so
 * readers never see half a checkpoint. The cost: a checkpoint interval's
 * commands travel in the checkpoint.
 */
import type { Redis } from "ioredis";
import { crashPoint, type Batch, type SinkContext, type SinkWriter } from "../../core/plugin-api/index.ts";
import { connectRedis, describeError } from "./client.ts";
import type { RedisOptions } from "./options.ts";

/** A command as stored in a checkpoint: name then arguments. */
type Command = (string | Uint8Array | number)[];

interface Prepared {
  /** Names this commit in the marker key: unique per checkpoint and subtask run. */
  token: string;
  commands: Command[];
}

/** Pipelined commands sent at once in at_least_once mode. */
const FLUSH_COMMANDS = 1_000;
const MARKER_TTL_SECS = 7 * 24 * 3600;

export class RedisSinkWriter implements SinkWriter {
  private pending: Command[] = [];
  /** Lists touched since the last flush, trimmed after it. */
  private readonly touchedLists = new Set<string>();
  private inFlight: Promise<void> = Promise.resolve();
  private error: Error | null = null;
  private readonly keyIndex: number;
  private readonly fieldIndex: number;
  private readonly exactlyOnce: boolean;
  private readonly runId = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;

  private constructor(
    private readonly ctx: SinkContext<RedisOptions>,
    private readonly redis: Redis,
  ) {
    const o = ctx.options;
    const find = (name: string | undefined) => (name === undefined ? -1 : ctx.fields.findIndex((f) => f.name.toLowerCase() === name.toLowerCase()));
    this.keyIndex = find(o["target.key_column"]);
    this.fieldIndex = find(o["target.field_column"]);
    this.exactlyOnce = o["sink.commit_mode"] === "exactly_once";
  }

  static async create(ctx: SinkContext<RedisOptions>): Promise<RedisSinkWriter> {
    if (!ctx.format) throw new Error(`redis sink '${ctx.tableName}' needs a format (e.g. format = 'json')`);
    return new RedisSinkWriter(ctx, await connectRedis(ctx.options, `runnel-${ctx.tableName}-${ctx.subtaskIndex}`));
  }

  private get name(): string {
    return `redis sink '${this.ctx.tableName}'`;
  }

  async write(batch: Batch): Promise<void> {
    if (this.error) throw this.error;
    const o = this.ctx.options;
    const format = this.ctx.format!;
    const { rows, ops, before } = batch;
    const prefix = o["target.key_prefix"];
    let bytes = 0;
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const key = this.keyIndex >= 0 ? prefix + text(row[this.keyIndex]) : prefix;
      const value = format.serialize(row, ops?.[i], before?.[i]);
      bytes += typeof value === "string" ? value.length : value.byteLength;
      switch (o.target) {
        case "string":
          this.pending.push(o["target.ttl_secs"] ? ["set", key, value, "EX", o["target.ttl_secs"]] : ["set", key, value]);
          break;
        case "hash": {
          const field = text(row[this.fieldIndex]);
          this.pending.push(["hset", key, field, value]);
          break;
        }
        case "list":
          this.pending.push([o["target.operation"] === "prepend" ? "lpush" : "rpush", key, value]);
          if (o["target.max_length"]) this.touchedLists.add(key);
          break;
        case "stream":
          this.pending.push(o["target.max_length"] ? ["xadd", key, "MAXLEN", "~", o["target.max_length"], "*", "value", value] : ["xadd", key, "*", "value", value]);
          break;
      }
    }
    this.ctx.metrics.add("commands_total", rows.length);
    this.ctx.metrics.add("bytes_sent_total", bytes);
    if (!this.exactlyOnce && this.pending.length >= FLUSH_COMMANDS) await this.flush();
  }

  /** Trims the lists touched since the last time (Arroyo trims at each flush too). */
  private trims(): Command[] {
    const max = this.ctx.options["target.max_length"];
    if (!max || this.touchedLists.size === 0) return [];
    const prepend = this.ctx.options["target.operation"] === "prepend";
    const out: Command[] = [...this.touchedLists].map((k) => (prepend ? ["ltrim", k, 0, max - 1] : ["ltrim", k, -max, -1]));
    this.touchedLists.clear();
    return out;
  }

  /** at_least_once: sends what is pending as one pipeline, one at a time. */
  private flush(): Promise<void> {
    const commands = [...this.pending, ...this.trims()];
    this.pending = [];
    if (commands.length === 0) return this.inFlight;
    this.inFlight = this.inFlight.then(async () => {
      if (this.error) return;
      const results = await this.redis.pipeline(commands as unknown[][]).exec();
      this.check(results, commands);
    }).catch((err) => {
      this.ctx.metrics.add("errors_total");
      this.error ??= new Error(`${this.name}: ${describeError(err)}`);
    });
    return this.inFlight;
  }

  private check(results: [Error | null, unknown][] | null, commands: Command[]): void {
    for (let i = 0; i < (results?.length ?? 0); i++) {
      const err = results![i]![0];
      if (err) {
        this.ctx.metrics.add("errors_total");
        const c = commands[i]!;
        throw new Error(`${String(c[0]).toUpperCase()} ${String(c[1])} failed: ${err.message}${/WRONGTYPE/.test(err.message) ? ` (the key holds another type than target = '${this.ctx.options.target}' writes)` : ""}`);
      }
    }
  }

  async prepareCommit(checkpointId: number): Promise<Prepared | null> {
    if (this.error) throw this.error;
    if (!this.exactlyOnce) {
      await this.flush();
      if (this.error) throw this.error;
      return null;
    }
    const commands = [...this.pending, ...this.trims()];
    this.pending = [];
    if (commands.length === 0) return null;
    return { token: `${this.ctx.tableName}:${this.ctx.subtaskIndex}:${this.runId}:${checkpointId}`, commands };
  }

  /** exactly_once: applies a checkpoint's commands once, with its marker, in one transaction. */
  async commit(_checkpointId: number, prepared: unknown): Promise<void> {
    const p = prepared as Prepared | null;
    if (!p || p.commands.length === 0) return;
    const marker = this.ctx.options["sink.commit_marker_prefix"] + p.token;
    try {
      if ((await this.redis.exists(marker)) === 1) return;
      const results = await this.redis.multi([...p.commands, ["set", marker, "1", "EX", MARKER_TTL_SECS]] as unknown[][]).exec();
      this.check(results, p.commands);
      crashPoint("redis-sink-after-exec");
      this.ctx.metrics.add("transactions_total");
    } catch (err) {
      this.ctx.metrics.add("errors_total");
      throw new Error(`${this.name}: applying checkpoint ${p.token.split(":").pop()} failed: ${describeError(err)}`);
    }
  }

  async close(): Promise<void> {
    if (!this.exactlyOnce) await this.flush().catch(() => {});
    this.redis.disconnect();
  }
}

const decoder = new TextDecoder();

/** A key part from a column value. */
export function text(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (v instanceof Uint8Array) return decoder.decode(v);
  return String(v);
}
