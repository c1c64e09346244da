/**
 * Who a process is beyond its pid, read from /proc: pids are reused, so the
 * supervisor signals a recorded worker (and a tool honours a lock) only when
 * the process under that pid started when the recorded one did, on this boot,
 * with the expected command line.
 */
import { readFileSync } from "node:fs";

const read = (path: string) => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
};

let bootId: string | null | undefined;

/** `<boot id>:<start time in clock ticks after boot>` of a live process; null when /proc has no such process (or no /proc). */
export function processIdentity(pid: number): string | null {
  const stat = read(`/proc/${pid}/stat`);
  if (stat === null) return null;
  // The command name (field 2) may hold spaces and parentheses: count fields after its closing one.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const start = fields[19];
  if (bootId === undefined) bootId = read("/proc/sys/kernel/random/boot_id")?.trim() ?? null;
  return start ? `${bootId ?? "?"}:${start}` : null;
}

/** The process's command line, arguments joined by spaces; null when it is gone. */
export function commandLineOf(pid: number): string | null {
  return read(`/proc/${pid}/cmdline`)?.split("\0").join(" ").trim() ?? null;
}

/** Whether `pid` is still the process recorded as `identity`, running a command line that contains `marker`. */
export function isSameProcess(pid: number, identity: string | null, marker?: string): boolean {
  if (!identity) return false;
  if (processIdentity(pid) !== identity) return false;
  return marker === undefined || (commandLineOf(pid) ?? "").includes(marker);
}
