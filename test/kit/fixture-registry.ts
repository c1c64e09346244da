/**
 * A registry of stand-in connectors for planner tests: they declare the same
 * options as the real ones but never run, so SQL planning is tested on its own.
 */
import { defineConnector, defineFormat, definePlugin, field, opt, t } from "../../core/plugin-api/index.ts";
import { PluginRegistry } from "../../core/registry/registry.ts";

const never = () => {
  throw new Error("fixture connectors do not run");
};

export function fixtureRegistry(): PluginRegistry {
  const r = new PluginRegistry();
  r.register(
    definePlugin({
      name: "planner-fixtures",
      connectors: [
        defineConnector({
          name: "impulse",
          options: { event_rate: opt.number({ required: true }), message_count: opt.integer(), event_time_interval: opt.duration({ bareUnit: 1 }) },
          columns: () => [field("counter", t.ubigint(), false), field("subtask_index", t.ubigint(), false), field("timestamp", t.timestamp(), false)],
          source: { create: never },
        }),
        defineConnector({
          name: "nexmark",
          options: { event_rate: opt.number({ default: 10 }), runtime: opt.duration() },
          columns: () => [
            field("person", t.struct([field("id", t.bigint()), field("name", t.string()), field("datetime", t.timestamp())])),
            field("bid", t.struct([field("auction", t.bigint()), field("bidder", t.bigint()), field("price", t.bigint()), field("datetime", t.timestamp())])),
          ],
          source: { create: never },
        }),
        defineConnector({
          name: "single_file",
          needsFormat: true,
          options: { path: opt.string({ required: true }) },
          source: { create: never },
          sink: { create: never, maxParallelism: 1, updating: true },
        }),
        defineConnector({
          name: "filesystem",
          needsFormat: true,
          options: { path: opt.string({ required: true }), parquet_compression: opt.enum(["uncompressed", "snappy", "gzip", "zstd"]), rollover_seconds: opt.integer() },
          sink: { create: never },
        }),
        defineConnector({
          name: "kafka",
          options: {
            topic: opt.string({ required: true }),
            bootstrap_servers: opt.string({ required: true }),
            "sink.commit_mode": opt.enum(["at_least_once", "exactly_once"], { default: "at_least_once" }),
          },
          source: { create: never },
          sink: { create: never },
        }),
        defineConnector({ name: "kinesis", needsFormat: true, options: { stream_name: opt.string({ required: true }) }, source: { create: never }, sink: { create: never } }),
      ],
      formats: [
        defineFormat({
          name: "json",
          options: { timestamp_format: opt.enum(["rfc3339", "unix_millis"], { default: "rfc3339" }), unstructured: opt.boolean({ default: false }) },
          serializer: never,
          deserializer: never,
        }),
        defineFormat({ name: "debezium_json", updating: true, options: {}, serializer: never }),
        defineFormat({ name: "parquet", options: {}, serializer: never }),
      ],
    }),
  );
  return r;
}
