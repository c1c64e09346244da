/**
 * `process`: a job's workers as local child processes (the default). Each gets
 * only the environment the job manager hands it plus what running Bun needs, so
 * a worker sees no secret of the process that started it.
 */
import { definePlugin, defineScheduler, type WorkerProcess } from "../../core/plugin-api/index.ts";

/** What a child process needs from this one's environment to run at all. */
const KEEP = ["PATH", "HOME", "USER", "LOGNAME", "LANG", "TZ", "TMPDIR", "BUN_INSTALL"];

export const processScheduler = defineScheduler({
  name: "process",
  description: "Workers as local child processes of the job manager",
  start(spec) {
    const env: Record<string, string> = {};
    for (const k of KEEP) if (process.env[k] !== undefined) env[k] = process.env[k]!;
    for (const [k, v] of Object.entries(process.env)) if (k.startsWith("LC_") || k.startsWith("RUNNEL_WORKER_ENV_") || k.startsWith("AWS_") || k === "RUNNEL_CRASH_AT" || k.startsWith("RUNNEL_DEBUG")) env[k] = v!;
    // Crash tests kill the whole job where the point is reached (core/plugin-api crashPoint).
    if (env.RUNNEL_CRASH_AT) env.RUNNEL_CRASH_TAKES = String(process.pid);
    const proc = Bun.spawn(spec.command, { env: { ...env, ...spec.env }, stdin: "ignore", stdout: "inherit", stderr: "inherit" });
    const handle: WorkerProcess = {
      name: `pid ${proc.pid}`,
      exited: proc.exited.then((code) => (proc.signalCode ? null : code)),
      kill: () => proc.kill("SIGKILL"),
    };
    return handle;
  },
});

export default definePlugin({ name: "scheduler-process", version: "0.1.0", schedulers: [processScheduler] });
