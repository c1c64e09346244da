/**
 * `nats`: JetStream streams read through a durable consumer acknowledged at
 * checkpoint completion (exactly-once into Runnel's state), NATS Core
 * subjects (at-most-once), and a sink publishing to a subject (at-least-once
 * through JetStream when a stream captures it). Options follow Arroyo's names.
 */
import { defineConnector, definePlugin, t, type JobSettings, type SinkContext, type SourceContext, type TableInfo } from "../../core/plugin-api/index.ts";
import { connectNats, describeError, validateConnection } from "./client.ts";
import { importFor } from "../shared/lazy.ts";
import { natsOptions, type NatsOptions } from "./options.ts";

const PLUGIN = "connector-nats";

function validate(info: TableInfo<unknown>): void {
  const table = info as TableInfo<NatsOptions>;
  const o = table.options;
  validateConnection(o);
  if (table.role === "source") {
    if (!o.stream === !o.subject) {
      throw new Error("a nats source reads either option 'stream' (JetStream, exactly-once) or option 'subject' (NATS Core, at-most-once); set one of them");
    }
  } else {
    if (!o.subject) throw new Error("a nats sink needs option 'subject' (the subject to publish to)");
    if (o.stream) throw new Error("option 'stream' is for sources; a nats sink publishes to option 'subject' (through JetStream when a stream captures it)");
  }
}

/** Talks to the server before the job starts: a wrong address or a missing stream fails here, naming the option. */
async function preflight(info: TableInfo<unknown>, job: JobSettings): Promise<void> {
  const table = info as TableInfo<NatsOptions>;
  const o = table.options;
  if (table.role === "source" && o.stream && o["consumer.ack_policy"] === "explicit" && job.checkpointIntervalMs > 0) {
    const ackWaitMs = o["consumer.ack_wait"] / 1000;
    if (ackWaitMs <= job.checkpointIntervalMs) {
      throw new Error(
        `option 'consumer.ack_wait' (${ackWaitMs / 1000} s) is not longer than the checkpoint interval (${job.checkpointIntervalMs / 1000} s): ` +
          `messages are acknowledged when the checkpoint holding them completes, so the server would redeliver them first. Raise 'consumer.ack_wait' (a few intervals) or checkpoint more often.`,
      );
    }
  }
  const nc = await connectNats(o, `runnel-${table.name}-preflight`);
  try {
    if (table.role === "source" && o.stream) {
      const { jetstreamManager } = await importFor(PLUGIN, () => import("@nats-io/jetstream"));
      const jsm = await jetstreamManager(nc).catch((err) => {
        throw new Error(`the NATS server at '${o.servers}' has no JetStream (option 'stream' needs it): ${describeError(err)}`);
      });
      await jsm.streams.info(o.stream).catch((err) => {
        throw new Error(`stream '${o.stream}' (option 'stream') cannot be read at '${o.servers}': ${describeError(err)}; create it first (Runnel does not create streams)`);
      });
    }
  } finally {
    await nc.close().catch(() => {});
  }
}

export const nats = defineConnector({
  name: "nats",
  description: "NATS: JetStream source acknowledged at checkpoints (exactly-once), Core subject source (at-most-once), subject sink (at-least-once through JetStream)",
  options: natsOptions,
  needsFormat: true,
  validate,
  preflight,
  metadata: {
    subject: { type: t.string(), description: "The subject the message was published to" },
    sequence: { type: t.bigint(), description: "The message's stream sequence (JetStream; NULL for Core)" },
    timestamp: { type: t.timestamp(), description: "When the stream stored the message (JetStream) or when it arrived (Core)" },
  },
  source: {
    create: async (ctx) => {
      const c = ctx as SourceContext<NatsOptions>;
      const { CoreSubjectReader, JetStreamReader } = await importFor(PLUGIN, () => import("./source.ts"));
      return c.options.stream ? JetStreamReader.create(c) : CoreSubjectReader.create(c);
    },
  },
  sink: {
    create: async (ctx) => {
      const { NatsSinkWriter } = await importFor(PLUGIN, () => import("./sink.ts"));
      return NatsSinkWriter.create(ctx as SinkContext<NatsOptions>);
    },
  },
});

export default definePlugin({ name: "connector-nats", version: "0.1.0", connectors: [nats] });
