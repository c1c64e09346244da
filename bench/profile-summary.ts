/**
 * Summarises a CPU profile (Chrome DevTools .cpuprofile, as `bun --cpu-prof`
 * and `bench:kafka --profile` write): self time by area of the code and the
 * hottest functions, so a benchmark's note can say where the time goes.
 *   bun bench/profile-summary.ts file.cpuprofile [--top 30] [--inclusive fnA,fnB]
 * --inclusive adds the total time (self and callees) of the named functions.
 */
import { readFileSync } from "node:fs";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith("--"));
if (!file) throw new Error("usage: bun bench/profile-summary.ts file.cpuprofile [--top N]");
const topAt = args.indexOf("--top");
const top = topAt >= 0 ? Number(args[topAt + 1]) : 30;
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;

const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
// timeDeltas[i] is the time before sample i; attribute it to that sample's node.
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i]!;
  self.set(id, (self.get(id) ?? 0) + Math.max(0, profile.timeDeltas[i] ?? 0));
}
const total = [...self.values()].reduce((a, b) => a + b, 0);

/** The area a frame belongs to, by its file. */
function area(url: string, name: string): string {
  if (name === "(idle)" || name === "(program)" || name === "(garbage collector)") return name;
  if (url.includes("/kafkajs/")) return "kafkajs";
  if (url.includes("/plugins/connector-kafka/kafkajs-fixes")) return "connector-kafka (kafkajs replacements)";
  const m = /\/(plugins\/[^/]+|core\/[^/]+|node_modules\/[^/]+)\//.exec(url);
  if (m) return m[1]!;
  if (!url) return "native / runtime";
  return url.replace(/^.*\//, "");
}

const areas = new Map<string, number>();
const fns = new Map<string, number>();
for (const [id, t] of self) {
  const n = byId.get(id)!;
  const { functionName, url, lineNumber } = n.callFrame;
  const a = area(url, functionName);
  areas.set(a, (areas.get(a) ?? 0) + t);
  const key = `${functionName || "(anonymous)"}  ${url.replace(/^.*\/(plugins|core|node_modules)\//, "$1/")}:${lineNumber + 1}`;
  fns.set(key, (fns.get(key) ?? 0) + t);
}
// Native frames (JSON.parse, Buffer.concat...) have no file: name their nearest caller with one.
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const nativeByCaller = new Map<string, number>();
for (const [id, t] of self) {
  const n = byId.get(id)!;
  if (n.callFrame.url || n.callFrame.functionName.startsWith("(")) continue;
  let p = parent.get(id);
  while (p !== undefined && !byId.get(p)!.callFrame.url) p = parent.get(p);
  const caller = p === undefined ? "?" : byId.get(p)!.callFrame;
  const where = typeof caller === "string" ? caller : `${caller.functionName || "(anonymous)"} ${caller.url.replace(/^.*\/(plugins|core|node_modules)\//, "$1/")}:${caller.lineNumber + 1}`;
  const key = `${n.callFrame.functionName || "(anonymous)"} ← ${where}`;
  nativeByCaller.set(key, (nativeByCaller.get(key) ?? 0) + t);
}
const pct = (t: number) => `${((100 * t) / total).toFixed(1).padStart(5)}%`;
console.log(`${file}: ${(total / 1e6).toFixed(2)} s sampled`);
console.log("\nself time by area:");
for (const [a, t] of [...areas].sort((x, y) => y[1] - x[1])) console.log(`${pct(t)}  ${a}`);
console.log(`\nhottest ${top} functions (self time):`);
for (const [f, t] of [...fns].sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(`${pct(t)}  ${f}`);
console.log(`\nnative functions by nearest caller with a file (self time):`);
for (const [f, t] of [...nativeByCaller].sort((x, y) => y[1] - x[1]).slice(0, top)) console.log(`${pct(t)}  ${f}`);

const incAt = args.indexOf("--inclusive");
if (incAt >= 0) {
  const names = new Set(args[incAt + 1]!.split(","));
  // A node's inclusive time, counted once per sample even when the function recurses.
  const selfOf = (id: number) => self.get(id) ?? 0;
  const inclusive = new Map<string, number>();
  const walk = (id: number, open: Set<string>) => {
    const n = byId.get(id)!;
    const name = n.callFrame.functionName;
    const entering = names.has(name) && !open.has(name);
    if (entering) open.add(name);
    for (const o of open) inclusive.set(o, (inclusive.get(o) ?? 0) + selfOf(id));
    for (const c of n.children ?? []) walk(c, open);
    if (entering) open.delete(name);
  };
  const children = new Set(profile.nodes.flatMap((n) => n.children ?? []));
  for (const n of profile.nodes) if (!children.has(n.id)) walk(n.id, new Set());
  console.log("\ninclusive time:");
  for (const name of names) console.log(`${pct(inclusive.get(name) ?? 0)}  ${name}`);
}
