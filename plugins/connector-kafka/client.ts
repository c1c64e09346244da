/**
 * kafkajs set up from the table's options, plus the few kafkajs internals the
 * connector relies on. kafkajs offers no manual partition assignment (only
 * consumer groups) and does not expose a transactional producer's id and
 * epoch, which exactly-once recovery must record; so the source fetches
 * through kafkajs's cluster and broker objects, and the sink records the
 * InitProducerId answers. Both are internals of kafkajs 2.2.4, which
 * package.json pins exactly; `checkKafkajs()` fails clearly on another version.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { markRaw, type RawRecordSet } from "./record-batch.ts";
import { parseBrokers, type ConnectionOptions } from "./connection.ts";
import { createDefaultPartitioner, kafkajsDecoderPatched, kafkajsFetchPatched, kafkajsFramingPatched, kafkajsGroupingPatched, kafkajsProducePatched, kafkajsReceivePatched, kafkajsRecordPatched } from "./kafkajs-fixes.ts";
import { RECEIVE_POOL, type ReceivePool } from "./receive.ts";
import type { Kafka as KafkaClient, KafkaConfig, Partitioners as KafkaPartitioners, SASLOptions, logLevel as KafkaLogLevel } from "kafkajs";

const require = createRequire(import.meta.url);
// Loaded at run time, after kafkajs-fixes.ts (a static import would load kafkajs before it).
const kafkajs = require("kafkajs") as { Kafka: typeof KafkaClient; logLevel: typeof KafkaLogLevel; Partitioners: typeof KafkaPartitioners };
export const Kafka = kafkajs.Kafka;
export type Kafka = KafkaClient;
export const Partitioners = kafkajs.Partitioners;
/** kafkajs's DefaultPartitioner without its per-message filter (kafkajs-fixes.ts). */
export const DefaultPartitioner = createDefaultPartitioner(require("kafkajs/src/producer/partitioners/default/murmur2.js"), () => crypto.getRandomValues(new Uint32Array(1))[0]!);
const logLevel = kafkajs.logLevel;

export const KAFKAJS_VERSION = "2.2.4";
export { kafkajsDecoderPatched, kafkajsFetchPatched, kafkajsFramingPatched, kafkajsGroupingPatched, kafkajsProducePatched, kafkajsReceivePatched, kafkajsRecordPatched };

export { parseBrokers, validateConnection, type ConnectionOptions } from "./connection.ts";

export function kafkaConfig(o: ConnectionOptions, clientId: string): KafkaConfig {
  const useTls = o["tls.enabled"] || (o["auth.type"] === "sasl" && o["auth.protocol"] === "SASL_SSL");
  const config: KafkaConfig = {
    clientId: o.client_id ?? clientId,
    brokers: parseBrokers(o.bootstrap_servers),
    connectionTimeout: Math.round(o.connection_timeout / 1000),
    requestTimeout: 30_000,
    logLevel: process.env.RUNNEL_KAFKA_DEBUG ? logLevel.DEBUG : logLevel.NOTHING,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2000 },
  };
  if (useTls) {
    config.ssl = o["tls.ca_file"]
      ? { ca: [readFileSync(o["tls.ca_file"], "utf8")], rejectUnauthorized: o["tls.reject_unauthorized"] }
      : { rejectUnauthorized: o["tls.reject_unauthorized"] };
  }
  if (o["auth.type"] === "sasl") {
    config.sasl = { mechanism: o["auth.mechanism"], username: o["auth.username"]!, password: o["auth.password"]! } as SASLOptions;
  }
  return config;
}

export function checkKafkajs(): void {
  const version = require("kafkajs/package.json").version as string;
  if (version !== KAFKAJS_VERSION) {
    throw new Error(
      `the kafka connector was built against kafkajs ${KAFKAJS_VERSION} internals but kafkajs ${version} is installed; ` +
        `install kafkajs@${KAFKAJS_VERSION} (package.json pins it)`,
    );
  }
}

// ---------------------------------------------------------------- internals

/** The parts of kafkajs's (untyped) Broker this connector calls. */
export interface KBroker {
  fetch(req: {
    replicaId?: number;
    isolationLevel: number;
    maxWaitTime: number;
    minBytes: number;
    maxBytes: number;
    topics: { topic: string; partitions: { partition: number; fetchOffset: string; maxBytes: number }[] }[];
  }): Promise<{ responses: { topicName: string; partitions: FetchedPartition[] }[] }>;
  offsetCommit(req: { groupId: string; groupGenerationId: number; memberId: string; retentionTime?: number; topics: { topic: string; partitions: { partition: number; offset: string }[] }[] }): Promise<unknown>;
  offsetFetch(req: { groupId: string; topics: { topic: string; partitions: { partition: number }[] }[] }): Promise<{ responses: { topic: string; partitions: { partition: number; offset: string }[] }[] }>;
  initProducerId(req: { transactionalId: string; transactionTimeout: number }): Promise<{ producerId: number; producerEpoch: number }>;
  endTxn(req: { transactionalId: string; producerId: number; producerEpoch: number; transactionResult: boolean }): Promise<unknown>;
}

export interface FetchedMessage {
  offset: string;
  timestamp: string;
  key: Buffer | null;
  value: Buffer | null;
  isControlRecord: boolean;
  batchContext: { producerId: string; inTransaction: boolean };
}

export interface FetchedPartition {
  partition: number;
  errorCode: number;
  highWatermark: string;
  lastStableOffset: string;
  abortedTransactions: { producerId: string; firstOffset: string }[];
  messages: FetchedMessage[];
}

/** kafkajs's Cluster: metadata, leaders, coordinators, connections. */
export interface KCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  refreshMetadata(): Promise<void>;
  addTargetTopic(topic: string): Promise<void>;
  findTopicPartitionMetadata(topic: string): { partitionId: number; leader: number }[];
  findBroker(req: { nodeId: number | string }): Promise<KBroker>;
  findGroupCoordinator(req: { groupId: string; coordinatorType?: number }): Promise<KBroker>;
  fetchTopicsOffset(topics: { topic: string; partitions: { partition: number }[]; fromBeginning: boolean }[]): Promise<{ topic: string; partitions: { partition: number; offset: string }[] }[]>;
}

export const COORDINATOR_TYPE = { GROUP: 0, TRANSACTION: 1 } as const;
export const ISOLATION = { READ_UNCOMMITTED: 0, READ_COMMITTED: 1 } as const;

/** A cluster object of kafkajs, configured like the client's own. */
export function createCluster(kafka: Kafka, isolationLevel: number): KCluster {
  const sym = Object.getOwnPropertySymbols(kafka).find((s) => s.description === "private:Kafka:createCluster");
  if (!sym) throw new Error(`kafkajs internals changed (no createCluster); install kafkajs@${KAFKAJS_VERSION}`);
  return (kafka as any)[sym]({ metadataMaxAge: 5 * 60_000, allowAutoTopicCreation: false, maxInFlightRequests: null, isolationLevel });
}

export type FetchRequest = Parameters<KBroker["fetch"]>[0];

/** A partition of a fetch whose record sets stayed raw (`messages` read in place with record-batch.ts). */
export type RawFetchedPartition = Omit<FetchedPartition, "messages"> & { messages: RawRecordSet | FetchedMessage[] };

/**
 * A fetch through the broker's connection, as kafkajs's `broker.fetch` sends
 * it (same version negotiation, request encoding and error parsing), with the
 * response payload marked raw so its record sets are not turned into kafkajs
 * record objects. Where the fetch decoder replacement is not in place (kafkajs
 * loaded before it), `messages` are kafkajs's records as before.
 * With `receive`, the response may arrive in a buffer of that pool (receive.ts),
 * and its payload is pushed to `receive.payloads`: the caller gives it back
 * (`pool.release`) once nothing it made points into the response's bytes.
 */
export async function fetchRecordSets(
  broker: KBroker,
  req: FetchRequest,
  receive?: { pool: ReceivePool; payloads: Buffer[] },
): Promise<{ responses: { topicName: string; partitions: RawFetchedPartition[] }[] }> {
  const b = broker as any;
  if (!kafkajsFetchPatched || typeof b.lookupRequest !== "function" || !b.connectionPool) return broker.fetch(req);
  const protocol = b.lookupRequest(API_KEYS.Fetch, FETCH_VERSIONS)({ replicaId: -1, ...req });
  const { decode, parse } = protocol.response;
  protocol.response = {
    decode: (payload: Buffer) => {
      markRaw(payload);
      receive?.payloads.push(payload);
      return decode(payload);
    },
    parse,
  };
  try {
    // As connectionPool.send; kafkajs gives Fetch requests a connection of their own, so the pool only ever meets fetches.
    const connection = await b.connectionPool.getConnectionByRequest(protocol);
    if (receive && kafkajsReceivePatched) connection[RECEIVE_POOL] = receive.pool;
    return await connection.send(protocol);
  } catch (err) {
    // As broker.fetch: a closed connection is dropped so the next request reconnects.
    if ((err as Error).name === "KafkaJSConnectionClosedError") await b.disconnect();
    throw err;
  }
}
const API_KEYS = require("kafkajs/src/protocol/requests/apiKeys.js") as { Fetch: number };
const FETCH_VERSIONS = require("kafkajs/src/protocol/requests/fetch/index.js");

/**
 * Transactional id → the producer id and epoch the transaction coordinator
 * last handed out, recorded from kafkajs's InitProducerId calls. kafkajs keeps
 * them private; exactly-once recovery needs them to commit a transaction after
 * a crash (an EndTxn request carrying the recorded id and epoch).
 */
/**
 * kafkajs 2.2.4 schedules its request-queue check with a negative delay when
 * it is not throttled, which newer runtimes report as a TimeoutNegativeWarning
 * on stderr for every connection; the delay is clamped to zero instead.
 */
function quietRequestQueue(): void {
  const RequestQueue = require("kafkajs/src/network/requestQueue/index.js");
  const proto = RequestQueue.prototype;
  if (proto.__runnelPatched || typeof proto.scheduleCheckPendingRequests !== "function") return;
  proto.scheduleCheckPendingRequests = function (this: any) {
    let scheduleAt = this.throttledUntil - Date.now();
    if (!this.throttleCheckTimeoutId) {
      if (this.pending.length > 0) scheduleAt = scheduleAt > 0 ? scheduleAt : 10;
      this.throttleCheckTimeoutId = setTimeout(() => {
        this.throttleCheckTimeoutId = null;
        this.checkPendingRequests();
      }, Math.max(0, scheduleAt));
    }
  };
  proto.__runnelPatched = true;
}
quietRequestQueue();

export const producerIdentities = new Map<string, { producerId: number; producerEpoch: number }>();
let patched = false;
export function recordProducerIdentities(): void {
  if (patched) return;
  const Broker = require("kafkajs/src/broker/index.js");
  const original = Broker.prototype.initProducerId;
  if (typeof original !== "function") throw new Error(`kafkajs internals changed (no Broker.initProducerId); install kafkajs@${KAFKAJS_VERSION}`);
  Broker.prototype.initProducerId = async function (req: { transactionalId?: string; transactionTimeout: number }) {
    const result = await original.call(this, req);
    if (req.transactionalId) producerIdentities.set(req.transactionalId, { producerId: result.producerId, producerEpoch: result.producerEpoch });
    return result;
  };
  patched = true;
}

/** Retries transient broker errors (coordinator moving or loading, a broker restarting) with backoff. */
export async function withRetry<T>(what: string, fn: () => Promise<T>, signal?: AbortSignal, deadlineMs = 120_000): Promise<T> {
  const start = Date.now();
  let delay = 100;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (signal?.aborted || !isTransient(err) || Date.now() - start > deadlineMs) throw err;
      await Bun.sleep(delay);
      delay = Math.min(delay * 2, 2000);
    }
  }
}

const TRANSIENT = new Set([
  "CONCURRENT_TRANSACTIONS",
  "COORDINATOR_LOAD_IN_PROGRESS",
  "COORDINATOR_NOT_AVAILABLE",
  "NOT_COORDINATOR",
  "GROUP_COORDINATOR_NOT_AVAILABLE",
  "GROUP_LOAD_IN_PROGRESS",
  "NOT_COORDINATOR_FOR_GROUP",
  "NOT_LEADER_FOR_PARTITION",
  "LEADER_NOT_AVAILABLE",
  "REQUEST_TIMED_OUT",
  "NETWORK_EXCEPTION",
  "UNKNOWN_TOPIC_OR_PARTITION",
  "NOT_ENOUGH_REPLICAS",
  "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
  "KAFKA_STORAGE_ERROR",
]);

export function isTransient(err: unknown): boolean {
  const e = err as { type?: string; name?: string; code?: string; retriable?: boolean; originalError?: unknown };
  if (!e) return false;
  if (e.type && TRANSIENT.has(e.type)) return true;
  if (e.code === "ECONNREFUSED" || e.code === "ECONNRESET" || e.code === "EPIPE") return true;
  if (
    e.name === "KafkaJSConnectionError" ||
    e.name === "KafkaJSConnectionClosedError" ||
    e.name === "KafkaJSRequestTimeoutError" ||
    e.name === "KafkaJSBrokerNotFound" ||
    e.name === "KafkaJSNumberOfRetriesExceeded" ||
    e.name === "KafkaJSLockTimeout" ||
    e.name === "KafkaJSMetadataNotLoaded" ||
    e.name === "KafkaJSTopicMetadataNotLoaded"
  )
    return true;
  if (e.originalError) return isTransient(e.originalError);
  return false;
}

export function describeError(err: unknown): string {
  const e = err as { message?: string; type?: string; originalError?: { message?: string } };
  const msg = e?.message ?? String(err);
  return e?.originalError?.message && !msg.includes(e.originalError.message) ? `${msg}: ${e.originalError.message}` : msg;
}

// ---------------------------------------------------------------- ListTransactions

export interface ListedTransaction {
  transactionalId: string;
  producerId: string;
  state: string;
}

const LIST_TRANSACTIONS_API_KEY = 66;

/**
 * ListTransactions (KIP-664, brokers 3.0+), which kafkajs does not know: the
 * transactions every broker coordinates, filtered by state. The request is
 * "flexible" (compact strings, tagged fields); kafkajs writes the v1 request
 * header, so the body starts with the v2 header's empty tagged fields, and
 * the response body starts with the v1 response header's.
 */
export async function listTransactions(cluster: KCluster, states: string[]): Promise<ListedTransaction[]> {
  const Encoder = require("kafkajs/src/protocol/encoder.js");
  const Decoder = require("kafkajs/src/protocol/decoder.js");
  const { createErrorFromCode, failure } = require("kafkajs/src/protocol/error.js");
  const request = {
    request: {
      apiKey: LIST_TRANSACTIONS_API_KEY,
      apiVersion: 0,
      apiName: "ListTransactions",
      encode: async () => {
        const e = new Encoder();
        e.writeUVarInt(0); // request header tagged fields
        e.writeUVarInt(states.length + 1);
        for (const s of states) e.writeUVarIntString(s);
        e.writeUVarInt(1); // producer id filters: none
        e.writeUVarInt(0); // tagged fields
        return e;
      },
    },
    response: {
      decode: async (raw: Buffer) => {
        const d = new Decoder(raw);
        d.readTaggedFields(); // response header
        d.readInt32(); // throttle time
        const errorCode = d.readInt16();
        d.readUVarIntArray((x: any) => x.readUVarIntString());
        const transactions =
          d.readUVarIntArray((x: any) => {
            const t = { transactionalId: x.readUVarIntString(), producerId: x.readInt64().toString(), state: x.readUVarIntString() };
            x.readTaggedFields();
            return t;
          }) ?? [];
        return { errorCode, transactions };
      },
      parse: async (data: { errorCode: number; transactions: ListedTransaction[] }) => {
        if (failure(data.errorCode)) throw createErrorFromCode(data.errorCode);
        return data;
      },
    },
  };
  await cluster.refreshMetadata();
  const nodeIds = ((cluster as any).getNodeIds?.() ?? []) as string[];
  if (nodeIds.length === 0) throw new Error("no brokers in the cluster metadata");
  const out: ListedTransaction[] = [];
  for (const nodeId of nodeIds) {
    const broker = (await cluster.findBroker({ nodeId })) as any;
    const res = await broker.connectionPool.send(request);
    out.push(...res.transactions);
  }
  return out;
}
