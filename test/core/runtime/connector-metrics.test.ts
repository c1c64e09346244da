/**
 * What connectors report through `ctx.metrics` lands in their operator
 * subtask's metrics (OperatorMetrics.connector), per subtask, for sources and
 * sinks alike; the control plane exports them as runnel_connector_<name>.
 */
import { expect, setDefaultTimeout, test } from "bun:test";
import { Job } from "../../../core/dataflow/job.ts";
import { defineConnector, definePlugin, t, field } from "../../../core/plugin-api/index.ts";
import { PluginRegistry } from "../../../core/registry/registry.ts";
import { planSql } from "../../../core/sql/index.ts";
import { tempDir } from "../../kit/cli.ts";

setDefaultTimeout(30_000);

const counting = defineConnector({
  name: "counting",
  options: {},
  columns: () => [field("n", t.bigint())],
  source: {
    create(ctx) {
      let n = 0;
      return {
        splits: () => ["s"],
        async poll() {
          if (n >= 30) return { end: true as const };
          const rows = [[n++], [n++], [n++]];
          ctx.metrics.add("polls_total");
          ctx.metrics.set("lag", 30 - n + ctx.subtaskIndex * 1000);
          return { batches: [{ split: "s", rows }] };
        },
        snapshot: () => ({ s: n }),
      };
    },
  },
  sink: {
    create(ctx) {
      return {
        write(batch) {
          ctx.metrics.add("rows_written_total", batch.rows.length);
        },
      };
    },
  },
});

test("source and sink figures are kept per operator subtask", async () => {
  const registry = new PluginRegistry();
  registry.register(definePlugin({ name: "test-counting", connectors: [counting] }));
  const pipeline = planSql(
    `CREATE TABLE src WITH (connector = 'counting');
     CREATE TABLE dst (n BIGINT) WITH (connector = 'counting');
     INSERT INTO dst SELECT n FROM src;`,
    registry,
  );
  const job = new Job(pipeline, registry, { parallelism: 2, stateDir: tempDir(), checkpointIntervalMs: 0, log: { info() {}, warn() {} } });
  expect(await job.run()).toBe("end");
  const sources = job.metrics.operators.filter((m) => m.operatorName.includes("source src"));
  const sinks = job.metrics.operators.filter((m) => m.operatorName.includes("sink dst"));
  expect(sources.map((m) => m.connector).sort((a, b) => a.lag! - b.lag!)).toEqual([
    { polls_total: 10, lag: 0 },
    { polls_total: 10, lag: 1000 },
  ]);
  expect(sinks.reduce((n, m) => n + m.connector.rows_written_total!, 0)).toBe(60);
});
