/**
 * The network exchange between a job's worker processes. Each worker listens;
 * a worker with subtasks feeding another worker's connects to it once and
 * multiplexes every such channel over that connection. Flow control is by
 * credit, as in Flink's network stack: a sender may only send what the
 * receiver's channel has room for, so backpressure crosses processes the way it
 * crosses local channels, and nothing queues without bound. Watermarks,
 * barriers and end markers travel in band, in order with the batches.
 *
 * Connections are authenticated by the job's secret and carry the job's epoch:
 * a process of an earlier run of the job cannot inject anything.
 */
import { timingSafeEqual } from "node:crypto";
import type { Socket, TCPSocketListener, UnixSocketListener } from "bun";
import type { Channel } from "../runtime/channel.ts";
import type { Message } from "../runtime/messages.ts";
import { encodeFrame, encodeMessageFrame, FrameKind, FrameReader, FrameWriter } from "./frames.ts";
import { clientTls, serverTls, type ClusterTls } from "./tls.ts";

export interface ExchangeIdentity {
  /** Shared by the job's processes; a connection that does not present it is dropped. */
  secret: string;
  /** The run of the job; peers of another run are refused. */
  epoch: number;
  workerIndex: number;
}

interface Hello {
  secret: string;
  epoch: number;
  from: number;
}

type Conn = { reader: FrameReader; writer: FrameWriter; peer: number | null };

const sameSecret = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/** The sending end of a channel to a subtask in another worker. */
export class RemoteChannel {
  private credits: number;
  private waiter: (() => void) | null = null;
  /** Told each wait for credit, so the producing subtask's operators can report backpressure. */
  onBlocked: ((ms: number) => void) | null = null;

  constructor(
    private readonly peer: PeerLink,
    readonly id: number,
    capacity: number,
  ) {
    this.credits = capacity;
  }

  grant(n: number): void {
    this.credits += n;
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  async send(msg: Message): Promise<void> {
    while (this.credits <= 0) {
      const start = performance.now();
      await new Promise<void>((resolve) => (this.waiter = resolve));
      this.onBlocked?.(performance.now() - start);
    }
    this.credits--;
    await this.peer.send(this.id, msg);
  }
}

/** One outgoing connection to a peer worker, shared by every channel to it. */
class PeerLink {
  readonly channels = new Map<number, RemoteChannel>();
  private writer: FrameWriter | null = null;
  private readonly ready: Promise<void>;

  constructor(
    address: string,
    identity: ExchangeIdentity,
    onFailure: (err: Error) => void,
    tls: ClusterTls | null,
  ) {
    const reader = new FrameReader((kind, channel, body) => {
      if (kind === FrameKind.Credit) this.channels.get(channel)?.grant(body as number);
    });
    const [host, port] = splitAddress(address);
    const handlers = {
      data: (_s: Socket<unknown>, chunk: Uint8Array) => {
        try {
          reader.push(chunk);
        } catch (err) {
          onFailure(err as Error);
        }
      },
      drain: () => this.writer?.drain(),
      close: () => {
        if (this.writer && !this.writer.closed) onFailure(new Error(`the connection to the worker at ${address} closed`));
        this.writer?.close();
      },
      error: (_s: Socket<unknown>, err: Error) => onFailure(new Error(`the connection to the worker at ${address} failed: ${err.message}`)),
    };
    this.ready = (async () => {
      const socket =
        port === null
          ? await Bun.connect({ unix: host, socket: handlers })
          : await Bun.connect({ hostname: host, port, socket: handlers, ...(tls ? { tls: clientTls(tls) } : {}) });
      this.writer = new FrameWriter(socket);
      this.writer.write(encodeFrame(FrameKind.Hello, 0, { secret: identity.secret, epoch: identity.epoch, from: identity.workerIndex } satisfies Hello));
    })();
    this.ready.catch((err) => onFailure(new Error(`cannot reach the worker at ${address}: ${(err as Error).message}`)));
  }

  async send(channel: number, msg: Message): Promise<void> {
    if (!this.writer) await this.ready;
    this.writer!.write(encodeMessageFrame(channel, msg));
    // Credits bound what the receiver holds; this bounds what waits in our own socket buffer.
    if (this.writer!.pending > 4 * 1024 * 1024) await this.writer!.flushed();
  }

  close(): void {
    this.writer?.close();
  }
}

export class Exchange {
  private server: TCPSocketListener<Conn> | UnixSocketListener<Conn> | null = null;
  private readonly inbound = new Map<number, { channel: Channel; from: number }>();
  private readonly peers = new Map<number, PeerLink>();
  private readonly connections = new Map<number, Conn & { socket: Socket<Conn> }>();
  /** Credits owed to senders, sent once per tick rather than once per message. */
  private readonly owed = new Map<number, number>();
  private flushScheduled = false;
  failure: ((err: Error) => void) | null = null;

  /** `tls`: encrypt and mutually authenticate TCP connections (RUNNEL_CLUSTER_TLS_*), none when null. */
  constructor(
    readonly identity: ExchangeIdentity,
    private readonly tls: ClusterTls | null = null,
  ) {}

  private fail(err: Error): void {
    this.failure?.(err);
  }

  /** Starts listening: `host:port` (port 0 picks one) or a Unix socket path; returns the address peers use. */
  listen(address: string): string {
    const [host, port] = splitAddress(address);
    const socket = {
      open: (s: Socket<Conn>) => {
        s.data = { reader: new FrameReader((kind, channel, body) => this.onFrame(s, kind, channel, body)), writer: new FrameWriter(s as Socket<unknown>), peer: null };
      },
      data: (s: Socket<Conn>, chunk: Uint8Array) => {
        try {
          s.data.reader.push(chunk);
        } catch (err) {
          // Reported before the connection ends: ending it reports the peer as disconnected, and only the first failure counts.
          this.fail(err as Error);
          s.end();
        }
      },
      drain: (s: Socket<Conn>) => s.data.writer.drain(),
      close: (s: Socket<Conn>) => {
        s.data?.writer.close();
        const peer = s.data?.peer;
        if (peer !== null && peer !== undefined && this.connections.get(peer)?.socket === s) {
          this.connections.delete(peer);
          if (!this.closed) this.fail(new Error(`worker ${peer} disconnected`));
        }
      },
    };
    this.server =
      port === null
        ? Bun.listen<Conn>({ unix: host, socket })
        : Bun.listen<Conn>({ hostname: host, port, socket, ...(this.tls ? { tls: serverTls(this.tls) } : {}) });
    return port === null ? host : `${host}:${(this.server as TCPSocketListener<Conn>).port}`;
  }

  private onFrame(s: Socket<Conn>, kind: FrameKind, channel: number, body: unknown): void {
    if (s.data.peer === null) {
      const hello = body as Hello;
      // Anything but a hello from this run of the job, with its secret, is dropped.
      if (kind !== FrameKind.Hello || typeof hello?.secret !== "string" || !sameSecret(hello.secret, this.identity.secret) || hello.epoch !== this.identity.epoch) {
        s.end();
        return;
      }
      s.data.peer = hello.from;
      this.connections.set(hello.from, { ...s.data, socket: s });
      return;
    }
    if (kind !== FrameKind.Data) return;
    const target = this.inbound.get(channel);
    if (!target) {
      // This worker is still opening its subtasks: keep what arrives (credits bound it) until the channel exists.
      const early = this.early.get(channel) ?? { from: s.data.peer, messages: [] };
      early.messages.push(body as Message);
      this.early.set(channel, early);
      return;
    }
    if (target.from !== s.data.peer) {
      this.fail(new Error(`worker ${s.data.peer} sent on channel ${channel}, which it does not feed`));
      return;
    }
    target.channel.deliver(body as Message);
  }

  /** Messages that arrived before their channel was registered. */
  private readonly early = new Map<number, { from: number; messages: Message[] }>();

  /** A local channel fed by a subtask in worker `from`; its consumer's takes return credit to the sender. */
  registerInbound(id: number, from: number, channel: Channel): void {
    this.inbound.set(id, { channel, from });
    channel.onTake = () => this.owe(id);
    const early = this.early.get(id);
    if (early) {
      this.early.delete(id);
      if (early.from !== from) this.fail(new Error(`worker ${early.from} sent on channel ${id}, which it does not feed`));
      else for (const m of early.messages) channel.deliver(m);
    }
  }

  private owe(id: number): void {
    this.owed.set(id, (this.owed.get(id) ?? 0) + 1);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      for (const [channel, n] of this.owed) {
        const from = this.inbound.get(channel)!.from;
        const conn = this.connections.get(from);
        if (!conn) continue; // the sender is gone; the job is failing over
        conn.writer.write(encodeFrame(FrameKind.Credit, channel, n));
      }
      this.owed.clear();
    });
  }

  /** The sending end of channel `id` to worker `peer` at `address`. */
  outbound(peer: number, address: string, id: number, capacity: number): RemoteChannel {
    let link = this.peers.get(peer);
    if (!link) this.peers.set(peer, (link = new PeerLink(address, this.identity, (err) => this.fail(err), this.tls)));
    const ch = new RemoteChannel(link, id, capacity);
    link.channels.set(id, ch);
    return ch;
  }

  private closed = false;

  close(): void {
    this.closed = true;
    for (const p of this.peers.values()) p.close();
    this.server?.stop(true);
  }
}

/** `host:port` → [host, port]; a path (Unix socket) → [path, null]. */
export function splitAddress(address: string): [string, number | null] {
  const m = /^(.*):(\d+)$/.exec(address);
  if (!m || address.startsWith("/")) return [address, null];
  return [m[1]!.replace(/^\[|\]$/g, ""), Number(m[2])];
}
