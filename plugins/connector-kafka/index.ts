/**
 * `kafka`: an exactly-once source (partitions as splits, offsets in the
 * checkpoint) and a sink with `at_least_once` or transactional `exactly_once`
 * commits, on kafkajs. Options follow Arroyo's names.
 */
import { defineConnector, definePlugin, t, typeName, type FileAccess, type JobSettings, type SinkContext, type SourceContext, type TableInfo } from "../../core/plugin-api/index.ts";
import { importFor, requirePackages } from "../shared/lazy.ts";
import type { Kafka } from "./client.ts";
import { validateConnection } from "./connection.ts";
import { kafkaOptions, type KafkaOptions } from "./options.ts";

const PLUGIN = "connector-kafka";
requirePackages(PLUGIN, import.meta.url, ["kafkajs"]);
// kafkajs (through client.ts) loads when a job or a preflight first talks to Kafka, not when planning.
const clientModule = () => importFor(PLUGIN, () => import("./client.ts"));

/** Time allowed for a crashed job to come back and commit, on top of a checkpoint interval. */
export const RESTART_ALLOWANCE_MS = 60_000;

async function client(o: KafkaOptions, tableName: string, files: FileAccess | undefined): Promise<Kafka> {
  const { checkKafkajs, Kafka, kafkaConfig } = await clientModule();
  checkKafkajs();
  return new Kafka(kafkaConfig(withAllowedCaFile(o, files), `runnel-${tableName}`));
}

/** `tls.ca_file` is a local file: checked against the job's file policy (`{{ VAR }}` left for the worker is checked there). */
function withAllowedCaFile(o: KafkaOptions, files: FileAccess | undefined): KafkaOptions {
  const ca = o["tls.ca_file"];
  if (!files || ca === undefined || ca.includes("{{")) return o;
  return { ...o, "tls.ca_file": files.resolve(ca, "tls.ca_file") };
}

function validate(info: TableInfo<unknown>): void {
  const table = info as TableInfo<KafkaOptions>;
  const o = withAllowedCaFile(table.options, table.files);
  validateConnection(o);
  if (!o.topic.trim()) throw new Error("option 'topic' is empty; name the topic to " + (table.role === "source" ? "read" : "write"));
  const column = (option: "sink.key_field" | "sink.timestamp_field") => {
    const name = o[option];
    if (name === undefined) return;
    const f = table.fields.find((x) => x.name.toLowerCase() === name.toLowerCase());
    if (!f) throw new Error(`option '${option}': no column '${name}'; the columns are ${table.fields.map((x) => x.name).join(", ")}`);
    if (option === "sink.timestamp_field" && f.type.kind !== "timestamp") {
      throw new Error(`option 'sink.timestamp_field': column '${f.name}' is ${typeName(f.type)}; name a TIMESTAMP column`);
    }
  };
  if (table.role === "sink") {
    column("sink.key_field");
    column("sink.timestamp_field");
  }
}

/** Talks to the brokers before the job starts: a wrong address or a missing topic fails here, clearly. */
async function preflight(info: TableInfo<unknown>, job: JobSettings): Promise<void> {
  const table = info as TableInfo<KafkaOptions>;
  const o = table.options;
  if (table.role === "sink" && o["sink.commit_mode"] === "exactly_once" && job.checkpointIntervalMs > 0) {
    const timeoutMs = o["sink.transaction_timeout"] / 1000;
    if (timeoutMs < job.checkpointIntervalMs + RESTART_ALLOWANCE_MS) {
      throw new Error(
        `option 'sink.transaction_timeout' (${timeoutMs / 1000} s) is shorter than the checkpoint interval (${job.checkpointIntervalMs / 1000} s) plus ` +
          `${RESTART_ALLOWANCE_MS / 1000} s for a restart: a transaction must stay open from one checkpoint until it is committed, even across a crash, ` +
          `or the broker aborts it and its records are lost. Raise 'sink.transaction_timeout' or checkpoint more often.`,
      );
    }
  }
  const kafka = await client(o, table.name, table.files);
  const { createCluster, describeError, ISOLATION } = await clientModule();
  const cluster = createCluster(kafka, ISOLATION.READ_UNCOMMITTED);
  try {
    try {
      await cluster.connect();
      await cluster.addTargetTopic(o.topic);
    } catch (err) {
      const e = err as { type?: string };
      if (e.type === "UNKNOWN_TOPIC_OR_PARTITION") throw missingTopic(o);
      const tls = o["tls.enabled"] || (o["auth.type"] === "sasl" && o["auth.protocol"] === "SASL_SSL");
      const also = [
        o["auth.type"] === "sasl" ? "the auth.* options" : "",
        tls ? "the TLS options (a broker certificate signed by a private CA needs 'tls.ca_file')" : "",
      ].filter(Boolean);
      throw new Error(
        `cannot reach Kafka at '${o.bootstrap_servers}' (option 'bootstrap_servers'): ${describeError(err)}. ` +
          `Check the address and that the brokers run${also.length > 0 ? `, and ${also.join(" and ")}` : ""}.`,
      );
    }
    if (cluster.findTopicPartitionMetadata(o.topic).length === 0) throw missingTopic(o);
  } finally {
    await cluster.disconnect().catch(() => {});
  }
}

function missingTopic(o: KafkaOptions): Error {
  return new Error(`topic '${o.topic}' (option 'topic') does not exist at '${o.bootstrap_servers}'; create it first (Runnel does not create topics)`);
}

export const kafka = defineConnector({
  name: "kafka",
  description: "Apache Kafka topics: exactly-once source, at-least-once or transactional exactly-once sink",
  options: kafkaOptions,
  needsFormat: true,
  validate,
  preflight,
  metadata: {
    offset: { type: t.bigint(), description: "The record's offset in its partition" },
    partition: { type: t.int(), description: "The partition the record came from" },
    topic: { type: t.string(), description: "The topic the record came from" },
    timestamp: { type: t.timestamp(), description: "The record's timestamp" },
    key: { type: t.string(), description: "The record key as UTF-8 text (NULL when it has none)" },
  },
  source: {
    create: async (ctx) => {
      const { KafkaSourceReader } = await importFor(PLUGIN, () => import("./source.ts"));
      return KafkaSourceReader.create(ctx as SourceContext<KafkaOptions>, await client(ctx.options as KafkaOptions, ctx.tableName, ctx.files));
    },
  },
  sink: {
    create: async (ctx) => {
      const { KafkaSinkWriter } = await importFor(PLUGIN, () => import("./sink.ts"));
      return KafkaSinkWriter.create(ctx as SinkContext<KafkaOptions>, await client(ctx.options as KafkaOptions, ctx.tableName, ctx.files));
    },
    updating: true,
  },
});

export default definePlugin({ name: "connector-kafka", version: "0.1.0", connectors: [kafka] });
