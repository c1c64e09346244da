/**
 * Proves the Java port (bench/flink/src/main/java/runnel/nexmark/Generator.java) makes exactly
 * Runnel's events: dumps the first N events of both generators for a few seeds and compares them
 * field by field. Needs the JVM, so it is a bench check rather than a suite test:
 *
 *   bun bench/flink/check-generator.ts [--events 100000]
 */
import { eventKind, getPools, KIND_AUCTION, KIND_PERSON, NexmarkGenerator } from "../../plugins/connector-nexmark/generator.ts";
import { javaCommand } from "./jvm.ts";

const BASE = 1_700_000_000_000_000;

function runnelLine(gen: NexmarkGenerator, n: number): string {
  const time = gen.time(n);
  const kind = eventKind(n);
  const event = kind === KIND_PERSON ? gen.person(n, time) : kind === KIND_AUCTION ? gen.auction(n, time) : gen.bid(n, time);
  return [kind, ...Object.values(event)].join("\t");
}

async function check(events: number, seed: number): Promise<number> {
  const proc = Bun.spawn(await javaCommand(["dump", String(events), String(seed), String(BASE)]), { stdout: "pipe", stderr: "inherit" });
  const java = (await new Response(proc.stdout).text()).split("\n");
  if ((await proc.exited) !== 0) throw new Error("the Java dump failed");
  const gen = new NexmarkGenerator(seed, BASE, 1);
  let fields = 0;
  for (let n = 0; n < events; n++) {
    const ours = runnelLine(gen, n).split("\t");
    const theirs = (java[n] ?? "").split("\t");
    for (let i = 0; i < Math.max(ours.length, theirs.length); i++) {
      if (ours[i] !== theirs[i]) {
        throw new Error(`seed ${seed}, event ${n}, field ${i}: Runnel ${JSON.stringify(ours[i])}, Java ${JSON.stringify(theirs[i])}`);
      }
      fields++;
    }
  }
  return fields;
}

/** The pools events draw from, whole: a rare price or channel could escape a short dump. */
async function checkPools(): Promise<void> {
  const proc = Bun.spawn(await javaCommand(["pools"]), { stdout: "pipe", stderr: "inherit" });
  const java = (await new Response(proc.stdout).text()).trimEnd().split("\n");
  if ((await proc.exited) !== 0) throw new Error("the Java pools dump failed");
  const p = getPools();
  const ours = [...Array.from(p.prices, String), ...p.channelUrls];
  if (java.length !== ours.length) throw new Error(`pools: Runnel has ${ours.length} entries, Java ${java.length}`);
  const at = ours.findIndex((v, i) => v !== java[i]);
  if (at >= 0) throw new Error(`pools entry ${at}: Runnel ${JSON.stringify(ours[at])}, Java ${JSON.stringify(java[at])}`);
  console.log(`pools: ${p.prices.length.toLocaleString("en")} prices and ${p.channelUrls.length.toLocaleString("en")} channel URLs equal`);
}

if (import.meta.main) {
  await checkPools();
  const at = process.argv.indexOf("--events");
  const events = at > 0 ? Number(process.argv[at + 1]) : 100_000;
  for (const seed of [0, 1, 42, 2 ** 40 + 7]) {
    const fields = await check(events, seed);
    console.log(`seed ${seed}: ${events.toLocaleString("en")} events, ${fields.toLocaleString("en")} fields equal`);
  }
}
