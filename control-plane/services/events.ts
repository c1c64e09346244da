/**
 * Events for subscribers: job state changes, metrics and preview output. Each
 * is delivered to this process's listeners at once and sent through Postgres
 * NOTIFY so that every control plane on the same database can stream it.
 */
import type { Database } from "../db/connect.ts";

const CHANNEL = "runnel_events";
// NOTIFY payloads must stay under 8000 bytes.
const MAX_PAYLOAD = 7000;

type Listener = (payload: any) => void;

export class EventBus {
  private readonly listeners = new Map<string, Set<Listener>>();
  private unlisten: (() => Promise<void>) | null = null;

  constructor(
    private readonly database: Database,
    private readonly origin: string,
  ) {}

  async start(): Promise<void> {
    this.unlisten = await this.database.listen(CHANNEL, (raw) => {
      try {
        const { origin, topic, payload } = JSON.parse(raw);
        if (origin !== this.origin) this.emitLocal(topic, payload);
      } catch {
        // Not ours; ignore.
      }
    });
  }

  async stop(): Promise<void> {
    await this.unlisten?.();
  }

  subscribe(topic: string, listener: Listener): () => void {
    let set = this.listeners.get(topic);
    if (!set) this.listeners.set(topic, (set = new Set()));
    set.add(listener);
    return () => {
      set!.delete(listener);
      if (set!.size === 0) this.listeners.delete(topic);
    };
  }

  private readonly prefixListeners: { prefix: string; listener: (topic: string, payload: any) => void }[] = [];

  /** Every event whose topic starts with `prefix`, from this process or another. */
  subscribePrefix(prefix: string, listener: (topic: string, payload: any) => void): void {
    this.prefixListeners.push({ prefix, listener });
  }

  private emitLocal(topic: string, payload: unknown): void {
    for (const p of this.prefixListeners) if (topic.startsWith(p.prefix)) p.listener(topic, payload);
    for (const l of this.listeners.get(topic) ?? []) {
      try {
        l(payload);
      } catch (err) {
        console.error(`event listener for ${topic} failed:`, err);
      }
    }
  }

  /** Delivers locally now and to other control planes through NOTIFY. */
  async publish(topic: string, payload: unknown): Promise<void> {
    this.emitLocal(topic, payload);
    const text = JSON.stringify({ origin: this.origin, topic, payload });
    if (text.length <= MAX_PAYLOAD) {
      await this.database.notify(CHANNEL, text).catch((err) => console.error(`NOTIFY failed: ${err.message}`));
    } else if (Array.isArray((payload as any)?.lines)) {
      // Output lines: split across several notifications.
      const { lines, ...rest } = payload as { lines: string[] };
      let chunk: string[] = [];
      let size = 0;
      const flush = async () => {
        if (chunk.length === 0) return;
        await this.database.notify(CHANNEL, JSON.stringify({ origin: this.origin, topic, payload: { ...rest, lines: chunk } })).catch(() => {});
        chunk = [];
        size = 0;
      };
      for (const line of lines) {
        if (size + line.length > MAX_PAYLOAD - 500) await flush();
        chunk.push(line.length > MAX_PAYLOAD - 500 ? line.slice(0, MAX_PAYLOAD - 600) + "…" : line);
        size += line.length + 4;
      }
      await flush();
    } else {
      // Too big to fan out (e.g. metrics of a huge job): others read it from the database instead.
      await this.database.notify(CHANNEL, JSON.stringify({ origin: this.origin, topic, payload: { truncated: true } })).catch(() => {});
    }
  }
}

export const topics = {
  pipelineJobs: (pipelineId: string) => `jobs:${pipelineId}`,
  jobMetrics: (jobId: string) => `metrics:${jobId}`,
  jobCheckpoints: (jobId: string) => `checkpoints:${jobId}`,
  pipelineOutput: (pipelineId: string) => `output:${pipelineId}`,
  pipelines: "pipelines",
};
