/**
 * RabbitMQ (AMQP 0-9-1) table options. The connection options carry Arroyo's
 * names (host, port, username, password, virtual_host, tls_config.*), so a
 * connection profile written for Arroyo's RabbitMQ connector fits; the
 * table options name AMQP's queues and exchanges (Arroyo reads RabbitMQ
 * streams instead).
 */
import { opt } from "../../core/plugin-api/index.ts";

export const connectionOptions = {
  host: opt.string({ default: "localhost", description: "The RabbitMQ host" }),
  port: opt.integer({ min: 1, max: 65535, description: "The AMQP port (default 5672, or 5671 with TLS)" }),
  username: opt.string({ default: "guest", description: "User name" }),
  password: opt.string({ secret: true, default: "guest", description: "Password" }),
  virtual_host: opt.string({ default: "/", description: "The virtual host" }),
  "tls_config.enabled": opt.boolean({ default: false, description: "Connect with TLS (amqps)" }),
  "tls_config.trust_certificates": opt.boolean({ default: false, description: "Accept a server certificate that does not verify (testing only)" }),
  "tls_config.root_certificates_path": opt.string({ description: "PEM file of the CA that signed the server's certificate" }),
  "tls_config.client_certificates_path": opt.string({ description: "PEM file of a client certificate" }),
  "tls_config.client_keys_path": opt.string({ description: "PEM file of the client certificate's key" }),
};

export const rabbitmqOptions = {
  ...connectionOptions,
  queue: opt.string({ description: "Source: the queue to consume (it must exist); sink: where rows go through the default exchange, unless sink.exchange is set" }),
  "source.prefetch": opt.integer({
    default: 10_000,
    min: 1,
    max: 65_535,
    description: "Unacknowledged messages the broker may deliver; acknowledgements come at checkpoints, so this bounds messages per checkpoint interval",
  }),
  "sink.exchange": opt.string({ default: "", description: "The exchange to publish to ('' is the default exchange, which routes by queue name)" }),
  "sink.routing_key": opt.string({ description: "The routing key (default: the queue option)" }),
  "sink.routing_key_field": opt.string({ description: "A column whose value is each message's routing key (instead of sink.routing_key)" }),
  "sink.persistent": opt.boolean({ default: true, description: "Publish persistent messages (delivery mode 2), which a durable queue keeps across broker restarts" }),
};

export interface ConnectionValues {
  host: string;
  port?: number;
  username: string;
  password: string;
  virtual_host: string;
  "tls_config.enabled": boolean;
  "tls_config.trust_certificates": boolean;
  "tls_config.root_certificates_path"?: string;
  "tls_config.client_certificates_path"?: string;
  "tls_config.client_keys_path"?: string;
}

export interface RabbitmqOptions extends ConnectionValues {
  queue?: string;
  "source.prefetch": number;
  "sink.exchange": string;
  "sink.routing_key"?: string;
  "sink.routing_key_field"?: string;
  "sink.persistent": boolean;
}
