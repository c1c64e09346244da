/**
 * The Kafka table options (Arroyo's names). Connection settings (brokers,
 * auth, TLS) are plain options too, so a connection profile can later be
 * merged in underneath a table's own options.
 */
import { opt } from "../../core/plugin-api/index.ts";
import type { ConnectionOptions } from "./connection.ts";

export const connectionOptions = {
  bootstrap_servers: opt.string({ required: true, description: "Brokers to bootstrap from, host:port[,host:port...]" }),
  client_id: opt.string({ description: "Client id shown in broker logs and quotas (default runnel-<table>)" }),
  "auth.type": opt.enum(["none", "sasl"] as const, { default: "none", description: "Authentication: none, or sasl (with auth.mechanism, auth.username, auth.password)" }),
  "auth.mechanism": opt.enum(["plain", "scram-sha-256", "scram-sha-512"] as const, { default: "plain", description: "SASL mechanism" }),
  "auth.protocol": opt.enum(["SASL_PLAINTEXT", "SASL_SSL"] as const, { default: "SASL_SSL", description: "With auth.type = 'sasl': whether the connection uses TLS" }),
  "auth.username": opt.string({ description: "SASL user name" }),
  "auth.password": opt.string({ secret: true, description: "SASL password" }),
  "tls.enabled": opt.boolean({ default: false, description: "Connect with TLS (implied by auth.protocol = 'SASL_SSL')" }),
  "tls.ca_file": opt.string({ description: "PEM file of the certificate authority that signed the brokers' certificates" }),
  "tls.reject_unauthorized": opt.boolean({ default: true, description: "Refuse brokers whose certificate does not verify" }),
  connection_timeout: opt.duration({ default: 10_000_000, bareUnit: 1000, min: 100_000, description: "How long to wait for a broker connection (a bare number is milliseconds)" }),
};

export const kafkaOptions = {
  ...connectionOptions,
  topic: opt.string({ required: true, description: "The topic to read or write" }),
  "source.offset": opt.enum(["earliest", "latest", "group"] as const, {
    default: "group",
    description: "Where a job without state starts: the earliest or latest offsets, or the consumer group's committed offsets (earliest where it has none)",
  }),
  "source.group_id": opt.string({ description: "Consumer group the source commits offsets to after each checkpoint, for lag monitoring (default runnel-<table>)" }),
  "source.read_mode": opt.enum(["read_uncommitted", "read_committed"] as const, {
    default: "read_uncommitted",
    description: "read_committed hides records of aborted and still open transactions",
  }),
  "sink.commit_mode": opt.enum(["at_least_once", "exactly_once"] as const, {
    default: "at_least_once",
    description: "exactly_once writes in Kafka transactions committed when a checkpoint completes",
  }),
  "sink.key_field": opt.string({ description: "Column whose value becomes the record key (and picks the partition)" }),
  "sink.timestamp_field": opt.string({ description: "TIMESTAMP column whose value becomes the record timestamp" }),
  "sink.transactional_id_prefix": opt.string({ description: "exactly_once: prefix of the job's transactional ids; unique per job writing to the cluster (default runnel-<table>-<topic>)" }),
  "sink.transaction_timeout": opt.duration({
    default: 600_000_000,
    min: 1_000_000,
    description: "exactly_once: how long the broker keeps a transaction open; must outlast a checkpoint interval plus a restart (at most the broker's transaction.max.timeout.ms, 15 min by default)",
  }),
};

/** The validated values (options with a default are always set; durations in µs). */
export interface KafkaOptions extends ConnectionOptions {
  topic: string;
  "source.offset": "earliest" | "latest" | "group";
  "source.group_id"?: string;
  "source.read_mode": "read_uncommitted" | "read_committed";
  "sink.commit_mode": "at_least_once" | "exactly_once";
  "sink.key_field"?: string;
  "sink.timestamp_field"?: string;
  "sink.transactional_id_prefix"?: string;
  "sink.transaction_timeout": number;
}
