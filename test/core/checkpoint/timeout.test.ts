/**
 * A checkpoint that does not complete in time is abandoned, not the job: the
 * next one writes what it would have, and a sink's commit staged for the
 * abandoned one is committed with the next, so every row arrives once. Too many
 * in a row fail the job, naming where the barrier is held.
 */
import { beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir, writeSql } from "../../kit/cli.ts";

setDefaultTimeout(90_000);

let project: string;

// A sink that stages rows at each barrier and appends them to a file on commit; staging
// the checkpoints listed in STALL takes 1.2 s (longer than the tests' checkpoint timeout).
const PLUGIN = `
import { appendFileSync } from "node:fs";
const stall = new Set((process.env.STALL ?? "").split(",").filter(Boolean).map(Number));
export default {
  name: "test-stalling-sink",
  connectors: [{
    name: "stalling",
    options: { path: { kind: "string", required: true, parse: (v) => String(v) } },
    sink: {
      updating: true,
      create(ctx) {
        let rows = [];
        return {
          write(batch) { for (const r of batch.rows) rows.push(JSON.stringify(r)); },
          async prepareCommit(id) {
            const staged = rows;
            rows = [];
            if (stall.has(id) || stall.has(0)) await new Promise((r) => setTimeout(r, 1200));
            return staged;
          },
          commit(_id, staged) { if (staged.length) appendFileSync(ctx.options.path, staged.join("\\n") + "\\n"); },
        };
      },
    },
  }],
};
`;

beforeAll(() => {
  project = tempDir("runnel-checkpoint-timeout-");
  writeFileSync(join(project, "stalling.ts"), PLUGIN);
  writeFileSync(join(project, "runnel.config.ts"), `export default { plugins: ["./stalling.ts"] };\n`);
});

const pipeline = (out: string) => `
CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '2000', message_count = '3000');
CREATE TABLE out WITH (connector = 'stalling', path = '${out}', type = 'sink');
INSERT INTO out SELECT counter FROM impulse;
`;

async function run(stall: string, extra: string[] = []) {
  const out = join(project, `out-${stall.replace(/,/g, "_")}.jsonl`);
  const proc = Bun.spawn(["bun", join(import.meta.dir, "../../../core/cli/main.ts"), "run", writeSql(project, pipeline(out), `q-${stall}.sql`), "--checkpoint-interval", "200ms", "--checkpoint-timeout", "500ms", ...extra], {
    cwd: project,
    env: { ...process.env, STALL: stall },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  let rows: unknown[][] = [];
  try {
    rows = readFileSync(out, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
  } catch {
    rows = [];
  }
  return { stderr, code, rows };
}

describe("checkpoint timeout", () => {
  test("an abandoned checkpoint is written by the next, and its staged commit goes with it: every row once", async () => {
    const r = await run("2");
    expect(r.stderr).toContain("checkpoint 2 timed out after 500 ms");
    expect(r.stderr).toContain("the job goes on");
    expect(r.code).toBe(0);
    // Rows staged for the abandoned checkpoint were committed with the next: each counter once.
    expect((r.rows as [number][]).map((x) => x[0]).sort((a, b) => a - b)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
  });

  test("more failures in a row than tolerated fail the job, naming the checkpoint and what to do", async () => {
    const r = await run("0");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("checkpoints in a row failed (more than 3 tolerated)");
    expect(r.stderr).toContain("raise the checkpoint timeout");
  });
});
