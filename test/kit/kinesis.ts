/**
 * The Kinesis emulator the tests use: kinesalite, started by
 * scripts/services/kinesis.sh (RUNNEL_TEST_KINESIS, default
 * http://127.0.0.1:14567), and helpers to make streams, put records, reshard
 * and read a stream back as a plain consumer would.
 */
import {
  CreateStreamCommand,
  DeleteStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
  PutRecordsCommand,
  type Shard,
} from "@aws-sdk/client-kinesis";
import { NodeHttpHandler } from "@smithy/node-http-handler";

export const KINESIS_ENDPOINT = process.env.RUNNEL_TEST_KINESIS ?? "http://127.0.0.1:14567";
export const KINESIS_REGION = "us-east-1";
/** The options every test table passes (the emulator accepts any key). */
export const KINESIS_OPTS = `aws_endpoint = '${KINESIS_ENDPOINT}', aws_region = '${KINESIS_REGION}', aws_access_key_id = 'test-key', aws_secret_access_key = 'test-secret'`;

export function kinesisClient(): KinesisClient {
  return new KinesisClient({
    endpoint: KINESIS_ENDPOINT,
    region: KINESIS_REGION,
    credentials: { accessKeyId: "test-key", secretAccessKey: "test-secret" },
    requestHandler: new NodeHttpHandler(),
  });
}

const client = kinesisClient();
const created: string[] = [];

/** A stream with a name unique to this run, ACTIVE when this returns; `deleteStreams` removes it. */
export async function createStream(prefix: string, shards: number): Promise<string> {
  const name = `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
  await client.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }));
  created.push(name);
  await waitActive(name);
  return name;
}

/** Deletes the streams this test file made (the emulator keeps them in memory until it stops). */
export async function deleteStreams(): Promise<void> {
  const names = created.splice(0);
  await Promise.all(names.map((n) => client.send(new DeleteStreamCommand({ StreamName: n, EnforceConsumerDeletion: true })).catch(() => {})));
}

export async function waitActive(stream: string): Promise<void> {
  await waitUntil(`stream ${stream} ACTIVE`, async () => {
    const r = await client.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
    return r.StreamDescriptionSummary?.StreamStatus === "ACTIVE";
  }, 20_000, 50);
}

export async function listShards(stream: string): Promise<Shard[]> {
  return (await client.send(new ListShardsCommand({ StreamName: stream }))).Shards ?? [];
}

/**
 * Puts records (strings) in chunks of 500, each with its partition key, or
 * with an explicit hash key to aim at one shard's hash range.
 */
export async function putRecords(stream: string, records: { data: string; key?: string; hashKey?: string }[]): Promise<void> {
  const enc = new TextEncoder();
  for (let i = 0; i < records.length; i += 500) {
    let todo = records.slice(i, i + 500).map((r, j) => ({ Data: enc.encode(r.data), PartitionKey: r.key ?? `k${i + j}`, ExplicitHashKey: r.hashKey }));
    while (todo.length > 0) {
      const res = await client.send(new PutRecordsCommand({ StreamName: stream, Records: todo }));
      todo = todo.filter((_, j) => res.Records?.[j]?.ErrorCode);
    }
  }
}

export interface ReadRecord {
  shard: string;
  seq: string;
  key: string;
  data: string;
}

/** Every record the stream holds now, shard by shard in sequence order. */
export async function readStream(stream: string): Promise<ReadRecord[]> {
  const out: ReadRecord[] = [];
  const dec = new TextDecoder();
  for (const shard of await listShards(stream)) {
    let it = (await client.send(new GetShardIteratorCommand({ StreamName: stream, ShardId: shard.ShardId!, ShardIteratorType: "TRIM_HORIZON" }))).ShardIterator;
    while (it) {
      const r = await client.send(new GetRecordsCommand({ ShardIterator: it, Limit: 10_000 }));
      for (const rec of r.Records ?? []) out.push({ shard: shard.ShardId!, seq: rec.SequenceNumber!, key: rec.PartitionKey!, data: dec.decode(rec.Data) });
      if ((r.Records ?? []).length === 0) break;
      it = r.NextShardIterator;
    }
  }
  return out;
}

import { waitUntil } from "./cli.ts";
export { startJob, waitUntil, type RunningJob } from "./cli.ts";
