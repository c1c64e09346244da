/** Connecting to an MQTT broker from the table's options (mqtt.js, MQTT 5), with errors in the user's terms. */
import type { IClientOptions, MqttClient } from "mqtt";
import { readOptionFile } from "../shared/files.ts";
import { importFor, requirePackages } from "../shared/lazy.ts";
import type { ConnectionValues } from "./options.ts";

// The client library loads with the first connection (below); the plugin only checks that it is installed.
requirePackages("connector-mqtt", import.meta.url, ["mqtt"]);

const PROTOCOLS: Record<string, "mqtt" | "mqtts"> = { "tcp:": "mqtt", "mqtt:": "mqtt", "ssl:": "mqtts", "mqtts:": "mqtts" };

export function brokerUrl(o: ConnectionValues): URL {
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    throw new Error(`option 'url': '${o.url}' is not a URL; write it like tcp://broker:1883 or mqtts://broker:8883`);
  }
  if (!PROTOCOLS[url.protocol]) throw new Error(`option 'url': '${url.protocol}//' is not supported; use tcp://, mqtt://, ssl:// or mqtts://`);
  return url;
}

export const clientPrefix = (o: ConnectionValues, tableName: string) => o.client_prefix ?? `runnel-${tableName}`;

export function clientOptions(o: ConnectionValues, clientId: string, extra: Partial<IClientOptions> = {}): IClientOptions {
  const url = brokerUrl(o);
  const protocol = PROTOCOLS[url.protocol]!;
  return {
    protocol,
    host: url.hostname,
    port: url.port ? Number(url.port) : protocol === "mqtts" ? 8883 : 1883,
    protocolVersion: 5,
    clientId,
    username: o.username,
    password: o.password,
    ca: readOptionFile(o["tls.ca"], "tls.ca"),
    cert: readOptionFile(o["tls.cert"], "tls.cert"),
    key: readOptionFile(o["tls.key"], "tls.key"),
    connectTimeout: 10_000,
    reconnectPeriod: 1_000,
    keepalive: 30,
    ...(o.max_packet_size ? { properties: { maximumPacketSize: o.max_packet_size } } : {}),
    ...extra,
  };
}

/**
 * Connects once, failing with the broker's answer (a wrong password, an
 * unreachable host) rather than retrying forever. `setup` runs before any
 * packet is read: a resumed session's queued messages follow CONNACK at once.
 */
export async function connectMqtt(
  o: ConnectionValues,
  clientId: string,
  extra: Partial<IClientOptions> = {},
  setup?: (client: MqttClient) => void,
): Promise<{ client: MqttClient; sessionPresent: boolean }> {
  const options = clientOptions(o, clientId, extra);
  const { default: mqtt } = await importFor("connector-mqtt", () => import("mqtt"));
  const client = mqtt.connect({ ...options, reconnectPeriod: 0 });
  setup?.(client);
  try {
    const connack = await new Promise<{ sessionPresent: boolean }>((resolve, reject) => {
      client.once("connect", (p) => resolve({ sessionPresent: !!p.sessionPresent }));
      client.once("error", reject);
      client.once("close", () => reject(new Error("the broker closed the connection")));
    });
    // From here on, reconnect on loss like any long-lived client.
    client.options.reconnectPeriod = options.reconnectPeriod ?? 1_000;
    return { client, sessionPresent: connack.sessionPresent };
  } catch (err) {
    client.end(true);
    const auth = o.username ? " and options 'username'/'password'" : "";
    throw new Error(`cannot connect to the MQTT broker at '${o.url}' (option 'url'${auth}) as client '${clientId}': ${describeError(err)}`);
  }
}

export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: string | number }).code;
    return code !== undefined && !err.message.includes(String(code)) ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}
