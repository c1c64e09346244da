#!/usr/bin/env bun
/**
 * `bun run fuzz:sql [--seed N] [--cases N] [--rows N] [--depth N]`: the
 * differential SQL tester against DuckDB. Prints each finding with both
 * queries, then a summary; exits 1 when there are findings.
 */
import { runFuzz } from "./runner.ts";

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const inline = process.argv.find((a) => a.startsWith(`--${name}=`));
  const raw = inline ? inline.split("=")[1] : i >= 0 ? process.argv[i + 1] : undefined;
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name} must be a whole number, got '${raw}'`);
    process.exit(2);
  }
  return n;
}

const seed = flag("seed", Math.floor(Math.random() * 2 ** 31));
const cases = flag("cases", 500);
const started = performance.now();
const report = await runFuzz({ seed, cases, rows: flag("rows", 16), depth: flag("depth", 3), log: (l) => console.log(l) });
const seconds = ((performance.now() - started) / 1000).toFixed(1);

console.log(`\nseed ${report.seed}: ${report.cases} cases in ${seconds} s, ${report.agreed} agreed with DuckDB`);
for (const [why, n] of Object.entries(report.explained)) console.log(`  ${n} × documented difference: ${why}`);
for (const [why, n] of Object.entries(report.refused)) console.log(`  ${n} × refused by Runnel: ${why}`);
console.log(`  ${report.findings.length} finding(s)`);
console.log(`coverage: ${Object.keys(report.coverage).length} functions and operators`);
process.exit(report.findings.length > 0 ? 1 : 0);
