/**
 * Reads rows back by key: the library half of a lookup join (the join itself
 * comes with lookup joins in the planner). Keys are the `target.key_prefix`
 * plus the given key, read with one MGET per call and decoded with the
 * table's format, as Arroyo's Redis lookup does; a key without a value gives
 * null.
 */
import type { Redis } from "ioredis";
import type { Deserializer, Row } from "../../core/plugin-api/index.ts";
import { connectRedis, describeError } from "./client.ts";
import type { RedisOptions } from "./options.ts";

export interface RedisLookupContext {
  options: RedisOptions;
  tableName: string;
  format: Deserializer;
}

export class RedisLookup {
  private constructor(
    private readonly ctx: RedisLookupContext,
    private readonly redis: Redis,
  ) {}

  static async create(ctx: RedisLookupContext): Promise<RedisLookup> {
    if (ctx.options.target !== "string") {
      throw new Error(`redis lookup '${ctx.tableName}': lookups read string keys; target = '${ctx.options.target}' is written with other commands`);
    }
    return new RedisLookup(ctx, await connectRedis(ctx.options, `runnel-${ctx.tableName}-lookup`));
  }

  /** The row stored under each key (null where there is none), in the keys' order. */
  async lookup(keys: string[]): Promise<(Row | null)[]> {
    if (keys.length === 0) return [];
    const prefix = this.ctx.options["target.key_prefix"];
    let values: (Buffer | null)[];
    try {
      values = await this.redis.mgetBuffer(keys.map((k) => prefix + k));
    } catch (err) {
      throw new Error(`redis lookup '${this.ctx.tableName}': MGET failed: ${describeError(err)}`);
    }
    const format = this.ctx.format;
    const out: (Row | null)[] = [];
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === null || v === undefined) {
        out.push(null);
        continue;
      }
      if (format.prepare) {
        const ready = format.prepare(v);
        if (ready) await ready;
      }
      try {
        out.push(format.deserialize(v));
      } catch (err) {
        throw new Error(`redis lookup '${this.ctx.tableName}': the value of key '${prefix + keys[i]}' cannot be read: ${describeError(err)}`);
      }
    }
    return out;
  }

  close(): void {
    this.redis.disconnect();
  }
}
