/**
 * MQTT table options, with Arroyo's names. Connection settings (url, auth,
 * TLS) are plain options, so a connection profile can hold them.
 */
import { opt } from "../../core/plugin-api/index.ts";

export const QOS_NAMES = ["AtMostOnce", "AtLeastOnce", "ExactlyOnce"] as const;
export type QosName = (typeof QOS_NAMES)[number];

export const connectionOptions = {
  url: opt.string({ required: true, description: "The broker: tcp://host:port or mqtt:// (plain), ssl:// or mqtts:// (TLS)" }),
  client_prefix: opt.string({ description: "Prefix of the client ids (default runnel-<table>); a source's session is <prefix>-<subtask>, so give each job its own" }),
  username: opt.string({ description: "User name, if the broker wants one" }),
  password: opt.string({ secret: true, description: "Password, if the broker wants one" }),
  "tls.ca": opt.string({ description: "PEM file of the CA that signed the broker's certificate (default: the system's)" }),
  "tls.cert": opt.string({ description: "PEM file of a client certificate" }),
  "tls.key": opt.string({ secret: true, description: "PEM file of the client certificate's key" }),
  max_packet_size: opt.integer({ min: 1, max: 268_435_455, description: "Largest MQTT packet accepted, in bytes (default: the protocol's limit)" }),
};

export const mqttOptions = {
  ...connectionOptions,
  topic: opt.string({ required: true, description: "Source: a topic filter (wildcards + and #, or $share/<group>/<filter> to spread messages over subtasks); sink: the topic to publish to" }),
  qos: opt.enum(QOS_NAMES, {
    default: "AtMostOnce",
    description: "AtMostOnce (0), AtLeastOnce (1) or ExactlyOnce (2): the subscription's or the publishes' quality of service",
  }),
  "source.session_expiry": opt.duration({
    default: 3_600_000_000,
    min: 1_000_000,
    description: "QoS 1/2 sources: how long the broker keeps the session (and queues messages) while the job is down",
  }),
  "sink.retain": opt.boolean({ default: false, description: "Publish with the retain flag (the broker keeps the topic's last message for new subscribers)" }),
};

export interface ConnectionValues {
  url: string;
  client_prefix?: string;
  username?: string;
  password?: string;
  "tls.ca"?: string;
  "tls.cert"?: string;
  "tls.key"?: string;
  max_packet_size?: number;
}

export interface MqttOptions extends ConnectionValues {
  topic: string;
  qos: QosName;
  "source.session_expiry": number;
  "sink.retain": boolean;
}

export const qosLevel = (q: QosName): 0 | 1 | 2 => QOS_NAMES.indexOf(q) as 0 | 1 | 2;
