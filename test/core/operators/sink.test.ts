/**
 * The sink operator hands a restored writer every earlier subtask's state it
 * takes over (several after the parallelism shrank) and re-commits each of
 * their prepared commits.
 */
import { describe, expect, test } from "bun:test";
import { SinkOperator } from "../../../core/operators/sink.ts";
import { StateHarness } from "../../kit/operator-state.ts";
import type { SinkWriter } from "../../../core/plugin-api/index.ts";

/** A checkpoint of three sink subtasks, each with a prepared commit and a writer state. */
async function checkpointed(): Promise<StateHarness> {
  const harness = new StateHarness("sink");
  const subtasks = [0, 1, 2].map((j) => {
    const ctx = harness.context(j, 3);
    ctx.state.list("sink").value = { pending: [[7, { from: j }]], writer: { subtask: j } };
    return { ctx };
  });
  await harness.checkpoint(subtasks);
  return harness;
}

async function openWith(subtaskIndex: number, parallelism: number) {
  const seen: { restored: unknown; all: unknown[]; commits: unknown[] } = { restored: undefined, all: [], commits: [] };
  const op = new SinkOperator(
    "sink",
    async (_ctx, restored, all): Promise<SinkWriter> => {
      seen.restored = restored;
      seen.all = all;
      return { write() {}, commit: (_id, prepared) => void seen.commits.push(prepared) };
    },
    7,
  );
  await op.open(await (await checkpointed()).restore(subtaskIndex, parallelism));
  return seen;
}

describe("sink operator restore", () => {
  test("same parallelism: one state, one re-commit", async () => {
    expect(await openWith(1, 3)).toEqual({ restored: { subtask: 1 }, all: [{ subtask: 1 }], commits: [{ from: 1 }] });
  });

  test("3 subtasks restored as 2: subtask 0 takes over 0 and 2, with both prepared commits", async () => {
    expect(await openWith(0, 2)).toEqual({
      restored: { subtask: 0 },
      all: [{ subtask: 0 }, { subtask: 2 }],
      commits: [{ from: 0 }, { from: 2 }],
    });
    expect(await openWith(1, 2)).toEqual({ restored: { subtask: 1 }, all: [{ subtask: 1 }], commits: [{ from: 1 }] });
  });

  test("a fresh start: nothing restored", async () => {
    const op = new SinkOperator("sink", async (_ctx, restored, all) => {
      expect([restored, all]).toEqual([undefined, []]);
      return { write() {} };
    }, null);
    await op.open(new StateHarness("sink").context(0, 1));
  });
});
