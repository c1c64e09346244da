/** Disk tables' scratch folders: one left by a process that was killed is removed by the next job; a living process's is kept. */
import { expect, test } from "bun:test";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { scratchDir } from "../../../core/state/disk-table.ts";
import { tempDir } from "../../kit/cli.ts";

test("a scratch folder whose process is gone is removed; one whose process lives stays", async () => {
  const parent = tempDir("runnel-scratch-parent-");
  const gone = Bun.spawn(["true"]);
  await gone.exited;
  const alive = Bun.spawn(["sleep", "30"]);
  try {
    const stale = join(parent, `runnel-disk-state-local-pid${gone.pid}`);
    const living = join(parent, `runnel-disk-state-local-pid${alive.pid}`);
    const unrelated = join(parent, "runnel-state-123");
    for (const d of [stale, living, unrelated]) {
      mkdirSync(join(d, "t"), { recursive: true });
      writeFileSync(join(d, "t", "groups.db"), "x");
    }
    expect(scratchDir(parent, "job1")).toBe(join(parent, `runnel-disk-state-job1-pid${process.pid}`));
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(living)).toBe(true);
    expect(existsSync(unrelated)).toBe(true);
  } finally {
    alive.kill();
  }
});
