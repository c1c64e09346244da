/**
 * `mqtt`: MQTT 5 topics (mqtt.js). Source: QoS 2 exactly-once into state,
 * QoS 1 at-least-once (acknowledgements held until checkpoints complete),
 * QoS 0 at-most-once; shared subscriptions spread over subtasks. Sink:
 * at-least-once at QoS 1/2. Options follow Arroyo's names.
 */
import { defineConnector, definePlugin, t, type SinkContext, type SourceContext, type TableInfo } from "../../core/plugin-api/index.ts";
import { brokerUrl, clientPrefix, connectMqtt } from "./client.ts";
import { mqttOptions, type MqttOptions } from "./options.ts";
import { MqttSinkWriter } from "./sink.ts";
import { MqttSourceReader } from "./source.ts";

function validate(info: TableInfo<unknown>): void {
  const table = info as TableInfo<MqttOptions>;
  const o = table.options;
  brokerUrl(o);
  const topic = o.topic;
  if (!topic) throw new Error(`option 'topic' is empty; name the topic to ${table.role === "source" ? "subscribe to" : "publish to"}`);
  if (table.role === "sink" && /[+#]/.test(topic)) throw new Error(`option 'topic': '${topic}' has wildcards; a sink publishes to one topic`);
  if (table.role === "sink" && topic.startsWith("$share/")) throw new Error(`option 'topic': '${topic}' is a shared subscription; a sink publishes to a plain topic`);
  if (topic.startsWith("$share/") && topic.split("/").length < 3) throw new Error(`option 'topic': a shared subscription is written $share/<group>/<filter>`);
}

/** Connects before the job starts, so a wrong address or credentials fail naming the option. */
async function preflight(info: TableInfo<unknown>): Promise<void> {
  const table = info as TableInfo<MqttOptions>;
  const { client } = await connectMqtt(table.options, `${clientPrefix(table.options, table.name)}-check-${process.pid}`, { clean: true });
  await client.endAsync().catch(() => {});
}

export const mqtt = defineConnector({
  name: "mqtt",
  description: "MQTT topics: QoS 2 exactly-once / QoS 1 at-least-once / QoS 0 at-most-once source with shared subscriptions; at-least-once sink",
  options: mqttOptions,
  needsFormat: true,
  validate,
  preflight,
  metadata: {
    topic: { type: t.string(), description: "The topic the message was published to" },
    qos: { type: t.int(), description: "The quality of service the message was delivered with" },
  },
  source: {
    create: (ctx) => MqttSourceReader.create(ctx as SourceContext<MqttOptions>),
  },
  sink: {
    create: (ctx) => MqttSinkWriter.create(ctx as SinkContext<MqttOptions>),
  },
});

export default definePlugin({ name: "connector-mqtt", version: "0.1.0", connectors: [mqtt] });
