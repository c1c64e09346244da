/**
 * Backpressure is measured: a fast source feeding a slow operator in another
 * stage waits for channel space, and that wait shows on the source's subtask as
 * backpressureMs, while the slow stage itself (nothing downstream) shows none.
 */
import { expect, setDefaultTimeout, test } from "bun:test";
import { Job } from "../../../core/dataflow/job.ts";
import { defineConnector, definePlugin, type Row, type SinkWriter } from "../../../core/plugin-api/index.ts";
import { PluginRegistry } from "../../../core/registry/registry.ts";
import { planSql } from "../../../core/sql/index.ts";
import { tempDir } from "../../kit/cli.ts";

setDefaultTimeout(60_000);

const firehose = defineConnector({
  name: "firehose",
  description: "test source: 100 rows per poll, as fast as it is read",
  options: {},
  source: {
    create() {
      let n = 0;
      return {
        splits: () => ["s"],
        async poll() {
          const rows: Row[] = [];
          for (let i = 0; i < 100; i++, n++) rows.push([n % 7, Date.now() * 1000]);
          return { batches: [{ split: "s", rows }] };
        },
        snapshot: () => ({}),
      };
    },
  },
});

test("a source blocked by a slow downstream stage reports backpressure; the slow stage reports none", async () => {
  const registry = new PluginRegistry();
  registry.register(definePlugin({ name: "test-firehose", connectors: [firehose] }));
  // GROUP BY puts the aggregate (and the preview after it) in a stage of its own, behind a channel.
  const pipeline = planSql(`CREATE TABLE src (k BIGINT, ts TIMESTAMP) WITH (connector = 'firehose'); SELECT k, count(*) AS n FROM src GROUP BY k;`, registry);
  const slowPreview = (): SinkWriter => ({ write: () => Bun.sleep(5) });
  const job = new Job(pipeline, registry, {
    parallelism: 1,
    stateDir: tempDir(),
    checkpointIntervalMs: 0,
    channelCapacity: 2,
    preview: slowPreview,
    log: { info() {}, warn() {} },
  });
  const running = job.run();
  await job.started;
  let source = job.metrics.operators.find((m) => m.operatorId.endsWith("-source"))!;
  // Waits until the source has been held back for a while (it is, as soon as the two-slot channel fills).
  for (let i = 0; i < 200 && source.backpressureMs < 200; i++) await Bun.sleep(25);
  job.stop();
  await running;
  source = job.metrics.operators.find((m) => m.operatorId.endsWith("-source"))!;
  const aggregate = job.metrics.operators.find((m) => m.operatorId.endsWith("-updating_aggregate"))!;
  expect(source.backpressureMs).toBeGreaterThanOrEqual(200);
  expect(aggregate.backpressureMs).toBe(0);
});
