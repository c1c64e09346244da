/**
 * The MQTT source. Each subtask keeps a session (client id
 * `<client_prefix>-<subtask>`); a plain topic filter is read by subtask 0
 * only (every session would get every message), a shared subscription
 * (`$share/<group>/<filter>`) by every subtask, the broker spreading messages.
 *
 * QoS 1 and 2 sessions are persistent (clean start off, `source.session_expiry`)
 * and their acknowledgements are held: mqtt.js's outgoing PUBACK/PUBREC/PUBCOMP
 * packets are intercepted and sent only when the checkpoint holding the
 * messages completes, so the broker keeps (and redelivers after a crash) what
 * Runnel's state does not hold yet.
 * - QoS 1 is at-least-once: a crash after a checkpoint completed but before its
 *   PUBACKs reached the broker redelivers those messages, and MQTT cannot tell
 *   them from new ones (a PUBACK frees the packet id at once).
 * - QoS 2 is exactly-once into state: the checkpoint records the packet ids of
 *   messages in state whose flow is unfinished, and PUBCOMP (which frees an id
 *   for reuse) is sent only once a completed checkpoint no longer lists the id.
 *   So after a restore a redelivered PUBLISH whose id is listed is the same
 *   message, already counted: it is acknowledged and dropped.
 * - QoS 0 is at-most-once.
 * After a reconnect within a run, redeliveries of messages still held are
 * dropped for both QoS 1 and 2.
 */
import type { IPublishPacket, MqttClient, Packet } from "mqtt";
import { crashPoint, type SourceContext, type SourcePoll, type SourceReader, type SplitBatch } from "../../core/plugin-api/index.ts";
import { decodeMessages } from "../shared/decode.ts";
import { Inbox } from "../shared/inbox.ts";
import { clientPrefix, connectMqtt, describeError } from "./client.ts";
import { qosLevel, type MqttOptions } from "./options.ts";

const POLL_WAIT_MS = 100;
/** How long the broker may stay unreachable before the job fails (and restarts from its checkpoint). */
const OFFLINE_LIMIT_MS = 120_000;
/** The most QoS 1/2 messages the broker may have in flight to one session (MQTT 5's receive maximum). */
const RECEIVE_MAXIMUM = 65_535;

interface Received {
  session: Session;
  id: number;
  qos: number;
  topic: string;
  payload: Uint8Array;
  time: number;
}

type SendPacket = (packet: Packet, cb?: () => void) => void;

/** One MQTT session (a split) and the acknowledgements it holds. */
class Session {
  /** Ack packets mqtt.js produced, held until their message's checkpoint completes. */
  readonly pendingAcks = new Map<number, Packet>();
  /** Ids received whose PUBACK/PUBREC has not been sent. */
  readonly open = new Set<number>();
  /** Ids whose ack may go as soon as mqtt.js produces it (its checkpoint completed, or it is in restored state). */
  readonly ackNow = new Set<number>();
  epoch: number[] = [];
  sealed: number[][] = [];
  /** QoS 2: ids in state whose flow is unfinished; what the checkpoint records. */
  readonly inState: Set<number>;
  /** QoS 2: ids whose PUBREL arrived, since the last snapshot and per snapshot not completed. */
  released: number[] = [];
  sealedReleased: number[][] = [];
  readonly releasing = new Set<number>();
  readonly pendingComps = new Map<number, Packet>();
  readonly compNow = new Set<number>();
  send!: SendPacket;
  offlineSince: number | null = null;

  constructor(
    readonly split: string,
    readonly clientId: string,
    restored: unknown,
    public client: MqttClient | null = null,
  ) {
    this.inState = new Set(Array.isArray(restored) ? restored.map(Number) : []);
  }

  /** Sends the held packets of these ids; ids whose packet mqtt.js has not produced yet go out as soon as it does. */
  release(ids: number[], held: Map<number, Packet>, now: Set<number>): number {
    for (const id of ids) {
      const p = held.get(id);
      if (p) {
        held.delete(id);
        this.send(p);
      } else now.add(id);
    }
    return ids.length;
  }
}

export class MqttSourceReader implements SourceReader {
  private readonly inbox = new Inbox<Received>(RECEIVE_MAXIMUM * 2);
  private readonly sessions: Session[] = [];
  private readonly qos: 0 | 1 | 2;
  private closed = false;
  private closing: (() => void) | null = null;
  private timer: ReturnType<typeof setInterval> | null = null;

  private constructor(private readonly ctx: SourceContext<MqttOptions>) {
    this.qos = qosLevel(ctx.options.qos);
  }

  static async create(ctx: SourceContext<MqttOptions>): Promise<MqttSourceReader> {
    if (!ctx.format) throw new Error(`mqtt source '${ctx.tableName}' needs a format (e.g. format = 'json')`);
    const reader = new MqttSourceReader(ctx);
    const prefix = clientPrefix(ctx.options, ctx.tableName);
    const shared = ctx.options.topic.startsWith("$share/");
    const ids: number[] = [];
    if (shared || ctx.subtaskIndex === 0) ids.push(ctx.subtaskIndex);
    // Sessions of former subtasks (a restore with fewer subtasks) hold messages too: subtask j mod p takes them over.
    for (const key of Object.keys(ctx.restored)) {
      const m = new RegExp(`^mqtt/${escapeRegExp(prefix)}-(\\d+)$`).exec(key);
      const j = m ? Number(m[1]) : -1;
      if (j >= ctx.parallelism && j % ctx.parallelism === ctx.subtaskIndex && !ids.includes(j)) ids.push(j);
    }
    try {
      for (const j of ids) await reader.open(new Session(`mqtt/${prefix}-${j}`, `${prefix}-${j}`, ctx.restored[`mqtt/${prefix}-${j}`]));
    } catch (err) {
      await reader.close();
      throw err;
    }
    reader.timer = setInterval(() => reader.watch(), 1_000);
    return reader;
  }

  private async open(s: Session): Promise<void> {
    const o = this.ctx.options;
    const persistent = this.qos > 0;
    const options = {
      clean: !persistent,
      properties: {
        receiveMaximum: RECEIVE_MAXIMUM,
        ...(persistent ? { sessionExpiryInterval: Math.round(o["source.session_expiry"] / 1e6) } : {}),
        ...(o.max_packet_size ? { maximumPacketSize: o.max_packet_size } : {}),
      },
    };
    const { client, sessionPresent } = await connectMqtt(o, s.clientId, options, (c) => {
      this.intercept(s, c);
      c.on("packetreceive", (p) => this.onPacket(s, p));
    });
    s.client = client;
    if (persistent && !sessionPresent && s.inState.size > 0) {
      this.ctx.log.warn(`mqtt source '${this.ctx.tableName}': the broker no longer has session '${s.clientId}'; messages it held for the job are gone`);
    }
    client.on("offline", () => {
      s.offlineSince ??= Date.now();
      this.ctx.metrics.add("disconnects_total");
    });
    client.on("connect", (p) => {
      s.offlineSince = null;
      if (persistent && !p.sessionPresent && (s.open.size > 0 || s.inState.size > 0)) {
        this.ctx.metrics.add("sessions_lost_total");
        this.ctx.log.warn(`mqtt source '${this.ctx.tableName}': reconnected, but the broker had dropped session '${s.clientId}' (messages it held are gone)`);
      }
    });
    client.on("error", (err) => {
      this.ctx.metrics.add("errors_total");
      this.ctx.log.warn(`mqtt source '${this.ctx.tableName}' (${s.clientId}): ${describeError(err)}`);
    });
    // rh = 1: retained messages only for a new subscription, not again on every restart of a kept session.
    const granted = await client.subscribeAsync(o.topic, { qos: this.qos, rh: 1 });
    const refused = granted.find((g) => g.qos === 128 || (g.qos as number) > 2);
    if (refused) throw new Error(`mqtt source '${this.ctx.tableName}': the broker refused the subscription to '${o.topic}' (option 'topic'; reason code ${refused.qos})`);
    this.sessions.push(s);
  }

  /** Holds mqtt.js's acknowledgements until the checkpoint holding their messages completes. */
  private intercept(s: Session, client: MqttClient): void {
    const c = client as unknown as { _sendPacket: (packet: Packet, cb?: () => void, ...rest: unknown[]) => void };
    const original = c._sendPacket.bind(client);
    s.send = (packet, cb) => original(packet, cb);
    c._sendPacket = (packet: Packet, cb?: () => void, ...rest: unknown[]) => {
      if (packet.cmd === "puback" || packet.cmd === "pubrec") {
        const id = packet.messageId!;
        if (s.ackNow.delete(id)) return original(packet, cb, ...rest);
        s.pendingAcks.set(id, packet);
        cb?.();
        return;
      }
      if (packet.cmd === "pubcomp") {
        const id = packet.messageId!;
        if (s.compNow.delete(id) || !s.releasing.has(id)) return original(packet, cb, ...rest);
        s.pendingComps.set(id, packet);
        cb?.();
        return;
      }
      return original(packet, cb, ...rest);
    };
  }

  private onPacket(s: Session, p: Packet): void {
    if (p.cmd === "publish") {
      const pub = p as IPublishPacket;
      const payload = typeof pub.payload === "string" ? new TextEncoder().encode(pub.payload) : pub.payload;
      this.ctx.metrics.add("messages_received_total");
      this.ctx.metrics.add("bytes_received_total", payload.byteLength);
      if (pub.qos === 0) {
        this.inbox.push({ session: s, id: 0, qos: 0, topic: pub.topic, payload, time: Date.now() * 1000 });
        return;
      }
      const id = pub.messageId!;
      if (s.open.has(id)) {
        // Redelivered after a reconnect while still held here: the same message.
        this.ctx.metrics.add("duplicates_dropped_total");
        return;
      }
      if (pub.qos === 2 && s.inState.has(id)) {
        // Already in (restored or completed) state: acknowledge at once, do not count it again.
        this.ctx.metrics.add("duplicates_dropped_total");
        s.ackNow.add(id);
        return;
      }
      s.open.add(id);
      this.inbox.push({ session: s, id, qos: pub.qos, topic: pub.topic, payload, time: Date.now() * 1000 });
    } else if (p.cmd === "pubrel") {
      const id = p.messageId!;
      if (s.inState.has(id) && !s.releasing.has(id)) {
        s.released.push(id);
        s.releasing.add(id);
      }
    }
  }

  splits(): string[] {
    return this.sessions.map((s) => s.split);
  }

  async poll(maxRows: number): Promise<SourcePoll> {
    if (this.closed) return { batches: [] };
    const items = await this.inbox.take(maxRows, POLL_WAIT_MS);
    if (items.length === 0) return { batches: [] };
    const bySession = new Map<Session, Received[]>();
    for (const m of items) {
      if (m.qos > 0) {
        m.session.epoch.push(m.id);
        if (m.qos === 2) m.session.inState.add(m.id);
      }
      let list = bySession.get(m.session);
      if (!list) bySession.set(m.session, (list = []));
      list.push(m);
    }
    const batches: SplitBatch[] = [];
    for (const [session, list] of bySession) {
      const { rows, times } = await decodeMessages(this.ctx, list, {
        data: (m) => m.payload,
        time: (m) => m.time,
        where: (m) => `topic '${m.topic}'${m.id ? ` packet ${m.id}` : ""} (session ${session.clientId})`,
        metadata: (m, key) => (key === "topic" ? m.topic : key === "qos" ? m.qos : null),
      });
      if (rows.length > 0) batches.push({ split: session.split, rows, times });
    }
    return { batches };
  }

  snapshot(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const s of this.sessions) {
      if (this.qos === 0) continue;
      s.sealed.push(s.epoch);
      s.epoch = [];
      // Ids whose PUBREL came leave the recorded set now; their PUBCOMP waits for this checkpoint.
      for (const id of s.released) s.inState.delete(id);
      s.sealedReleased.push(s.released);
      s.released = [];
      out[s.split] = this.qos === 2 ? [...s.inState] : [];
    }
    return out;
  }

  onCheckpointComplete(_checkpointId: number): Promise<void> | void {
    if (this.qos === 0) return;
    // For crash tests: the N-th completion that has something to acknowledge.
    if (this.sessions.some((s) => s.sealed.some((e) => e.length > 0))) crashPoint("mqtt-source-before-ack");
    let acks = 0;
    for (const s of this.sessions) {
      for (const epoch of s.sealed) {
        for (const id of epoch) s.open.delete(id);
        acks += s.release(epoch, s.pendingAcks, s.ackNow);
      }
      s.sealed = [];
      for (const epoch of s.sealedReleased) {
        for (const id of epoch) s.releasing.delete(id);
        s.release(epoch, s.pendingComps, s.compNow);
      }
      s.sealedReleased = [];
    }
    this.ctx.metrics.add("acks_total", acks);
    if (this.closing) {
      const done = this.closing;
      this.closing = null;
      done();
    }
  }

  /** Fails the job when a broker stays unreachable; reports messages held for acknowledgement. */
  private watch(): void {
    let held = 0;
    for (const s of this.sessions) {
      held += s.open.size;
      if (s.offlineSince !== null && Date.now() - s.offlineSince > OFFLINE_LIMIT_MS) {
        this.inbox.fail(new Error(`mqtt source '${this.ctx.tableName}': the broker at '${this.ctx.options.url}' was unreachable for ${OFFLINE_LIMIT_MS / 1000} s; the job can be restarted from its last checkpoint once it is back`));
      }
    }
    this.ctx.metrics.set("unacked", held);
    this.ctx.metrics.set("queued", this.inbox.size);
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    // A stop's final checkpoint completes after its barrier closed the reader: wait (briefly) to acknowledge it.
    if (this.qos > 0 && this.sessions.some((s) => s.sealed.some((e) => e.length > 0))) {
      await new Promise<void>((resolve) => {
        this.closing = resolve;
        setTimeout(resolve, 10_000);
      });
    }
    this.closed = true;
    await Promise.all(this.sessions.map((s) => s.client?.endAsync().catch(() => {})));
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
