/**
 * Processing time: `proctime()` and a table whose event time is a generated
 * `pt TIMESTAMP AS (proctime())` column with `WATERMARK FOR pt`. Its tumbling
 * windows hold the rows the source read during them and close by the wall
 * clock, with no later record needed (Flink's processing-time windows).
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Job } from "../../../core/dataflow/job.ts";
import { defineConnector, definePlugin, opt, type Batch } from "../../../core/plugin-api/index.ts";
import { createRegistry } from "../../../core/registry/loader.ts";
import { planSql } from "../../../core/sql/index.ts";
import { eventually } from "../../kit/cli.ts";
import { planError } from "../../kit/sql.ts";

setDefaultTimeout(60_000);

/** Rows given to `trickle` sources by name: read once, after which the source stays open with nothing more to read. */
const feeds = new Map<string, number[]>();
const trickle = defineConnector({
  name: "trickle",
  options: { feed: opt.string({ required: true }) },
  source: {
    create(ctx) {
      const rows = ctx.subtaskIndex === 0 ? [...(feeds.get((ctx.options as { feed: string }).feed) ?? [])] : [];
      return {
        splits: () => ["only"],
        async poll() {
          if (rows.length > 0) return { batches: [{ split: "only", rows: rows.splice(0).map((k) => [k]) }] };
          // An open source with nothing to read, as a quiet Kafka topic is.
          await Bun.sleep(10);
          return { batches: [] };
        },
        snapshot: () => ({}),
      };
    },
  },
});

async function start(sql: string) {
  const registry = await createRegistry();
  registry.register(definePlugin({ name: "trickle", connectors: [trickle] }));
  const out: unknown[][] = [];
  const stateDir = mkdtempSync(join(tmpdir(), "runnel-proctime-"));
  const job = new Job(planSql(sql, registry), registry, {
    parallelism: 1,
    stateDir,
    checkpointIntervalMs: 0,
    preview: () => ({ write: (b: Batch) => void out.push(...b.rows) }),
    log: { info() {}, warn() {} },
  });
  const running = job.run();
  return {
    out,
    async stop() {
      job.stop();
      await running;
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

describe("processing-time windows", () => {
  test("a window of the rows read closes by the wall clock while the source stays open and silent", async () => {
    feeds.set("a", [1, 2, 3, 4, 5]);
    const before = Date.now() * 1000;
    const job = await start(
      `CREATE TABLE clicks (k BIGINT, pt TIMESTAMP AS (proctime()), WATERMARK FOR pt AS pt) WITH (connector = 'trickle', feed = 'a');
       SELECT window.start AS ws, window.end AS we, count(*) AS n, sum(k) AS s FROM clicks GROUP BY tumble(INTERVAL '200' MILLISECOND);`,
    );
    try {
      // No record follows the five, and the source never ends: only the clock can close their window(s).
      const rows = await eventually("the window to close by the wall clock", () => {
        const n = job.out.reduce((acc, r) => acc + (r[2] as number), 0);
        return n === 5 ? job.out : undefined;
      });
      const after = Date.now() * 1000;
      expect(rows.reduce((acc, r) => acc + (r[3] as number), 0)).toBe(15);
      for (const [ws, we] of rows as number[][]) {
        expect(we! - ws!).toBe(200_000);
        expect(ws! % 200_000).toBe(0);
        // The windows are those of when the rows were read, and closed before now.
        expect(we!).toBeGreaterThan(before);
        expect(we!).toBeLessThanOrEqual(after);
      }
    } finally {
      await job.stop();
    }
  });

  test("proctime() in a SELECT is the wall clock where the row is evaluated", async () => {
    feeds.set("b", [7]);
    const before = Date.now() * 1000;
    const job = await start(`CREATE TABLE t (k BIGINT) WITH (connector = 'trickle', feed = 'b');\nSELECT k, proctime() AS at FROM t;`);
    try {
      const [row] = await eventually("the row", () => (job.out.length > 0 ? job.out : undefined));
      expect(row![0]).toBe(7);
      expect(row![1] as number).toBeGreaterThanOrEqual(before);
      expect(row![1] as number).toBeLessThanOrEqual(Date.now() * 1000);
    } finally {
      await job.stop();
    }
  });

  test("proctime() takes no arguments", async () => {
    const err = await planError("CREATE TABLE t (k BIGINT) WITH (connector = 'test_rows', dataset = 'none');\nSELECT proctime(k) FROM t;");
    expect(err.message).toMatch(/proctime\(\) takes 0 argument/);
  });
});
