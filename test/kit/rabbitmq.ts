/**
 * The RabbitMQ broker the tests use, started by scripts/services/rabbitmq.sh
 * (RUNNEL_TEST_RABBITMQ_PORT, default 15673, guest/guest), and helpers to
 * declare queues, publish and read them back.
 */
import amqp, { type Channel, type ChannelModel } from "amqplib";

export const RABBITMQ_PORT = Number(process.env.RUNNEL_TEST_RABBITMQ_PORT ?? 15673);
export const RABBITMQ_OPTS = `host = '127.0.0.1', port = '${RABBITMQ_PORT}'`;

let conn: ChannelModel | null = null;
let channel: Channel | null = null;
const queues: string[] = [];

async function ch(): Promise<Channel> {
  conn ??= await amqp.connect({ hostname: "127.0.0.1", port: RABBITMQ_PORT, username: "guest", password: "guest" });
  channel ??= await conn.createConfirmChannel();
  return channel;
}

export async function declareQueue(prefix: string): Promise<string> {
  const name = `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 7)}`;
  await (await ch()).assertQueue(name, { durable: true });
  queues.push(name);
  return name;
}

export async function sendAll(queue: string, payloads: string[], properties: amqp.Options.Publish = {}): Promise<void> {
  const c = (await ch()) as amqp.ConfirmChannel;
  for (const p of payloads) c.sendToQueue(queue, Buffer.from(p), { persistent: true, ...properties });
  await c.waitForConfirms();
}

/** Takes every message in a queue (acknowledging them), as text. */
export async function drainQueue(queue: string): Promise<string[]> {
  const c = await ch();
  const out: string[] = [];
  for (;;) {
    const m = await c.get(queue, { noAck: true });
    if (m === false) return out;
    out.push(m.content.toString());
  }
}

export async function queueDepth(queue: string): Promise<{ messageCount: number; consumerCount: number }> {
  return (await ch()).checkQueue(queue);
}

export async function closeRabbitKit(): Promise<void> {
  if (!conn) return;
  const c = await ch();
  for (const q of queues.splice(0)) await c.deleteQueue(q).catch(() => {});
  await conn.close().catch(() => {});
  conn = null;
  channel = null;
}

export { startJob, waitUntil } from "./cli.ts";
