/**
 * A Redis lookup table (`type = 'lookup'`): reads string keys with one MGET
 * per call, each key `target.key_prefix` + the key value, decoded with the
 * table's format; a key without a value gives null. As in Arroyo, the key is
 * the table's `TEXT METADATA FROM 'key' PRIMARY KEY` column, filled with the
 * key looked up (without the prefix).
 */
import type { Redis } from "ioredis";
import type { Deserializer, LookupContext, LookupSource, Row, TableInfo } from "../../core/plugin-api/index.ts";
import { connectRedis, describeError } from "./client.ts";
import type { RedisOptions } from "./options.ts";

/** Checks a lookup table's declaration at planning time (role "lookup"). */
export function validateLookup(table: TableInfo<RedisOptions>): void {
  const o = table.options;
  if (o.target !== "string") throw new Error(`a lookup table reads string keys (GET); target = '${o.target}' is written with other commands: remove option 'target'`);
  for (const option of ["target.key_column", "target.field_column", "target.ttl_secs", "target.max_length"] as const) {
    if (o[option] !== undefined) throw new Error(`option '${option}' is for writing; a lookup table reads keys 'target.key_prefix' + its PRIMARY KEY`);
  }
  const key = table.primaryKey ?? [];
  const metadata = table.metadata ?? [];
  const firstMetadata = table.fields.length - metadata.length;
  const keyAt = key.length === 1 ? table.fields.findIndex((f) => f.name === key[0]) : -1;
  if (keyAt < firstMetadata || metadata[keyAt - firstMetadata] !== "key") {
    throw new Error("a Redis lookup table needs a PRIMARY KEY column declared as `name TEXT METADATA FROM 'key' PRIMARY KEY` (the key read, without 'target.key_prefix')");
  }
}

export class RedisLookup implements LookupSource {
  private readonly format: Deserializer;
  /** METADATA FROM columns after the format's (each is the key: the only metadata a lookup fills). */
  private readonly metadataCount: number;

  private constructor(
    private readonly ctx: LookupContext<RedisOptions>,
    private readonly redis: Redis,
  ) {
    if (!ctx.format) throw new Error(`redis lookup '${ctx.tableName}' needs a format (e.g. format = 'json')`);
    this.format = ctx.format;
    this.metadataCount = ctx.metadata?.length ?? 0;
  }

  static async create(ctx: LookupContext<RedisOptions>): Promise<RedisLookup> {
    if (ctx.options.target !== "string") {
      throw new Error(`redis lookup '${ctx.tableName}': lookups read string keys; target = '${ctx.options.target}' is written with other commands`);
    }
    return new RedisLookup(ctx, await connectRedis(ctx.options, `runnel-${ctx.tableName}-lookup-${ctx.subtaskIndex}`));
  }

  /** The row stored under each key (null where there is none), in the keys' order. */
  async lookup(keys: unknown[][]): Promise<(Row | null)[]> {
    if (keys.length === 0) return [];
    const prefix = this.ctx.options["target.key_prefix"];
    const names = keys.map((k) => String(k[0]));
    let values: (Buffer | null)[];
    try {
      values = await this.redis.mgetBuffer(names.map((k) => prefix + k));
    } catch (err) {
      this.ctx.metrics.add("errors_total");
      throw new Error(`redis lookup '${this.ctx.tableName}': MGET failed: ${describeError(err)}`);
    }
    const out: (Row | null)[] = [];
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === null || v === undefined) {
        out.push(null);
        continue;
      }
      const ready = this.format.prepare?.(v);
      if (ready) await ready;
      let row: Row | null;
      try {
        row = this.format.deserialize(v);
      } catch (err) {
        throw new Error(`redis lookup '${this.ctx.tableName}': the value of key '${prefix + names[i]}' cannot be read: ${describeError(err)}`);
      }
      if (row === null) {
        out.push(null);
        continue;
      }
      // METADATA FROM 'key' is the only metadata a lookup offers: each such column gets the key.
      for (let m = 0; m < this.metadataCount; m++) row.push(names[i]);
      out.push(row);
    }
    return out;
  }

  close(): void {
    this.redis.disconnect();
  }
}
