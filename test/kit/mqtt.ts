/**
 * The MQTT broker the tests use: Mosquitto, started by
 * scripts/services/mosquitto.sh (RUNNEL_TEST_MQTT, default
 * tcp://127.0.0.1:11883), and a client to publish and collect with.
 */
import mqtt, { type MqttClient } from "mqtt";

export const MQTT_URL = process.env.RUNNEL_TEST_MQTT ?? "tcp://127.0.0.1:11883";
export const MQTT_OPTS = `url = '${MQTT_URL}'`;

const clients: MqttClient[] = [];

export const uniqueTopic = (prefix: string) => `runnel-test/${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;

export async function mqttClient(options: mqtt.IClientOptions = {}): Promise<MqttClient> {
  const c = await mqtt.connectAsync(MQTT_URL.replace(/^tcp:/, "mqtt:"), { protocolVersion: 5, ...options });
  clients.push(c);
  return c;
}

/** Publishes each payload at `qos`, awaiting every acknowledgement. */
export async function publishAll(client: MqttClient, topic: string, payloads: string[], qos: 0 | 1 | 2 = 1): Promise<void> {
  await Promise.all(payloads.map((p) => client.publishAsync(topic, p, { qos })));
}

/** A subscriber with a persistent session that keeps every message it gets. */
export async function collector(topic: string, qos: 0 | 1 | 2 = 1): Promise<{ messages: string[] }> {
  const c = await mqttClient({ clientId: `collector-${Math.random().toString(36).slice(2, 9)}`, clean: false, properties: { sessionExpiryInterval: 300 } });
  const out = { messages: [] as string[] };
  c.on("message", (_t, payload) => out.messages.push(payload.toString()));
  await c.subscribeAsync(topic, { qos });
  return out;
}

export async function closeMqttKit(): Promise<void> {
  await Promise.all(clients.splice(0).map((c) => c.endAsync().catch(() => {})));
}

export { startJob, waitUntil } from "./cli.ts";
