/** Periodic progress on stderr: records in/out per operator, watermark, last checkpoint. */
import type { JobMetrics } from "../runtime/metrics.ts";

/** A job in this process or spread over workers: either has its metrics. */
interface Progressing {
  metrics: JobMetrics;
}

function formatTime(us: number | null): string {
  if (us === null) return "-";
  if (us >= Number.MAX_SAFE_INTEGER) return "end";
  return new Date(us / 1000).toISOString();
}

function formatBytes(n: number): string {
  return n < 1024 ? `${n} B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)} KiB` : n < 1024 ** 3 ? `${(n / 1024 ** 2).toFixed(1)} MiB` : `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export function progressLine(job: Progressing, elapsedMs: number): string {
  const byOp = new Map<string, { label: string; in: number; out: number; wm: number | null; late: number; bad: number; idle: boolean; entries: number }>();
  for (const m of job.metrics.operators) {
    const agg = byOp.get(m.operatorId) ?? { label: m.operatorName, in: 0, out: 0, wm: null, late: 0, bad: 0, idle: true, entries: 0 };
    agg.entries += m.stateEntries;
    agg.in += m.recordsIn;
    agg.out += m.recordsOut;
    agg.late += m.lateDropped;
    agg.bad += m.badRecords;
    agg.idle &&= m.idle;
    if (m.watermark !== null && !m.idle) agg.wm = agg.wm === null ? m.watermark : Math.min(agg.wm, m.watermark);
    byOp.set(m.operatorId, agg);
  }
  const parts = [...byOp.entries()].map(([id, a]) => {
    let s = `${id} in=${a.in} out=${a.out}`;
    if (a.entries) s += ` keys=${a.entries}`;
    if (a.late) s += ` late=${a.late}`;
    if (a.bad) s += ` bad=${a.bad}`;
    s += ` wm=${a.idle ? "idle" : formatTime(a.wm)}`;
    return s;
  });
  const cp = job.metrics.lastCheckpoint;
  let state = 0;
  for (const m of job.metrics.operators) state += m.stateBytes;
  const chk = cp
    ? `checkpoint #${cp.id} ${((Date.now() - cp.at) / 1000).toFixed(0)}s ago (${cp.durationMs.toFixed(0)} ms, aligned in ${cp.alignmentMs.toFixed(0)} ms, ${formatBytes(cp.bytes ?? 0)} written, state ${formatBytes(state)})`
    : "no checkpoint yet";
  const failed = job.metrics.checkpointsFailed ? ` | ${job.metrics.checkpointsFailed} checkpoint(s) failed` : "";
  return `[${(elapsedMs / 1000).toFixed(1)}s] ${parts.join(" | ")} | ${chk}${failed}`;
}

export class ProgressReporter {
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly started = performance.now();

  constructor(
    private readonly job: Progressing,
    private readonly out: NodeJS.WriteStream,
    intervalMs = out.isTTY ? 1000 : 2000,
  ) {
    this.timer = setInterval(() => this.print(), intervalMs);
    this.timer.unref?.();
  }

  private print(): void {
    const line = progressLine(this.job, performance.now() - this.started);
    if (this.out.isTTY) this.out.write(`\r\x1b[2K${line.slice(0, (this.out.columns ?? 200) - 1)}`);
    else this.out.write(`${line}\n`);
  }

  private stopped = false;

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    if (this.out.isTTY) this.out.write("\n");
    this.out.write(`${progressLine(this.job, performance.now() - this.started)}\n`);
  }
}
