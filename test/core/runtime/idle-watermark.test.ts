/**
 * Idle partitions: a source with two partitions, one of which goes silent.
 * With idleness (idle_micros) the silent partition stops holding the watermark
 * back and windows keep closing; with idleness disabled they stall.
 */
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { Job } from "../../../core/dataflow/job.ts";
import { defineConnector, definePlugin, type Row, type SinkWriter } from "../../../core/plugin-api/index.ts";
import { PluginRegistry } from "../../../core/registry/registry.ts";
import { planSql } from "../../../core/sql/index.ts";
import { tempDir } from "../../kit/cli.ts";

// These tests run real processes; each file sets its own limit so it also runs alone.
setDefaultTimeout(180_000);

const START = Date.UTC(2024, 0, 1) * 1000;
const STEP = 100_000; // 100 ms of event time per record

/** Partition p0 streams forever; p1 sends 20 records, then nothing. */
const twoPartitions = defineConnector({
  name: "two_partitions",
  description: "test source: partition p0 streams forever, p1 falls silent after 20 records",
  options: {},
  source: {
    create(ctx) {
      const next: Record<string, number> = { p0: 0, p1: 0, ...(ctx.restored as Record<string, number>) };
      const owned = ["p0", "p1"].filter((_, i) => i % ctx.parallelism === ctx.subtaskIndex);
      return {
        splits: () => owned,
        async poll() {
          await Bun.sleep(10);
          const batches = [];
          for (const split of owned) {
            const limit = split === "p1" ? 20 : Infinity;
            const rows: Row[] = [];
            while (rows.length < 5 && next[split]! < limit) {
              rows.push([split, START + next[split]! * STEP]);
              next[split]!++;
            }
            if (rows.length) batches.push({ split, rows });
          }
          return { batches };
        },
        snapshot: () => ({ ...next }),
      };
    },
  },
});

async function windowsClosed(idleMicros: string, parallelism: number): Promise<number[]> {
  const registry = new PluginRegistry();
  registry.register(definePlugin({ name: "test-two-partitions", connectors: [twoPartitions] }));
  const pipeline = planSql(
    `CREATE TABLE src (part TEXT, ts TIMESTAMP, WATERMARK FOR ts) WITH (connector = 'two_partitions', idle_micros = '${idleMicros}');
     SELECT tumble(INTERVAL '1' SECOND) AS window, count(*) AS n FROM src GROUP BY window;`,
    registry,
  );
  const starts: number[] = [];
  const preview = (): SinkWriter => ({
    write(batch) {
      for (const row of batch.rows) starts.push((row[0] as { start: number }).start);
    },
  });
  const job = new Job(pipeline, registry, { parallelism, stateDir: tempDir(), checkpointIntervalMs: 1000, preview, log: { info() {}, warn() {} } });
  const running = job.run();
  await Bun.sleep(2500);
  job.stop();
  await running;
  return starts.map((s) => (s - START) / 1_000_000).sort((a, b) => a - b);
}

describe("idle partitions", () => {
  for (const parallelism of [1, 2]) {
    test(`a silent partition does not stop windows from closing (parallelism ${parallelism})`, async () => {
      const windows = await windowsClosed("300000", parallelism);
      // p1 covers 0–2 s of event time only; p0 runs well past 5 s in 2.5 s of wall time.
      expect(windows.length).toBeGreaterThan(4);
      expect(windows.slice(0, 4)).toEqual([0, 1, 2, 3]);
      expect(Math.max(...windows)).toBeGreaterThan(3);
    });
  }

  test("with idleness disabled (idle_micros = -1) the silent partition holds the watermark", async () => {
    const windows = await windowsClosed("-1", 1);
    // The watermark cannot pass p1's last record (1.9 s) minus 1 s: no window closes.
    expect(windows).toEqual([]);
  });
});
