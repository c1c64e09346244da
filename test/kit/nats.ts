/**
 * The NATS server the tests use: nats-server with JetStream, started by
 * scripts/services/nats.sh (RUNNEL_TEST_NATS, default 127.0.0.1:14222), and
 * helpers to make streams, publish, and read a stream back as a plain
 * consumer would.
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";

export const NATS_SERVERS = process.env.RUNNEL_TEST_NATS ?? "127.0.0.1:14222";
export const NATS_OPTS = `servers = '${NATS_SERVERS}'`;

let conn: NatsConnection | null = null;
const streams: string[] = [];

export async function natsConnection(): Promise<NatsConnection> {
  conn ??= await connect({ servers: NATS_SERVERS, name: "runnel-test" });
  return conn;
}

export async function manager(): Promise<JetStreamManager> {
  return jetstreamManager(await natsConnection());
}

export const uniqueName = (prefix: string) => `${prefix}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 7)}`;

/** A stream capturing `<name>.>`; returns its name (subjects are `<name>.<anything>`). */
export async function createStream(prefix: string, opts: { allowDuplicates?: boolean } = {}): Promise<string> {
  const name = uniqueName(prefix);
  await (await manager()).streams.add({ name, subjects: [`${name}.>`], ...(opts.allowDuplicates ? { duplicate_window: 0 } : {}) });
  streams.push(name);
  return name;
}

export async function publish(subject: string, payloads: string[]): Promise<void> {
  const js = jetstream(await natsConnection());
  await Promise.all(payloads.map((p) => js.publish(subject, p)));
}

/** Every message of a stream, in order, as text. */
export async function readStream(stream: string): Promise<{ subject: string; data: string; seq: number }[]> {
  const jsm = await manager();
  const info = await jsm.streams.info(stream);
  const total = info.state.messages;
  if (total === 0) return [];
  const name = uniqueName("reader");
  await jsm.consumers.add(stream, { name, ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.All, inactive_threshold: 60_000_000_000 });
  const c = await jetstream(await natsConnection()).consumers.get(stream, name);
  const out: { subject: string; data: string; seq: number }[] = [];
  while (out.length < total) {
    const batch = await c.fetch({ max_messages: Math.min(1000, total - out.length), expires: 2000 });
    let got = 0;
    for await (const m of batch) {
      out.push({ subject: m.subject, data: m.string(), seq: m.seq });
      got++;
    }
    if (got === 0) break;
  }
  await jsm.consumers.delete(stream, name).catch(() => {});
  return out;
}

export async function consumerInfo(stream: string, consumer: string) {
  return (await manager()).consumers.info(stream, consumer);
}

export async function closeNatsKit(): Promise<void> {
  if (!conn) return;
  const jsm = await jetstreamManager(conn);
  for (const s of streams.splice(0)) await jsm.streams.delete(s).catch(() => {});
  await conn.drain().catch(() => {});
  conn = null;
}

export { startJob, waitUntil, eventually } from "./cli.ts";
