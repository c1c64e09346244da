/**
 * The Kafka connection options a table can be checked against without a
 * broker or kafkajs (planning loads only this; client.ts loads kafkajs).
 */
import { readFileSync } from "node:fs";

export interface ConnectionOptions {
  bootstrap_servers: string;
  client_id?: string;
  "auth.type": "none" | "sasl";
  "auth.mechanism": "plain" | "scram-sha-256" | "scram-sha-512";
  "auth.protocol": "SASL_PLAINTEXT" | "SASL_SSL";
  "auth.username"?: string;
  "auth.password"?: string;
  "tls.enabled": boolean;
  "tls.ca_file"?: string;
  "tls.reject_unauthorized": boolean;
  connection_timeout: number;
}

/** The broker list from `bootstrap_servers`, each checked to be host:port. */
export function parseBrokers(raw: string): string[] {
  const brokers = raw
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (brokers.length === 0) throw new Error("option 'bootstrap_servers' is empty; give host:port[,host:port...]");
  for (const b of brokers) {
    const m = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(b);
    if (!m || Number(m[2]) > 65535) {
      throw new Error(`option 'bootstrap_servers': '${b}' is not host:port (e.g. 'localhost:9092')`);
    }
  }
  return brokers;
}

/** Checks the connection options that can be checked without a broker. */
export function validateConnection(o: ConnectionOptions): void {
  parseBrokers(o.bootstrap_servers);
  if (o["auth.type"] === "sasl") {
    if (!o["auth.username"] || o["auth.password"] === undefined) {
      throw new Error("auth.type = 'sasl' needs 'auth.username' and 'auth.password'");
    }
  } else if (o["auth.username"] !== undefined || o["auth.password"] !== undefined) {
    throw new Error("'auth.username'/'auth.password' are only used with auth.type = 'sasl'; add it, or remove them");
  }
  if (o["tls.ca_file"] !== undefined) {
    try {
      readFileSync(o["tls.ca_file"]);
    } catch (err) {
      throw new Error(`option 'tls.ca_file': cannot read '${o["tls.ca_file"]}': ${(err as Error).message}`);
    }
  }
}
