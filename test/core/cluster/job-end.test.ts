/**
 * The end of a job across worker processes. In a worker, a sink stays open
 * until the final checkpoint is committed: its subtask ends as soon as the
 * final barrier has passed, but the commit comes later, from the job manager. A
 * sink that drops its connection on close (as the PostgreSQL sink does) must
 * still commit, without the job being restored for it. And the job manager's
 * metrics at the end are the workers' final counts, not their last heartbeat's.
 */
import { expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CLI, tempDir, writeSql } from "../../kit/cli.ts";
import { JobManager } from "../../../core/cluster/manager.ts";
import { createRegistry } from "../../../core/registry/loader.ts";
import { planSql } from "../../../core/sql/index.ts";

setDefaultTimeout(60_000);

test("a sink closed only after the final checkpoint's commit: the job across workers finishes without a restore", async () => {
  const project = tempDir("runnel-cluster-final-commit-");
  const log = join(project, "commits.log");
  writeFileSync(
    join(project, "closing.ts"),
    `import { appendFileSync } from "node:fs";
export default { name: "closing-sink", connectors: [{ name: "closing", options: {}, sink: { create(ctx) {
  let closed = false;
  return {
    write() {},
    prepareCommit(id) { return id; },
    commit(id) {
      if (closed) throw new Error("commit of checkpoint " + id + " after close: the connection is gone");
      appendFileSync(${JSON.stringify(log)}, ctx.subtaskIndex + ":" + id + "\\n");
    },
    close() { closed = true; },
  };
} } }] };`,
  );
  writeFileSync(join(project, "runnel.config.ts"), `export default { plugins: ["./closing.ts"] };\n`);
  const sql = writeSql(project, `
CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '0', message_count = '2000');
CREATE TABLE out WITH (connector = 'closing', type = 'sink');
INSERT INTO out SELECT counter FROM impulse;`);
  const proc = Bun.spawn(["bun", CLI, "run", sql, "--parallelism", "2", "--workers", "2", "--quiet"], { cwd: project, stdout: "ignore", stderr: "pipe" });
  const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
  expect({ code, restored: stderr.includes("restoring the job") }).toEqual({ code: 0, restored: false });
  // Both sink subtasks committed the final checkpoint.
  const commits = readFileSync(log, "utf8").split("\n").filter(Boolean);
  expect(new Set(commits.map((c) => c.split(":")[0]))).toEqual(new Set(["0", "1"]));
});

test("the job manager's counts at the end are the workers' final ones", async () => {
  const dir = tempDir("runnel-cluster-final-metrics-");
  const sql = `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '0', message_count = '200000');
CREATE TABLE out WITH (connector = 'blackhole');
INSERT INTO out SELECT counter FROM impulse WHERE counter % 2 = 0;`;
  const registry = await createRegistry();
  const manager = new JobManager(planSql(sql, registry), registry, { parallelism: 2, stateDir: join(dir, "state"), checkpointIntervalMs: 0, log: { info() {}, warn() {} } }, {
    sql,
    workers: 2,
    scheduler: registry.scheduler("process")!,
    workerCommand: [process.execPath, join(import.meta.dir, "..", "..", "..", "core", "cluster", "worker-main.ts")],
  });
  expect(await manager.run()).toBe("end");
  const total = (suffix: string, field: "recordsIn" | "recordsOut") => manager.metrics.operators.filter((m) => m.operatorId.endsWith(suffix)).reduce((n, m) => n + m[field], 0);
  expect({ source: total("-source", "recordsOut"), sink: total("-sink", "recordsIn") }).toEqual({ source: 400_000, sink: 200_000 });
});
