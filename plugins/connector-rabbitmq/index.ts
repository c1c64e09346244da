/**
 * `rabbitmq`: AMQP 0-9-1 queues (amqplib). Source: acknowledged when the
 * checkpoint holding the messages completes (at-least-once). Sink: publisher
 * confirms awaited at each checkpoint (at-least-once). Connection options
 * carry Arroyo's names.
 */
import { defineConnector, definePlugin, t, type SinkContext, type SourceContext, type TableInfo } from "../../core/plugin-api/index.ts";
import { connectRabbit, describeError } from "./client.ts";
import { rabbitmqOptions, type RabbitmqOptions } from "./options.ts";
import { RabbitmqSinkWriter } from "./sink.ts";
import { checkQueue, RabbitmqSourceReader } from "./source.ts";

function validate(info: TableInfo<unknown>): void {
  const table = info as TableInfo<RabbitmqOptions>;
  const o = table.options;
  if (table.role === "source") {
    if (!o.queue) throw new Error("a rabbitmq source needs option 'queue' (the queue to consume)");
    return;
  }
  if (!o.queue && !o["sink.exchange"] && !o["sink.routing_key"] && !o["sink.routing_key_field"]) {
    throw new Error("a rabbitmq sink needs option 'queue' (publish to that queue) or 'sink.exchange' with 'sink.routing_key' or 'sink.routing_key_field'");
  }
  const keyField = o["sink.routing_key_field"];
  if (keyField !== undefined && !table.fields.some((f) => f.name.toLowerCase() === keyField.toLowerCase())) {
    throw new Error(`option 'sink.routing_key_field': no column '${keyField}'; the columns are ${table.fields.map((f) => f.name).join(", ")}`);
  }
}

/** Talks to the broker before the job starts: wrong credentials, a missing queue or exchange fail here, naming the option. */
async function preflight(info: TableInfo<unknown>): Promise<void> {
  const table = info as TableInfo<RabbitmqOptions>;
  const o = table.options;
  const conn = await connectRabbit(o, `runnel-${table.name}-preflight`);
  try {
    // A failed check closes the channel: one channel per check.
    if (table.role === "source" || (o.queue && !o["sink.exchange"])) await checkQueue(await conn.createChannel(), o.queue!, table.name);
    if (table.role === "sink" && o["sink.exchange"]) {
      const ch = await conn.createChannel();
      await ch.checkExchange(o["sink.exchange"]).catch((err) => {
        throw new Error(`rabbitmq table '${table.name}': exchange '${o["sink.exchange"]}' (option 'sink.exchange'): ${describeError(err)}; declare it first`);
      });
    }
  } finally {
    await conn.close().catch(() => {});
  }
}

export const rabbitmq = defineConnector({
  name: "rabbitmq",
  description: "RabbitMQ (AMQP 0-9-1) queues: source acknowledged at checkpoints, sink with publisher confirms (both at-least-once)",
  options: rabbitmqOptions,
  needsFormat: true,
  validate,
  preflight,
  metadata: {
    routing_key: { type: t.string(), description: "The routing key the message was published with" },
    exchange: { type: t.string(), description: "The exchange the message was published to ('' for the default exchange)" },
    message_id: { type: t.string(), description: "The message_id property (NULL when the publisher set none)" },
    redelivered: { type: t.boolean(), description: "Whether the broker delivered the message before" },
    timestamp: { type: t.timestamp(), description: "The timestamp property (NULL when the publisher set none)" },
  },
  source: {
    create: (ctx) => RabbitmqSourceReader.create(ctx as SourceContext<RabbitmqOptions>),
  },
  sink: {
    create: (ctx) => RabbitmqSinkWriter.create(ctx as SinkContext<RabbitmqOptions>),
  },
});

export default definePlugin({ name: "connector-rabbitmq", version: "0.1.0", connectors: [rabbitmq] });
