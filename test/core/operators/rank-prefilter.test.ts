/**
 * The top-N prefilter before a windowed RANK/DENSE_RANK top-N: the window
 * function fed the prefilter's output of random batches (many ties) emits
 * what it emits fed every row, and rows it could judge late pass the
 * prefilter untouched (so its late count is unchanged).
 */
import { describe, expect, test } from "bun:test";
import { RankPrefilter } from "../../../core/operators/rank-prefilter.ts";
import { WindowFunctionOperator, type WindowFunctionSpec } from "../../../core/operators/window-function.ts";
import type { Batch, Row } from "../../../core/plugin-api/index.ts";
import { batchCollector, StateHarness } from "../../kit/operator-state.ts";
import { prng } from "../../kit/sql.ts";

/** Rows [partition, value, id]: rank by value descending within the partition. */
const spec = (by: "rank" | "dense_rank", n: number): WindowFunctionSpec => ({
  partition: [(r: Row) => r[0]],
  order: [{ key: (r: Row) => r[1], desc: true, nullsFirst: false }],
  functions: [{ kind: by }],
  limit: { n, by },
});

const collector = batchCollector;

/** The window function's output and late count, fed `batches` directly or through a prefilter (each batch, then each watermark). */
function run(by: "rank" | "dense_rank", n: number, steps: ({ batch: Batch } | { watermark: number; senderIdle?: boolean; senderWatermark?: boolean })[], prefilter: boolean) {
  const ctx = new StateHarness("wf").context(0, 1);
  const wf = new WindowFunctionOperator(spec(by, n));
  wf.open(ctx);
  const pre = new RankPrefilter(spec(by, n), -Infinity);
  const out = collector();
  let sent = 0;
  for (const step of steps) {
    if ("batch" in step) {
      if (!prefilter) {
        wf.process(step.batch);
        sent += step.batch.rows.length;
        continue;
      }
      const c = collector();
      pre.process(step.batch, c);
      for (const b of c.batches) {
        wf.process(b);
        sent += b.rows.length;
      }
    } else {
      if (step.senderIdle) pre.onIdle();
      if (step.senderWatermark !== false) pre.onWatermark(step.watermark);
      wf.onWatermark(step.watermark, out);
    }
  }
  wf.onWatermark(Number.MAX_SAFE_INTEGER, out);
  return { rows: out.rows.map((r) => JSON.stringify(r)).sort(), late: ctx.metrics.lateDropped, sent };
}

describe("top-N prefilter", () => {
  for (const [by, n] of [["rank", 1], ["rank", 3], ["dense_rank", 2]] as const) {
    test(`${by} <= ${n}: random batches with ties give the window function's own answer, sending far fewer rows`, () => {
      const rand = prng(n * 31 + by.length);
      const steps: Parameters<typeof run>[2] = [];
      let id = 0;
      // Windows end at times 10, 20, ...; their rows arrive over several batches, as from several aggregate subtasks.
      for (let w = 1; w <= 30; w++) {
        for (let b = 0; b < 4; b++) {
          const rows: Row[] = [];
          const times: number[] = [];
          for (let i = 0; i < 40; i++) {
            rows.push([`p${Math.floor(rand() * 3)}`, Math.floor(rand() * 8), id++]);
            times.push(w * 10 - 1);
          }
          steps.push({ batch: { rows, times } });
        }
        steps.push({ watermark: w * 10 });
      }
      const plain = run(by, n, steps, false);
      const filtered = run(by, n, steps, true);
      expect(filtered.rows).toEqual(plain.rows);
      expect(plain.rows.length).toBeGreaterThan(90);
      expect(filtered.sent).toBeLessThan(plain.sent / 3);
    });
  }

  test("rows behind the bound pass untouched: the window function drops and counts them as without the prefilter", () => {
    const batch = (t: number, values: number[]): { batch: Batch } => ({ batch: { rows: values.map((v, i) => ["p", v, `${t}-${i}`]), times: values.map(() => t) } });
    const steps: Parameters<typeof run>[2] = [
      batch(9, [1, 5, 3]),
      { watermark: 10 },
      // The sender went idle; others moved the window function to 30 meanwhile.
      { watermark: 12, senderIdle: true },
      { watermark: 30, senderWatermark: false },
      batch(19, [7, 2, 9]),
      batch(39, [4, 8]),
    ];
    const plain = run("rank", 1, steps, false);
    const filtered = run("rank", 1, steps, true);
    expect(filtered.rows).toEqual(plain.rows);
    expect(plain.late).toBe(3);
    expect(filtered.late).toBe(3);
  });
});
