#!/usr/bin/env bun
/**
 * `bun run soak:kafka [kills] [--parallelism N] [--seed S]`: the exactly-once
 * crash scenario of crash.test.ts with as many kills as asked (default 200).
 * Needs the test broker (scripts/services.sh start kafka).
 */
import { closeKafkaKit } from "../../kit/kafka.ts";
import { runCrashScenario } from "./crash-driver.ts";

const argv = process.argv.slice(2);
const flag = (name: string, fallback: number) => {
  const i = argv.indexOf(name);
  if (i < 0) return fallback;
  const n = Number(argv[i + 1]);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`${name} needs a whole number ≥ 1`);
    process.exit(2);
  }
  argv.splice(i, 2);
  return n;
};
const parallelism = flag("--parallelism", 2);
const seed = flag("--seed", Date.now() % 100000);
const kills = argv[0] === undefined ? 200 : Number(argv[0]);
if (!Number.isInteger(kills) || kills < 1) {
  console.error("usage: bun run soak:kafka [kills] [--parallelism N] [--seed S]");
  process.exit(2);
}
const started = Date.now();
console.log(`soak: ${kills} kills, parallelism ${parallelism}, seed ${seed}`);
const report = await runCrashScenario({ kills, parallelism, seed, log: (l) => console.log(l) });
await closeKafkaKit();
console.log(
  `soak: ${report.kills} kills (${report.crashPointKills} at sink-before-commit), ${report.inputRecords} input records, ` +
    `${report.expectedOutput} expected outputs, ${((Date.now() - started) / 1000).toFixed(0)} s`,
);
if (report.problems.length > 0) {
  console.log(`FAILED:\n  ${report.problems.join("\n  ")}`);
  process.exit(1);
}
console.log("soak: every output exactly once, in order per key");
