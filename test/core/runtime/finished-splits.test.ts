/**
 * Splits that leave a reader's `splits()` (finished, like a closed Kinesis
 * shard after resharding) stop holding the watermark back at once, even with
 * idleness disabled; splits still listed keep holding it.
 */
import { expect, setDefaultTimeout, test } from "bun:test";
import { Job } from "../../../core/dataflow/job.ts";
import { defineConnector, definePlugin, type Row, type SinkWriter } from "../../../core/plugin-api/index.ts";
import { PluginRegistry } from "../../../core/registry/registry.ts";
import { planSql } from "../../../core/sql/index.ts";
import { tempDir } from "../../kit/cli.ts";

setDefaultTimeout(60_000);

const START = Date.UTC(2024, 0, 1) * 1000;
const STEP = 100_000; // 100 ms of event time per record

/** Split `parent` sends 20 records then, when `finishes`, leaves the split list; `child` streams on. */
function lineage(finishes: boolean) {
  return defineConnector({
    name: "lineage",
    options: {},
    source: {
      create() {
        const next: Record<string, number> = { parent: 0, child: 0 };
        let parentDone = false;
        return {
          splits: () => (parentDone && finishes ? ["child"] : ["parent", "child"]),
          async poll() {
            await Bun.sleep(10);
            const batches = [];
            for (const split of ["parent", "child"]) {
              const rows: Row[] = [];
              while (rows.length < 5 && !(split === "parent" && next.parent! >= 20)) rows.push([split, START + next[split]!++ * STEP]);
              if (split === "parent" && next.parent! >= 20) parentDone = true;
              if (rows.length) batches.push({ split, rows });
            }
            return { batches };
          },
          snapshot: () => ({ ...next }),
        };
      },
    },
  });
}

async function windowsClosed(finishes: boolean): Promise<number> {
  const registry = new PluginRegistry();
  registry.register(definePlugin({ name: "test-lineage", connectors: [lineage(finishes)] }));
  const pipeline = planSql(
    `CREATE TABLE src (part TEXT, ts TIMESTAMP, WATERMARK FOR ts) WITH (connector = 'lineage', idle_micros = '-1');
     SELECT tumble(INTERVAL '1' SECOND) AS window, count(*) AS n FROM src GROUP BY window;`,
    registry,
  );
  let windows = 0;
  const preview = (): SinkWriter => ({
    write(batch) {
      windows += batch.rows.length;
    },
  });
  const job = new Job(pipeline, registry, { parallelism: 1, stateDir: tempDir(), checkpointIntervalMs: 1000, preview, log: { info() {}, warn() {} } });
  const running = job.run();
  await Bun.sleep(1500);
  job.stop();
  await running;
  return windows;
}

test("a split that leaves the reader's list no longer holds the watermark, with idleness disabled", async () => {
  // The parent covers 0–2 s of event time; the child runs far past it.
  expect(await windowsClosed(true)).toBeGreaterThan(4);
});

test("a split still listed but silent holds it (idleness disabled): windows stop after the parent's last record", async () => {
  expect(await windowsClosed(false)).toBeLessThanOrEqual(2);
});
