/**
 * The network exchange alone: two worker processes, one forward edge. The
 * sender makes batches of 100-byte rows (as MessagePack: an id, a 60-character
 * string, an amount, a flag, a time) and sends them through a RemoteChannel
 * with credit; the receiver takes them from its Channel through an InputGate,
 * as a subtask would, and counts rows. Prints the receiver's rows/s (wall) and
 * rows/s per core (rows ÷ its CPU seconds) as JSON. Used by bench/scale.ts.
 *
 *   bun bench/exchange-run.ts [ROWS] [BATCH_ROWS]
 */
import { Packr } from "msgpackr";
import { Exchange } from "../core/cluster/exchange.ts";
import { Channel, InputGate } from "../core/runtime/channel.ts";
import type { Message } from "../core/runtime/messages.ts";

const role = process.env.RUNNEL_BENCH_EXCHANGE_ROLE ?? "main";
const ROWS = Number(process.argv[2] ?? 20_000_000);
const BATCH = Number(process.argv[3] ?? 4096);
const CAPACITY = 16;
const identity = (workerIndex: number) => ({ secret: "bench", epoch: 1, workerIndex });
const row = (i: number) => [i, `user-${String(i % 100_000).padStart(8, "0")}-${"x".repeat(65)}`, (i * 7919) % 100_000, i % 3 === 0, 1_700_000_000_000_000 + i];

const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

if (role === "receiver") {
  const exchange = new Exchange(identity(1));
  const inbox = new Channel(CAPACITY);
  exchange.registerInbound(1, 0, inbox);
  console.log(exchange.listen("127.0.0.1:0"));
  const gate = new InputGate([inbox]);
  let rows = 0;
  let t0 = 0;
  let c0 = 0;
  for (;;) {
    const { msg } = await gate.receive();
    if (t0 === 0) [t0, c0] = [performance.now(), cpu()];
    if (msg.kind === "batch") rows += msg.batch.rows.length;
    else if (msg.kind === "end") break;
  }
  const wall = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ rows, wallSeconds: wall, cpuSeconds: cpu() - c0 }));
  process.exit(0);
} else if (role === "sender") {
  const exchange = new Exchange(identity(0));
  const out = exchange.outbound(1, process.env.RUNNEL_BENCH_EXCHANGE_PEER!, 1, CAPACITY);
  // Prepared batches, reused: the sender's cost of making rows is not what is measured.
  const batches: Message[] = Array.from({ length: 8 }, (_, b) => {
    const rows = Array.from({ length: BATCH }, (_, j) => row(b * BATCH + j));
    return { kind: "batch", batch: { rows, times: rows.map((r) => r[4] as number) } };
  });
  for (let sent = 0, b = 0; sent < ROWS; sent += BATCH, b++) await out.send(batches[b % batches.length]!);
  await out.send({ kind: "end", stopped: false });
  console.log(JSON.stringify({ senderCpuSeconds: cpu() }));
  // Let the last frames leave before the process goes.
  await Bun.sleep(500);
  process.exit(0);
} else {
  const bytes = new Packr({ useRecords: false, moreTypes: true }).pack(row(123_456)).byteLength;
  const receiver = Bun.spawn(["bun", import.meta.path, String(ROWS), String(BATCH)], { env: { ...process.env, RUNNEL_BENCH_EXCHANGE_ROLE: "receiver" }, stdout: "pipe", stderr: "inherit" });
  const reader = (receiver.stdout as ReadableStream<Uint8Array>).getReader();
  let text = "";
  while (!text.includes("\n")) text += new TextDecoder().decode((await reader.read()).value);
  const address = text.split("\n")[0]!;
  const sender = Bun.spawn(["bun", import.meta.path, String(ROWS), String(BATCH)], { env: { ...process.env, RUNNEL_BENCH_EXCHANGE_ROLE: "sender", RUNNEL_BENCH_EXCHANGE_PEER: address }, stdout: "pipe", stderr: "inherit" });
  const senderOut = new Response(sender.stdout).text();
  for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value);
  await Promise.all([receiver.exited, sender.exited]);
  const result = JSON.parse(text.trim().split("\n").pop()!);
  const { senderCpuSeconds } = JSON.parse((await senderOut).trim());
  console.log(JSON.stringify({ ...result, senderCpuSeconds, rowBytes: bytes, batchRows: BATCH, rowsPerSecond: result.rows / result.wallSeconds, rowsPerCoreSecond: result.rows / result.cpuSeconds }));
}
