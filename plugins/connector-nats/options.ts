/**
 * NATS table options, with Arroyo's names. Connection settings (servers and
 * auth.*) are plain options, so a connection profile can hold them; secrets
 * are write-only.
 */
import { opt } from "../../core/plugin-api/index.ts";

export const connectionOptions = {
  servers: opt.string({ required: true, description: "Comma-separated NATS servers, host:port or nats://host:port" }),
  "auth.type": opt.enum(["none", "credentials", "jwt", "token"] as const, {
    default: "none",
    description: "none; credentials (auth.username, auth.password); jwt (auth.jwt, auth.nkey_seed); token (auth.token)",
  }),
  "auth.username": opt.string({ description: "User name (auth.type = 'credentials')" }),
  "auth.password": opt.string({ secret: true, description: "Password (auth.type = 'credentials')" }),
  "auth.jwt": opt.string({ secret: true, description: "User JWT (auth.type = 'jwt')" }),
  "auth.nkey_seed": opt.string({ secret: true, description: "NKey seed that signs the server's nonce (auth.type = 'jwt')" }),
  "auth.token": opt.string({ secret: true, description: "Token (auth.type = 'token')" }),
  connection_timeout: opt.duration({ default: 10_000_000, bareUnit: 1000, min: 100_000, description: "How long to wait for a server (a bare number is milliseconds)" }),
};

export const natsOptions = {
  ...connectionOptions,
  stream: opt.string({ description: "Source: the JetStream stream to read through a durable consumer (exactly-once)" }),
  subject: opt.string({ description: "Source: a NATS Core subject to subscribe to (at-most-once); sink: the subject to publish to" }),
  "source.offset": opt.enum(["earliest", "latest"] as const, {
    default: "earliest",
    description: "Where a newly created consumer starts: the stream's first message (earliest) or new messages only (latest)",
  }),
  "consumer.name": opt.string({ description: "Durable consumer name (default runnel-<table>); unique per job reading the stream" }),
  "consumer.description": opt.string({ description: "Description stored with the consumer" }),
  "consumer.ack_policy": opt.enum(["explicit", "none"] as const, {
    default: "explicit",
    description: "explicit: messages are acknowledged when the checkpoint holding them completes (exactly-once); none: the server forgets them on delivery (at-most-once)",
  }),
  "consumer.replay_policy": opt.enum(["instant", "original"] as const, { default: "instant", description: "Deliver stored messages as fast as possible, or at the pace they were stored" }),
  "consumer.ack_wait": opt.duration({
    default: 30_000_000,
    min: 1_000_000,
    description: "How long the server waits for an acknowledgement before redelivering (a bare number is seconds); must outlast the checkpoint interval",
  }),
  "consumer.filter_subjects": opt.string({ description: "Comma-separated subjects of the stream to read (default all)" }),
  "consumer.max_ack_pending": opt.integer({
    default: 100_000,
    min: 1,
    description: "Messages delivered and not yet acknowledged, at most; acknowledgements come at checkpoints, so this bounds messages per checkpoint interval",
  }),
  "consumer.max_deliver": opt.integer({ default: -1, min: -1, description: "Deliveries of a message at most (-1: unlimited)" }),
  "consumer.rate_limit": opt.integer({ default: -1, min: -1, description: "Delivery rate limit in bits per second (-1: none)" }),
  "consumer.inactive_threshold": opt.duration({ description: "The server deletes the consumer after this long without a reader (default: never)" }),
  "consumer.num_replicas": opt.integer({ default: 0, min: 0, description: "Replicas of the consumer's state (0: as the stream)" }),
  "consumer.max_batch": opt.integer({ default: 1000, min: 1, description: "Messages per pull request" }),
  "consumer.max_bytes": opt.size({ description: "Bytes per pull request at most" }),
};

export interface ConnectionValues {
  servers: string;
  "auth.type": "none" | "credentials" | "jwt" | "token";
  "auth.username"?: string;
  "auth.password"?: string;
  "auth.jwt"?: string;
  "auth.nkey_seed"?: string;
  "auth.token"?: string;
  connection_timeout: number;
}

export interface NatsOptions extends ConnectionValues {
  stream?: string;
  subject?: string;
  "source.offset": "earliest" | "latest";
  "consumer.name"?: string;
  "consumer.description"?: string;
  "consumer.ack_policy": "explicit" | "none";
  "consumer.replay_policy": "instant" | "original";
  "consumer.ack_wait": number;
  "consumer.filter_subjects"?: string;
  "consumer.max_ack_pending": number;
  "consumer.max_deliver": number;
  "consumer.rate_limit": number;
  "consumer.inactive_threshold"?: number;
  "consumer.num_replicas": number;
  "consumer.max_batch": number;
  "consumer.max_bytes"?: number;
}
