/**
 * The test Kafka broker (scripts/services/kafka.sh, or RUNNEL_TEST_KAFKA) and
 * helpers to make topics, write records and read them back as a plain
 * kafkajs consumer would see them.
 */
import { Kafka, logLevel, Partitioners, type Admin, type Message } from "kafkajs";
import { createCluster, ISOLATION } from "../../plugins/connector-kafka/client.ts";

export const KAFKA = process.env.RUNNEL_TEST_KAFKA ?? "127.0.0.1:19092";
/** The same broker's SASL_PLAINTEXT listener (PLAIN, SCRAM-SHA-256/512), user runnel / runnel-secret. */
export const KAFKA_SASL = process.env.RUNNEL_TEST_KAFKA_SASL ?? "127.0.0.1:19094";
export const KAFKA_SASL_USER = { username: "runnel", password: "runnel-secret" };
/** Its SSL and SASL_SSL listeners, and the CA that signed their certificate (made by kafka.sh). */
export const KAFKA_SSL = process.env.RUNNEL_TEST_KAFKA_SSL ?? "127.0.0.1:19095";
export const KAFKA_SASL_SSL = process.env.RUNNEL_TEST_KAFKA_SASL_SSL ?? "127.0.0.1:19096";
export const KAFKA_CA_FILE = process.env.RUNNEL_TEST_KAFKA_CA_FILE ?? "/var/tmp/runnel/kafka-19092/tls/ca.pem";

export function testKafka(clientId = "runnel-test"): Kafka {
  return new Kafka({ clientId, brokers: KAFKA.split(","), logLevel: logLevel.NOTHING, retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 2000 } });
}

let admin: Admin | null = null;
async function getAdmin(): Promise<Admin> {
  if (!admin) {
    admin = testKafka("runnel-test-admin").admin();
    await admin.connect();
  }
  return admin;
}

/** A topic with a name unique to this run. */
export async function createTopic(prefix: string, partitions = 1): Promise<string> {
  const topic = `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
  const a = await getAdmin();
  await a.createTopics({ topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }], waitForLeaders: true });
  return topic;
}

export async function addPartitions(topic: string, count: number): Promise<void> {
  const a = await getAdmin();
  await a.createPartitions({ topicPartitions: [{ topic, count }] });
}

/** Writes records (non-transactionally), to the given partitions when set. */
export async function produce(topic: string, messages: Message[]): Promise<void> {
  // Idempotent: a retried send (say, right after partitions were added) must not write twice.
  const producer = testKafka("runnel-test-producer").producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (let i = 0; i < messages.length; i += 5000) await producer.send({ topic, messages: messages.slice(i, i + 5000), acks: -1 });
  } finally {
    await producer.disconnect();
  }
}

export interface ReadRecord {
  partition: number;
  offset: number;
  key: string | null;
  value: string;
  timestamp: number;
}

/**
 * Every record of a topic as a consumer with the given isolation sees it now
 * (read_committed stops at the last stable offset), in offset order per partition.
 */
export async function readAll(topic: string, readCommitted = true): Promise<ReadRecord[]> {
  const kafka = testKafka("runnel-test-reader");
  const isolation = readCommitted ? ISOLATION.READ_COMMITTED : ISOLATION.READ_UNCOMMITTED;
  const cluster = createCluster(kafka, isolation);
  await cluster.connect();
  await cluster.addTargetTopic(topic);
  const out: ReadRecord[] = [];
  try {
    const partitions = cluster.findTopicPartitionMetadata(topic);
    for (const pm of partitions) {
      const p = pm.partitionId;
      let offset = 0;
      for (;;) {
        const broker = await cluster.findBroker({ nodeId: pm.leader });
        const res = await broker.fetch({
          replicaId: -1,
          isolationLevel: isolation,
          maxWaitTime: 50,
          minBytes: 1,
          maxBytes: 16 << 20,
          topics: [{ topic, partitions: [{ partition: p, fetchOffset: String(offset), maxBytes: 16 << 20 }] }],
        });
        const part = res.responses[0]!.partitions[0]!;
        const end = Number(readCommitted ? part.lastStableOffset : part.highWatermark);
        const aborted = [...part.abortedTransactions].sort((a, b) => Number(a.firstOffset) - Number(b.firstOffset));
        const abortedProducers = new Set<string>();
        let next = 0;
        let last = offset - 1;
        for (const m of part.messages) {
          const o = Number(m.offset);
          if (o < offset) continue;
          last = o;
          while (next < aborted.length && Number(aborted[next]!.firstOffset) <= o) abortedProducers.add(aborted[next++]!.producerId);
          if (m.isControlRecord) {
            if (m.key && m.key.readInt16BE(2) === 0) abortedProducers.delete(m.batchContext.producerId);
            continue;
          }
          if (readCommitted && m.batchContext.inTransaction && abortedProducers.has(m.batchContext.producerId)) continue;
          out.push({ partition: p, offset: o, key: m.key ? m.key.toString() : null, value: m.value ? m.value.toString() : "", timestamp: Number(m.timestamp) });
        }
        offset = last + 1;
        if (offset >= end || part.messages.length === 0) break;
      }
    }
  } finally {
    await cluster.disconnect();
  }
  return out;
}

/** The end offset (high watermark) and last stable offset of each partition. */
export async function endOffsets(topic: string): Promise<{ partition: number; high: number }[]> {
  const a = await getAdmin();
  const offsets = await a.fetchTopicOffsets(topic);
  return offsets.map((o) => ({ partition: o.partition, high: Number(o.high) }));
}

export async function closeKafkaKit(): Promise<void> {
  await admin?.disconnect();
  admin = null;
}

export { startJob, waitUntil, type RunningJob } from "./cli.ts";

/** Options shared by every test table. */
export const KAFKA_OPTS = `bootstrap_servers = '${KAFKA}'`;

/** Per partition: the high watermark and the last stable offset (held back by open transactions). */
export async function stableOffsets(topic: string): Promise<{ partition: number; high: number; stable: number }[]> {
  const kafka = testKafka("runnel-test-lso");
  const cluster = createCluster(kafka, ISOLATION.READ_COMMITTED);
  await cluster.connect();
  await cluster.addTargetTopic(topic);
  try {
    const out = [];
    for (const pm of cluster.findTopicPartitionMetadata(topic)) {
      const broker = await cluster.findBroker({ nodeId: pm.leader });
      const res = await broker.fetch({
        replicaId: -1,
        isolationLevel: ISOLATION.READ_COMMITTED,
        maxWaitTime: 10,
        minBytes: 0,
        maxBytes: 1024,
        topics: [{ topic, partitions: [{ partition: pm.partitionId, fetchOffset: "0", maxBytes: 1024 }] }],
      });
      const part = res.responses[0]!.partitions[0]!;
      out.push({ partition: pm.partitionId, high: Number(part.highWatermark), stable: Number(part.lastStableOffset) });
    }
    return out.sort((a, b) => a.partition - b.partition);
  } finally {
    await cluster.disconnect();
  }
}
