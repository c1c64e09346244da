/** Runs the real `runnel` command as a child process, as a user would. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const REPO = resolve(import.meta.dir, "..", "..");
export const CLI = join(REPO, "core", "cli", "main.ts");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function tempDir(prefix = "runnel-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function writeSql(dir: string, sql: string, name = "pipeline.sql"): string {
  const file = join(dir, name);
  writeFileSync(file, sql);
  return file;
}

export function startCli(args: string[], cwd = REPO, env: Record<string, string> = {}) {
  return Bun.spawn(["bun", CLI, ...args], { cwd, stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
}

export async function runCli(args: string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  const proc = startCli(args, options.cwd);
  const timer = setTimeout(() => proc.kill("SIGKILL"), options.timeoutMs ?? 50_000);
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}
