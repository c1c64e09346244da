/**
 * `kinesis`: Amazon Kinesis Data Streams. The source reads shards as splits
 * with their sequence numbers in the checkpoint (exactly-once with an
 * exactly-once sink downstream) and follows resharding; the sink writes with
 * PutRecords and is at-least-once, since Kinesis has no transactions.
 * Options follow Arroyo's names.
 */
import { defineConnector, definePlugin, t, type SinkContext, type SourceContext, type TableInfo } from "../../core/plugin-api/index.ts";
import { importFor, requirePackages } from "../shared/lazy.ts";
import { kinesisOptions, type KinesisOptions } from "./options.ts";

const PLUGIN = "connector-kinesis";
requirePackages(PLUGIN, import.meta.url, ["@aws-sdk/client-kinesis", "@smithy/node-http-handler"]);
// The AWS SDK (through client.ts) loads when a job or a preflight first talks to Kinesis, not when planning.
const clientModule = () => importFor(PLUGIN, () => import("./client.ts"));

const STREAM_NAME = /^[a-zA-Z0-9_.-]{1,128}$/;

function validate(info: TableInfo<unknown>): void {
  const table = info as TableInfo<KinesisOptions>;
  const o = table.options;
  if (!STREAM_NAME.test(o.stream_name)) {
    throw new Error(`option 'stream_name': '${o.stream_name}' is not a Kinesis stream name (1 to 128 of letters, digits, '_', '.', '-')`);
  }
  if ((o.aws_access_key_id === undefined) !== (o.aws_secret_access_key === undefined)) {
    throw new Error("options 'aws_access_key_id' and 'aws_secret_access_key' go together; give both, or neither to use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY");
  }
  if (o.aws_endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(o.aws_endpoint)) {
    throw new Error(`option 'aws_endpoint': '${o.aws_endpoint}' is not an http(s) URL (e.g. 'http://127.0.0.1:4567')`);
  }
  const keyField = o["sink.partition_key_field"];
  if (keyField !== undefined && table.role === "sink" && !table.fields.some((f) => f.name.toLowerCase() === keyField.toLowerCase())) {
    throw new Error(`option 'sink.partition_key_field': no column '${keyField}'; the columns are ${table.fields.map((f) => f.name).join(", ")}`);
  }
}

/** Asks Kinesis for the stream before the job starts: a wrong name, region or endpoint fails here, clearly. */
async function preflight(info: TableInfo<unknown>): Promise<void> {
  const o = (info as TableInfo<KinesisOptions>).options;
  const { createKinesisClient, describeError, isMissingStream, missingStreamError, whereOf } = await clientModule();
  const { DescribeStreamSummaryCommand } = await importFor(PLUGIN, () => import("@aws-sdk/client-kinesis"));
  const client = createKinesisClient(o);
  try {
    const res = await client.send(new DescribeStreamSummaryCommand({ StreamName: o.stream_name }));
    const status = res.StreamDescriptionSummary?.StreamStatus;
    if (status === "DELETING") throw new Error(`kinesis stream '${o.stream_name}' (option 'stream_name') in ${whereOf(o)} is being deleted`);
  } catch (err) {
    if (isMissingStream(err)) throw missingStreamError(o);
    if (err instanceof Error && err.message.startsWith("kinesis stream")) throw err;
    throw new Error(
      `cannot reach Kinesis for stream '${o.stream_name}' (option 'stream_name') in ${whereOf(o)}: ${describeError(err)}. ` +
        `Check 'aws_region', 'aws_endpoint' and the credentials (options or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY).`,
    );
  } finally {
    client.destroy();
  }
}

export const kinesis = defineConnector({
  name: "kinesis",
  description:
    "Amazon Kinesis Data Streams: exactly-once source (shards as splits, sequence numbers in checkpoints, follows resharding); " +
    "at-least-once sink (PutRecords, flushed at each checkpoint; Kinesis has no transactions, so a restart may write records twice)",
  options: kinesisOptions,
  needsFormat: true,
  validate,
  preflight,
  metadata: {
    shard_id: { type: t.string(), description: "The shard the record came from" },
    sequence_number: { type: t.string(), description: "The record's sequence number in its shard" },
    partition_key: { type: t.string(), description: "The record's partition key" },
    arrival_time: { type: t.timestamp(), description: "When Kinesis received the record (ApproximateArrivalTimestamp)" },
    stream_name: { type: t.string(), description: "The stream the record came from" },
  },
  source: {
    create: async (ctx) => {
      const [{ KinesisSourceReader }, { createKinesisClient }] = await Promise.all([importFor(PLUGIN, () => import("./source.ts")), clientModule()]);
      return KinesisSourceReader.create(ctx as SourceContext<KinesisOptions>, createKinesisClient(ctx.options as KinesisOptions));
    },
  },
  sink: {
    create: async (ctx) => {
      const [{ KinesisSinkWriter }, { createKinesisClient }] = await Promise.all([importFor(PLUGIN, () => import("./sink.ts")), clientModule()]);
      return new KinesisSinkWriter(ctx as SinkContext<KinesisOptions>, createKinesisClient(ctx.options as KinesisOptions));
    },
    updating: true,
  },
});

export default definePlugin({ name: "connector-kinesis", version: "0.1.0", connectors: [kinesis] });
