/**
 * The MQTT sink: publishes each row to `topic` with `qos` (and `sink.retain`).
 * At each checkpoint barrier every QoS 1/2 publish must have been acknowledged
 * by the broker (PUBACK / PUBCOMP), so QoS 1 and 2 are at-least-once (a
 * restore publishes again what was sent after the checkpoint; MQTT has no
 * transactions); QoS 0 is at-most-once.
 */
import type { MqttClient } from "mqtt";
import type { Batch, SinkContext, SinkWriter } from "../../core/plugin-api/index.ts";
import { clientPrefix, connectMqtt, describeError } from "./client.ts";
import { qosLevel, type MqttOptions } from "./options.ts";

/** Publishes awaiting their acknowledgement, at most, per subtask. */
const MAX_IN_FLIGHT = 2_000;

export class MqttSinkWriter implements SinkWriter {
  private inFlight = 0;
  private drained: (() => void)[] = [];
  private error: Error | null = null;
  private readonly qos: 0 | 1 | 2;

  private constructor(
    private readonly ctx: SinkContext<MqttOptions>,
    private readonly client: MqttClient,
  ) {
    this.qos = qosLevel(ctx.options.qos);
    client.on("error", (err) => {
      this.ctx.metrics.add("errors_total");
      this.ctx.log.warn(`mqtt sink '${ctx.tableName}': ${describeError(err)}`);
    });
    client.on("offline", () => this.ctx.metrics.add("disconnects_total"));
  }

  static async create(ctx: SinkContext<MqttOptions>): Promise<MqttSinkWriter> {
    if (!ctx.format) throw new Error(`mqtt sink '${ctx.tableName}' needs a format (e.g. format = 'json')`);
    const clientId = `${clientPrefix(ctx.options, ctx.tableName)}-sink-${ctx.subtaskIndex}`;
    // A clean session: nothing to resume; what was not acknowledged is published again from the checkpoint.
    const { client } = await connectMqtt(ctx.options, clientId, { clean: true });
    return new MqttSinkWriter(ctx, client);
  }

  async write(batch: Batch): Promise<void> {
    if (this.error) throw this.error;
    const o = this.ctx.options;
    const format = this.ctx.format!;
    const { rows, ops, before } = batch;
    let bytes = 0;
    for (let i = 0; i < rows.length; i++) {
      const encoded = format.serialize(rows[i]!, ops?.[i], before?.[i]);
      const payload = typeof encoded === "string" ? encoded : Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength);
      bytes += typeof encoded === "string" ? encoded.length : encoded.byteLength;
      while (this.inFlight >= MAX_IN_FLIGHT) await new Promise<void>((resolve) => this.drained.push(resolve));
      if (this.error) throw this.error;
      this.inFlight++;
      this.client.publish(o.topic, payload, { qos: this.qos, retain: o["sink.retain"] }, (err) => {
        this.inFlight--;
        if (err) {
          this.ctx.metrics.add("errors_total");
          this.error ??= new Error(`mqtt sink '${this.ctx.tableName}': publishing to '${o.topic}' (option 'topic') failed: ${describeError(err)}`);
        }
        if (this.inFlight < MAX_IN_FLIGHT || this.inFlight === 0) {
          const waiters = this.drained;
          this.drained = [];
          for (const w of waiters) w();
        }
      });
    }
    this.ctx.metrics.add("messages_sent_total", rows.length);
    this.ctx.metrics.add("bytes_sent_total", bytes);
  }

  /** At the barrier: every publish acknowledged (QoS 1/2) or written (QoS 0). */
  async prepareCommit(): Promise<null> {
    while (this.inFlight > 0) await new Promise<void>((resolve) => this.drained.push(resolve));
    if (this.error) throw this.error;
    return null;
  }

  async close(): Promise<void> {
    await this.client.endAsync().catch(() => {});
  }
}
