/**
 * Reading back a Delta or Iceberg table written by Runnel with independent
 * readers (test/kit/read_table.py: delta-rs, pyiceberg and DuckDB's delta and
 * iceberg extensions), each compared row by row with a reference run (EXCEPT
 * ALL both ways, in DuckDB).
 */
import { expect } from "bun:test";
import { join } from "node:path";
import { exceptBothWays, REF } from "../plugins/connector-filesystem/readback.ts";
import { startCli } from "./cli.ts";
import { PYTHON } from "./s3.ts";

const SCRIPT = join(import.meta.dir, "read_table.py");
const BID_COLUMNS = "{time: 'BIGINT', auction: 'BIGINT', bidder: 'BIGINT', price: 'BIGINT', channel: 'VARCHAR', url: 'VARCHAR', extra: 'VARCHAR'}";

export type TableSummary = Record<string, number>;

/** Runs the readers; returns their summary (row counts per reader, files referenced) and the files they wrote. */
export function readTable(args: string[]): { summary: TableSummary; stderr: string } {
  const py = Bun.spawnSync([PYTHON, SCRIPT, ...args], { stderr: "pipe" });
  const stderr = py.stderr.toString();
  if (py.exitCode !== 0) throw new Error(`read_table.py ${args.join(" ")} failed (${py.exitCode}): ${stderr}`);
  return { summary: JSON.parse(py.stdout.toString().trim().split("\n").at(-1)!), stderr };
}

/** Every reader's rows equal the reference's bids, each once. */
export async function expectReadersEqualReference(prefix: string, readers: string[], reference: string, summary: TableSummary): Promise<number> {
  let rows = -1;
  for (const r of readers) {
    const got = await exceptBothWays(
      `(SELECT time, auction, bidder, price, channel, url, extra FROM read_json('${prefix}-${r}.jsonl', format = 'newline_delimited', columns = ${BID_COLUMNS}))`,
      REF(reference),
    );
    expect({ reader: r, ...got }).toEqual({ reader: r, missing: 0, extra: 0, rows: got.rows });
    expect(summary[`${r}_rows`]).toBe(got.rows);
    if (rows >= 0) expect(got.rows).toBe(rows);
    rows = got.rows;
  }
  expect(summary.files).toBe(summary.distinct_files);
  return rows;
}

/** The Iceberg REST catalog scripts/services/iceberg-rest.sh runs (pyiceberg's SQL catalog behind REST). */
export const ICEBERG_REST = process.env.RUNNEL_TEST_ICEBERG ?? "http://127.0.0.1:18181";

/** Runs a pipeline file once through the CLI; with `crashAt` it must die there (kill -9 at that crash point). */
export async function runPipeline(sqlFile: string, stateDir: string, crashAt: string | null, parallelism = 1): Promise<void> {
  const env: Record<string, string> = crashAt ? { RUNNEL_CRASH_AT: crashAt } : {};
  const args = ["run", sqlFile, "--state-dir", stateDir, "--checkpoint-interval", "200ms", "--parallelism", String(parallelism), "--quiet"];
  const proc = startCli(args, undefined, env);
  const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  if (crashAt) {
    expect({ crashAt, signal: proc.signalCode, stderr: stderr.includes("rror") ? stderr : "" }).toEqual({ crashAt, signal: "SIGKILL", stderr: "" });
  } else {
    expect(stderr).not.toContain("rror");
    expect(code).toBe(0);
  }
}
