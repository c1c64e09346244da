/** Runs the real `runnel` command as a child process, as a user would. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
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

/**
 * A port nothing listens on now, chosen by the kernel. A port picked at random
 * from a fixed range once landed on a test broker's (Kafka's SASL listener on
 * 19094), and the test spoke HTTP to Kafka.
 */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

export function writeSql(dir: string, sql: string, name = "pipeline.sql"): string {
  const file = join(dir, name);
  writeFileSync(file, sql);
  return file;
}

export function startCli(args: string[], cwd = REPO, env: Record<string, string> = {}) {
  return Bun.spawn(["bun", CLI, ...args], { cwd, stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } });
}

export async function runCli(args: string[], options: { cwd?: string; timeoutMs?: number; env?: Record<string, string> } = {}): Promise<CliResult> {
  const proc = startCli(args, options.cwd, options.env);
  const timer = setTimeout(() => proc.kill("SIGKILL"), options.timeoutMs ?? 50_000);
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

export interface RunningJob {
  proc: ReturnType<typeof Bun.spawn>;
  stderr(): string;
  /** SIGINT (final checkpoint, commit), then the exit code. */
  stop(): Promise<number>;
  /** SIGKILL, once it has exited. */
  kill(): Promise<void>;
}

/** Collects a process's output as it comes; the function returns what came so far. */
export function collectText(stream: ReadableStream<Uint8Array>): () => string {
  let text = "";
  void (async () => {
    const decoder = new TextDecoder();
    const reader = stream.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  })();
  return () => text;
}

/** Starts `runnel run` in the background, collecting stderr. */
export function startJob(args: string[], env: Record<string, string> = {}): RunningJob {
  const proc = startCli(["run", ...args], undefined, env);
  const stderr = collectText(proc.stderr as ReadableStream<Uint8Array>);
  void new Response(proc.stdout as ReadableStream).text();
  return {
    proc,
    stderr,
    async stop() {
      // A SIGINT before the CLI installs its handler (right after it prints the graph) would kill it outright.
      for (let i = 0; i < 300 && proc.exitCode === null && !stderr().includes("dataflow graph"); i++) await Bun.sleep(50);
      proc.kill("SIGINT");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
      const code = await proc.exited;
      clearTimeout(timer);
      await Bun.sleep(20);
      return code;
    },
    async kill() {
      proc.kill("SIGKILL");
      await proc.exited;
    },
  };
}

/** Polls until `check` returns a value (not undefined/false), or fails naming `what`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(everyMs);
  }
}

/** Polls `check` until it returns true, or fails after `timeoutMs` with `what`. */
export async function waitUntil(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 60_000, everyMs = 100): Promise<void> {
  await eventually(what, check, timeoutMs, everyMs);
}
