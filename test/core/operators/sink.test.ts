/**
 * The sink operator hands a restored writer every earlier subtask's state it
 * takes over (several after the parallelism shrank) and re-commits each of
 * their prepared commits.
 */
import { describe, expect, test } from "bun:test";
import { SinkOperator } from "../../../core/operators/sink.ts";
import type { OperatorContext } from "../../../core/operators/operator.ts";
import type { SinkWriter } from "../../../core/plugin-api/index.ts";

function ctx(subtaskIndex: number, parallelism: number): OperatorContext {
  return { subtaskIndex, parallelism, metrics: {} as OperatorContext["metrics"], jobId: "t", signal: new AbortController().signal, log: () => {} };
}

const checkpointed = [0, 1, 2].map((j) => ({ version: 1, prepared: { from: j }, writer: { subtask: j } }));

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
  await op.open(ctx(subtaskIndex, parallelism), checkpointed);
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
    await op.open(ctx(0, 1), undefined);
  });
});
