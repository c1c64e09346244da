/**
 * The network exchange between worker processes: messages arrive in order with
 * their watermarks and barriers, a sender waits for credit (backpressure
 * crosses processes; nothing queues without bound), and a connection without
 * the job's secret, or from another run of the job, injects nothing.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { encodeFrame, FrameKind } from "../../../core/cluster/frames.ts";
import { Exchange } from "../../../core/cluster/exchange.ts";
import { Channel } from "../../../core/runtime/channel.ts";
import type { Message } from "../../../core/runtime/messages.ts";

const open: Exchange[] = [];
afterEach(() => {
  for (const e of open.splice(0)) e.close();
});

function pair(secret = "job-secret", epoch = 7) {
  const receiver = new Exchange({ secret, epoch, workerIndex: 1 });
  const sender = new Exchange({ secret, epoch, workerIndex: 0 });
  open.push(receiver, sender);
  const address = receiver.listen("127.0.0.1:0");
  return { receiver, sender, address };
}

async function drain(ch: Channel, n: number): Promise<Message[]> {
  const out: Message[] = [];
  while (out.length < n) {
    const m = ch.take();
    if (m) out.push(m);
    else await Bun.sleep(1);
  }
  return out;
}

describe("network exchange", () => {
  test("batches, watermarks, barriers and end arrive in order, values intact", async () => {
    const { receiver, sender, address } = pair();
    const inbox = new Channel(8);
    receiver.registerInbound(3, 0, inbox);
    const out = sender.outbound(1, address, 3, 8);
    const sent: Message[] = [];
    for (let i = 0; i < 50; i++) {
      sent.push({ kind: "batch", batch: { rows: [[i, `r${i}`, { start: i, end: i + 1 }, new Uint8Array([i, 255]), null, [1.5, -2.25, 2 ** 60]]], times: [i * 1000] } });
      if (i % 10 === 9) sent.push({ kind: "watermark", time: i * 1000 });
    }
    sent.push({ kind: "barrier", checkpointId: 4, then: "end" }, { kind: "end", stopped: false });
    const sending = (async () => {
      for (const m of sent) await out.send(m);
    })();
    const got = await drain(inbox, sent.length);
    await sending;
    expect(got).toEqual(sent);
  });

  test("a sender waits for credit: the receiver holds at most its channel's capacity", async () => {
    const { receiver, sender, address } = pair();
    const inbox = new Channel(4);
    receiver.registerInbound(1, 0, inbox);
    const out = sender.outbound(1, address, 1, 4);
    let sent = 0;
    const sending = (async () => {
      for (let i = 0; i < 10; i++) {
        await out.send({ kind: "watermark", time: i });
        sent++;
      }
    })();
    await Bun.sleep(200);
    expect(sent).toBe(4);
    expect(inbox.size).toBe(4);
    // Each take returns one credit.
    await drain(inbox, 2);
    await Bun.sleep(100);
    expect(sent).toBe(6);
    await drain(inbox, 8);
    await sending;
    expect(sent).toBe(10);
  });

  test("a connection without the job's secret, or of another run, injects nothing", async () => {
    const { receiver, address } = pair();
    const inbox = new Channel(8);
    receiver.registerInbound(1, 0, inbox);
    const failures: string[] = [];
    receiver.failure = (err) => failures.push(err.message);
    const [host, port] = address.split(":");
    for (const hello of [{ secret: "wrong", epoch: 7, from: 0 }, { secret: "job-secret", epoch: 6, from: 0 }, null]) {
      let closed = false;
      const socket = await Bun.connect({ hostname: host!, port: Number(port), socket: { data() {}, close: () => void (closed = true) } });
      if (hello) socket.write(encodeFrame(FrameKind.Hello, 0, hello));
      socket.write(encodeFrame(FrameKind.Data, 1, { kind: "watermark", time: 99 }));
      await Bun.sleep(100);
      if (hello) expect(closed).toBe(true);
      socket.end();
    }
    expect(inbox.size).toBe(0);
    expect(failures).toEqual([]);
  });
});
