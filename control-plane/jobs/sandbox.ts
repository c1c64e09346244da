/**
 * Runs validations in child processes (validator.ts) so that nothing a user
 * submits runs in the control plane or holds up its event loop: SQL is
 * planned there, UDF modules are imported there. Each child starts with an
 * empty environment in a scratch directory of its own; a request that takes
 * longer than the timeout or grows the child past the memory bound has its
 * child killed and fails with a message saying so. With RUNNEL_WORKER_WRAPPER
 * the children run as the workers' user too: they import submitted code. At most `maxValidations`
 * requests run at once; others wait in line (a bounded one: beyond it the
 * caller is told to retry).
 *
 * Requests without UDF code go to a warm `pool` child (loading the plugins
 * takes ~0.5 s); validations carrying UDF code get a fresh `once` child, so
 * one user's module never shares a process with another's — taken from a
 * spare started (and warmed) after the previous one was used; a UDF's own
 * check gets a fresh `check` child, which loads no plugins.
 */
import type { OperatorIdentity } from "../../core/dataflow/fingerprint.ts";
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { resolve } from "node:path";
import type { Subprocess } from "bun";

const VALIDATOR = resolve(import.meta.dir, "validator.ts");
/** How long an idle pool child is kept. */
const IDLE_MS = 60_000;
const WATCH_MS = 100;

export type SandboxRequest =
  | {
      kind: "validate";
      query: string;
      udfs: { name: string; definition: string }[];
      profiles: Record<string, { connector: string; options: Record<string, string> }>;
      parallelism: number;
      fileRoots: string[];
      envAllowlist: string[];
    }
  | { kind: "udf"; name: string; definition: string };

/** A table of the query with its columns, for the console's completion. */
export interface QueryTable {
  name: string;
  connector: string | null;
  columns: { name: string; type: string }[];
}

export interface ValidationResult {
  graph: string;
  tasks: number;
  nodes: { id: string; label: string; parallelism: number; inputs: string[] }[];
  tables: QueryTable[];
  /** The query with secret option values replaced by '***'. */
  maskedQuery: string;
  /** Under which identity each operator's state is checkpointed, to check a query edit against a job's checkpoint. */
  identities: Record<string, OperatorIdentity>;
}

export type SandboxResponse =
  | { ok: true; result: ValidationResult | Record<string, never> }
  | {
      ok: false;
      error: { message: string; kind: "sql" | "option" | "invalid" | "internal"; line?: number; column?: number; option?: string };
      /** The tables that do build, for completion while the script is wrong. */
      tables?: QueryTable[];
    };

/** The sandbox gave up on a request (time, memory, a crash), or has too many waiting. */
export class SandboxError extends Error {
  constructor(
    message: string,
    readonly busy = false,
  ) {
    super(message);
  }
}

export interface SandboxLimits {
  maxValidations: number;
  validationTimeoutMs: number;
  validationMemoryMb: number;
  /** RUNNEL_WORKER_WRAPPER: put before the child's command line (e.g. to run it as the workers' user). */
  workerWrapper: string[];
}

interface Child {
  proc: Subprocess<"ignore", "ignore", "pipe">;
  /** The directory the child made to work in; it removes it when it exits, and so does this side after a kill. */
  scratch: string | null;
  ready: Promise<void>;
  pending: ((r: SandboxResponse) => void) | null;
  stderr: string[];
  idleTimer: ReturnType<typeof setTimeout> | null;
  dead: boolean;
}

const rssMb = (pid: number) => {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
};

export class Sandbox {
  private readonly idle: Child[] = [];
  /** A warm `once` child waiting for the next request that carries UDF code. */
  private spare: Child | null = null;
  private readonly live = new Set<Child>();
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private closed = false;

  constructor(private readonly limits: SandboxLimits) {}

  /** Runs one request; `fresh` gives it a process of its own (it carries UDF code). */
  async run(request: SandboxRequest, fresh: boolean): Promise<SandboxResponse> {
    await this.slot();
    try {
      const once = fresh && request.kind === "validate";
      const child = request.kind === "udf" ? this.spawn("check") : once ? this.takeSpare() : (this.idle.pop() ?? this.spawn("pool"));
      if (child.idleTimer) clearTimeout(child.idleTimer);
      if (once && !this.closed) {
        const spare = (this.spare = this.spawn("once"));
        spare.idleTimer = setTimeout(() => {
          if (this.spare === spare) this.spare = null;
          this.retire(spare);
        }, IDLE_MS);
      }
      try {
        const response = await this.ask(child, request);
        if (!fresh && !child.dead && !this.closed) {
          child.idleTimer = setTimeout(() => this.retire(child), IDLE_MS);
          this.idle.push(child);
        } else if (fresh) this.retire(child);
        return response;
      } catch (err) {
        this.retire(child);
        throw err;
      }
    } finally {
      // The slot goes straight to the next in line, so a newcomer cannot slip in between.
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }

  private takeSpare(): Child {
    const spare = this.spare && !this.spare.dead ? this.spare : null;
    this.spare = null;
    return spare ?? this.spawn("once");
  }

  private async slot(): Promise<void> {
    if (this.closed) throw new SandboxError("the control plane is shutting down");
    if (this.running < this.limits.maxValidations) {
      this.running++;
      return;
    }
    if (this.waiting.length >= this.limits.maxValidations * 16) {
      throw new SandboxError(`${this.waiting.length} validations are waiting already; try again in a moment`, true);
    }
    await new Promise<void>((r) => this.waiting.push(r));
  }

  private spawn(mode: "pool" | "once" | "check"): Child {
    let markReady!: () => void;
    const child: Child = {
      proc: null as any,
      scratch: null,
      ready: new Promise<void>((r) => (markReady = r)),
      pending: null,
      stderr: [],
      idleTimer: null,
      dead: false,
    };
    child.proc = Bun.spawn([...this.limits.workerWrapper, process.execPath, VALIDATOR, mode, process.cwd()], {
      cwd: tmpdir(),
      // Nothing of the control plane's environment (tokens, keys, DATABASE_URL) reaches user code; only the
      // temp folder's path, so the child's scratch folder is where this process looks for it to remove it.
      env: { TMPDIR: tmpdir() },
      stdin: "ignore",
      stdout: "ignore",
      stderr: "pipe",
      serialization: "json",
      ipc: (message: any) => {
        if (message?.ready) {
          child.scratch = typeof message.scratch === "string" && message.scratch.startsWith(tmpdir()) ? message.scratch : null;
          markReady();
        }
        else {
          const p = child.pending;
          child.pending = null;
          p?.(message as SandboxResponse);
        }
      },
    });
    void (async () => {
      const decoder = new TextDecoder();
      const reader = (child.proc.stderr as ReadableStream<Uint8Array>).getReader();
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        child.stderr.push(...decoder.decode(value).split("\n").filter(Boolean));
        if (child.stderr.length > 20) child.stderr.splice(0, child.stderr.length - 20);
      }
    })().catch(() => {});
    void child.proc.exited.then(() => {
      child.dead = true;
      this.live.delete(child);
      const i = this.idle.indexOf(child);
      if (i >= 0) this.idle.splice(i, 1);
      // A killed child could not clean up after itself.
      if (child.scratch) rmSync(child.scratch, { recursive: true, force: true });
    });
    this.live.add(child);
    return child;
  }

  private ask(child: Child, request: SandboxRequest): Promise<SandboxResponse> {
    const { validationTimeoutMs: timeoutMs, validationMemoryMb: memoryMb } = this.limits;
    return new Promise<SandboxResponse>((resolvePromise, reject) => {
      let settled = false;
      const finish = (err: SandboxError | null, response?: SandboxResponse) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearInterval(watch);
        child.pending = null;
        if (err) reject(err);
        else resolvePromise(response!);
      };
      // The bound counts from the request on; a child still loading the plugins gets a generous one of its own.
      let timer = setTimeout(() => {
        child.proc.kill("SIGKILL");
        finish(new SandboxError("the validation process did not start within 60 s; the machine may be overloaded"));
      }, 60_000);
      const watch = setInterval(() => {
        const rss = rssMb(child.proc.pid);
        if (rss > memoryMb) {
          child.proc.kill("SIGKILL");
          finish(new SandboxError(`validation used more than ${memoryMb} MB and was stopped (RUNNEL_VALIDATION_MEMORY_MB); simplify the query, or the UDF's module code`));
        }
      }, WATCH_MS);
      void child.proc.exited.then((code) => {
        const tail = child.stderr.slice(-3).join(" | ");
        finish(new SandboxError(`validation stopped unexpectedly (exit ${child.proc.signalCode ?? code})${tail ? `: ${tail}` : ""}`));
      });
      child.ready.then(() => {
        if (settled) return;
        clearTimeout(timer);
        timer = setTimeout(() => {
          child.proc.kill("SIGKILL");
          finish(new SandboxError(`validation took longer than ${timeoutMs / 1000} s and was stopped (RUNNEL_VALIDATION_TIMEOUT_MS); simplify the query, or the UDF's module code`));
        }, timeoutMs);
        child.pending = (r) => finish(null, r);
        try {
          child.proc.send(request);
        } catch (err) {
          finish(new SandboxError(`validation could not start: ${(err as Error).message}`));
        }
      });
    });
  }

  /** Ends a child: SIGTERM lets it remove its scratch directory; SIGKILL follows if it lingers. */
  private retire(child: Child): void {
    if (child.idleTimer) clearTimeout(child.idleTimer);
    const i = this.idle.indexOf(child);
    if (i >= 0) this.idle.splice(i, 1);
    if (child.dead) return;
    child.proc.kill("SIGTERM");
    setTimeout(() => child.dead || child.proc.kill("SIGKILL"), 2000).unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.live];
    for (const c of all) this.retire(c);
    await Promise.all(all.map((c) => c.proc.exited));
  }
}
