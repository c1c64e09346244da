/**
 * `redis`: a sink writing strings, lists, hashes or streams (Arroyo's targets
 * plus streams), at-least-once or exactly-once (MULTI/EXEC per checkpoint);
 * and a lookup table (`type = 'lookup'`) read by key in lookup joins.
 */
import { defineConnector, definePlugin, t, type LookupContext, type SinkContext, type TableInfo } from "../../core/plugin-api/index.ts";
import { checkAddress, connectRedis } from "./client.ts";
import { redisOptions, type RedisOptions } from "./options.ts";
import { RedisSinkWriter } from "./sink.ts";

import { RedisLookup, validateLookup } from "./lookup.ts";

export { RedisLookup } from "./lookup.ts";

function validate(info: TableInfo<unknown>): void {
  const table = info as TableInfo<RedisOptions>;
  const o = table.options;
  checkAddress(o);
  if (table.role === "lookup") return validateLookup(table);
  const column = (option: "target.key_column" | "target.field_column") => {
    const name = o[option];
    if (name === undefined) return;
    if (!table.fields.some((f) => f.name.toLowerCase() === name.toLowerCase())) {
      throw new Error(`option '${option}': no column '${name}'; the columns are ${table.fields.map((f) => f.name).join(", ")}`);
    }
  };
  column("target.key_column");
  column("target.field_column");
  if (o.target === "hash" && !o["target.field_column"]) throw new Error("target = 'hash' needs option 'target.field_column' (the column naming each row's field in the hash)");
  const only = (option: keyof RedisOptions, targets: string[]) => {
    if (o[option] !== undefined && !targets.includes(o.target) && !(option === "target.operation" && o[option] === "append")) {
      throw new Error(`option '${option}' applies to target ${targets.map((t) => `'${t}'`).join(" or ")}, not '${o.target}'`);
    }
  };
  only("target.ttl_secs", ["string"]);
  only("target.max_length", ["list", "stream"]);
  only("target.field_column", ["hash"]);
  only("target.operation", ["list"]);
  if (!o["target.key_column"] && !o["target.key_prefix"]) throw new Error("set option 'target.key_prefix' (every row's key), or 'target.key_column' (a key per row)");
}

async function preflight(info: TableInfo<unknown>): Promise<void> {
  const table = info as TableInfo<RedisOptions>;
  const redis = await connectRedis(table.options, `runnel-${table.name}-preflight`);
  redis.disconnect();
}

export const redis = defineConnector({
  name: "redis",
  description: "Redis: sink writing strings, lists, hashes or streams, at-least-once or exactly-once (MULTI/EXEC per checkpoint); lookup table read by key (MGET)",
  options: redisOptions,
  needsFormat: true,
  metadata: { key: { type: t.string(), description: "Lookup tables: the key read (without 'target.key_prefix'); declare it as the PRIMARY KEY" } },
  validate,
  preflight,
  sink: {
    create: (ctx) => RedisSinkWriter.create(ctx as SinkContext<RedisOptions>),
  },
  lookup: {
    create: (ctx) => RedisLookup.create(ctx as LookupContext<RedisOptions>),
  },
});

export default definePlugin({ name: "connector-redis", version: "0.1.0", connectors: [redis] });
