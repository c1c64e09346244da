/**
 * Redis table options, with Arroyo's names (address, username, password;
 * target and target.*). `stream` targets and `sink.commit_mode` are Runnel's.
 */
import { opt } from "../../core/plugin-api/index.ts";

export const connectionOptions = {
  address: opt.string({ required: true, description: "The server, redis://host:port[/db] (rediss:// for TLS)" }),
  username: opt.string({ description: "User name (Redis 6 ACLs), if the server wants one" }),
  password: opt.string({ secret: true, description: "Password, if the server wants one" }),
};

export const redisOptions = {
  ...connectionOptions,
  target: opt.enum(["string", "list", "hash", "stream"] as const, {
    default: "string",
    description: "How rows are written: string (SET), list (RPUSH/LPUSH), hash (HSET) or stream (XADD)",
  }),
  "target.key_prefix": opt.string({ default: "", description: "Prefix of every key written (or read by a lookup)" }),
  "target.key_column": opt.string({ description: "Column whose value is appended to the prefix to make each row's key (default: the prefix alone)" }),
  "target.field_column": opt.string({ description: "hash: column whose value is the field name within the hash" }),
  "target.ttl_secs": opt.integer({ min: 1, description: "string: seconds until each key expires" }),
  "target.max_length": opt.integer({ min: 1, description: "list: trimmed to this many entries after each write; stream: capped near this length (MAXLEN ~)" }),
  "target.operation": opt.enum(["append", "prepend"] as const, { default: "append", description: "list: push onto the end (append) or the front (prepend)" }),
  "sink.commit_mode": opt.enum(["at_least_once", "exactly_once"] as const, {
    default: "at_least_once",
    description: "at_least_once writes as rows come (flushed at each checkpoint); exactly_once applies each checkpoint's writes in one MULTI/EXEC when it completes",
  }),
  "sink.commit_marker_prefix": opt.string({
    default: "runnel:commit:",
    description: "exactly_once: prefix of the keys that record applied commits (kept 7 days)",
  }),
};

export interface ConnectionValues {
  address: string;
  username?: string;
  password?: string;
}

export interface RedisOptions extends ConnectionValues {
  target: "string" | "list" | "hash" | "stream";
  "target.key_prefix": string;
  "target.key_column"?: string;
  "target.field_column"?: string;
  "target.ttl_secs"?: number;
  "target.max_length"?: number;
  "target.operation": "append" | "prepend";
  "sink.commit_mode": "at_least_once" | "exactly_once";
  "sink.commit_marker_prefix": string;
}
