#!/usr/bin/env bun
/**
 * The `runnel` command. `runnel run pipeline.sql` plans the SQL, prints the
 * dataflow graph, runs it with progress on stderr and a bare SELECT's rows on
 * stdout; Ctrl-C takes a final checkpoint so the same command resumes.
 */
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describeGraph } from "../dataflow/graph.ts";
import { Job, JobError, type JobOptions } from "../dataflow/job.ts";
import { normalizeStateLocation } from "../checkpoint/store.ts";
import { parseDurationMicros } from "../plugin-api/options.ts";
import { createRegistry } from "../registry/loader.ts";
import { formatSqlError, planSql, SqlError } from "../sql/index.ts";
import { ProgressReporter } from "./progress.ts";
import { createPreviewWriter } from "./preview.ts";
import { JobManager } from "../cluster/manager.ts";
import { runWorker } from "../cluster/worker.ts";
import { randomBytes } from "node:crypto";
import { ENV_REF } from "../sql/tables.ts";
import { availableParallelism } from "node:os";

const USAGE = `usage:
  runnel run <pipeline.sql> [--parallelism N] [--state-dir DIR] [--checkpoint-interval 10s] [--ignore-state] [--quiet]
             [--state-backend memory|disk] [--state-cache 2GB] [--max-parallelism 128] [--checkpoint-timeout 10m]
             [--workers N] [--scheduler process|external|...] [--listen host:port] [--secret S]
                                     --workers runs the job in N worker processes (default: the parallelism, up to the
                                     machine's cores); --scheduler external waits for N workers started with runnel worker
                                     --ignore-state removes the state directory's checkpoints and starts from scratch;
                                     --state-backend disk keeps keyed state in local SQLite files with a cache in memory;
                                     --max-parallelism sets the key groups of a job's state (fixed by its first checkpoint)
  runnel worker --manager host:port --secret S [--listen host:port] [--once]
                                     a worker for jobs run with --scheduler external: registers with the job manager
                                     and runs the subtasks it is given, job after job
  runnel validate <pipeline.sql> [--connect]
                                     plan the SQL and print the dataflow graph without running it;
                                     --connect also runs the connectors' checks against their
                                     services (brokers reachable, topics exist...)
  runnel plugins                     list the loaded plugins, connectors, formats and functions
  runnel migrate                     apply the control plane's pending database migrations (DATABASE_URL, or PGlite under ./data)
  runnel token create --name NAME [--role admin|editor|viewer]
                                     create a control-plane API token (admin unless --role says otherwise); also: token list, token delete ID
  runnel secrets rotate-key          re-seal the control plane's connection-profile secrets with a new key

\`runnel run\` and \`runnel validate\` read any file and resolve any {{ VARIABLE }}: the SQL is yours, run
as you. The control plane confines the pipelines it runs (see the README's Security section).
`;

class UsageError extends Error {}

interface RunArgs {
  file: string;
  parallelism: number;
  stateDir?: string;
  checkpointIntervalMs: number;
  quiet: boolean;
  /** Remove the state directory's checkpoints and start from scratch. */
  ignoreState?: boolean;
  stateBackend?: "memory" | "disk";
  stateCacheBytes?: number;
  maxParallelism?: number;
  checkpointTimeoutMs?: number;
  /** Worker processes (default: the parallelism, up to the machine's cores; 1 runs in this process). */
  workers?: number;
  scheduler?: string;
  /** The job manager's control address, for workers on other machines. */
  listen?: string;
  /** The secret external workers present (default: RUNNEL_JOB_SECRET, else a new one, printed). */
  secret?: string;
}

function parseRunArgs(argv: string[]): RunArgs {
  const args: RunArgs = { file: "", parallelism: 1, checkpointIntervalMs: 10_000, quiet: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.startsWith("--") && a.includes("=") ? [a.slice(0, a.indexOf("=")), a.slice(a.indexOf("=") + 1)] : [a, undefined];
    const value = () => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case "--parallelism":
      case "-p": {
        const v = value();
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1) throw new UsageError(`--parallelism must be a whole number ≥ 1, got '${v}'`);
        args.parallelism = n;
        break;
      }
      case "--state-dir":
        args.stateDir = value();
        break;
      case "--checkpoint-interval":
        try {
          args.checkpointIntervalMs = parseDurationMicros(value()) / 1000;
        } catch (err) {
          throw new UsageError(`--checkpoint-interval: ${(err as Error).message}`);
        }
        break;
      case "--state-backend": {
        const v = value();
        if (v !== "memory" && v !== "disk") throw new UsageError(`--state-backend is memory or disk, got '${v}'`);
        args.stateBackend = v;
        break;
      }
      case "--state-cache": {
        const v = value();
        const m = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?$/i.exec(v.trim());
        if (!m) throw new UsageError(`--state-cache takes a size such as 512MB or 2GB, got '${v}'`);
        const unit = (m[2] ?? "b").toLowerCase();
        const scale: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };
        args.stateCacheBytes = Math.round(Number(m[1]) * scale[unit]!);
        break;
      }
      case "--max-parallelism": {
        const v = value();
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1 || n > 32768) throw new UsageError(`--max-parallelism must be a whole number from 1 to 32768, got '${v}'`);
        args.maxParallelism = n;
        break;
      }
      case "--checkpoint-timeout":
        try {
          args.checkpointTimeoutMs = parseDurationMicros(value()) / 1000;
        } catch (err) {
          throw new UsageError(`--checkpoint-timeout: ${(err as Error).message}`);
        }
        break;
      case "--ignore-state":
        args.ignoreState = true;
        break;
      case "--workers": {
        const v = value();
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1) throw new UsageError(`--workers must be a whole number ≥ 1, got '${v}'`);
        args.workers = n;
        break;
      }
      case "--scheduler":
        args.scheduler = value();
        break;
      case "--listen":
        args.listen = value();
        break;
      case "--secret":
        args.secret = value();
        break;
      case "--quiet":
      case "-q":
        args.quiet = true;
        break;
      default:
        if (flag.startsWith("-")) throw new UsageError(`unknown flag ${flag}`);
        if (args.file) throw new UsageError(`one SQL file at a time (got '${args.file}' and '${flag}')`);
        args.file = flag;
    }
  }
  if (!args.file) throw new UsageError("name the SQL file to run");
  return args;
}

function readSql(file: string): string {
  if (!existsSync(file)) throw new UsageError(`no such file: ${file}`);
  return readFileSync(file, "utf8");
}

async function loadRegistry() {
  const registry = await createRegistry(process.cwd());
  for (const f of registry.failures) console.error(`warning: plugin '${f.plugin}' failed to load: ${f.cause}`);
  return registry;
}

function referencedEnv(sql: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of sql.matchAll(new RegExp(ENV_REF.source, "g"))) {
    const name = m[1]!;
    if (process.env[name] !== undefined) out[name] = process.env[name]!;
  }
  return out;
}

async function run(argv: string[]): Promise<number> {
  const args = parseRunArgs(argv);
  const sql = readSql(args.file);
  const registry = await loadRegistry();
  const pipeline = planSql(sql, registry, { env: process.env });

  const tempState = args.stateDir ? null : mkdtempSync(join(tmpdir(), "runnel-state-"));
  // A URL (s3://bucket/prefix) goes to a storage plugin as written; a path is made absolute.
  const stateDir = normalizeStateLocation(args.stateDir ?? tempState!);
  const options: JobOptions = {
    parallelism: args.parallelism,
    stateDir,
    checkpointIntervalMs: args.checkpointIntervalMs,
    ignoreState: args.ignoreState,
    stateBackend: args.stateBackend,
    stateCacheBytes: args.stateCacheBytes,
    maxParallelism: args.maxParallelism,
    checkpointTimeoutMs: args.checkpointTimeoutMs,
    preview: (fields, updating) => createPreviewWriter(registry, fields, updating, process.stdout),
  };
  // More than one worker: the subtasks run in worker processes (each on a core), placed by a scheduler.
  const workers = args.workers ?? (args.scheduler === "external" ? args.parallelism : Math.min(args.parallelism, availableParallelism()));
  let job: Job | JobManager;
  if (workers > 1 || args.scheduler) {
    const schedulerName = args.scheduler ?? "process";
    const scheduler = registry.scheduler(schedulerName);
    if (!scheduler) throw new UsageError(`no scheduler '${schedulerName}'; available: ${[...registry.schedulers.keys()].join(", ")}`);
    let secret = args.secret ?? process.env.RUNNEL_JOB_SECRET;
    if (schedulerName === "external" && !secret) {
      secret = randomBytes(18).toString("base64url");
      console.error(`job secret for workers: ${secret} (runnel worker --manager <address> --secret ${secret})`);
    }
    job = new JobManager(pipeline, registry, options, {
      sql,
      secret,
      // Workers plan the same SQL: they get the variables its {{ VAR }} references name, and no others.
      plan: { env: referencedEnv(sql) },
      workers,
      scheduler,
      listen: args.listen,
      workerCommand: [process.execPath, join(import.meta.dir, "..", "cluster", "worker-main.ts")],
    });
  } else {
    job = new Job(pipeline, registry, options);
  }
  console.error(`dataflow graph:\n${describeGraph(job.graph)}${workers > 1 ? `\n${workers} worker processes (${args.scheduler ?? "process"} scheduler)` : ""}`);

  let signals = 0;
  const onSignal = (sig: string) => {
    signals++;
    if (signals > 1) {
      console.error(`\n${sig} again: exiting without a final checkpoint`);
      process.exit(130);
    }
    console.error(`\n${sig}: taking a final checkpoint, then stopping (press Ctrl-C again to quit at once)`);
    job.stop();
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));

  const progress = args.quiet ? null : new ProgressReporter(job, process.stderr);
  try {
    const outcome = await job.run();
    progress?.stop();
    const restored = job.restoredCheckpoint;
    console.error(
      outcome === "end"
        ? `finished: input exhausted${restored !== null ? ` (resumed from checkpoint ${restored})` : ""}`
        : `stopped at checkpoint ${job.lastCheckpoint?.id}; run the same command${args.stateDir ? "" : " with --state-dir"} to resume`,
    );
    return 0;
  } finally {
    progress?.stop();
    if (tempState) rmSync(tempState, { recursive: true, force: true });
  }
}

/** `runnel worker`: a worker started by hand (or systemd, Nomad...) that registers with a job manager, job after job. */
async function worker(argv: string[]): Promise<number> {
  let manager: string | undefined;
  let secret = process.env.RUNNEL_JOB_SECRET;
  let listen = "127.0.0.1:0";
  let once = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === "--manager") manager = value();
    else if (a === "--secret") secret = value();
    else if (a === "--listen") listen = value();
    else if (a === "--once") once = true;
    else throw new UsageError(`unknown flag ${a} for runnel worker`);
  }
  if (!manager) throw new UsageError("runnel worker needs --manager host:port (the address runnel run --scheduler external prints)");
  if (!secret) throw new UsageError("runnel worker needs the job's secret: --secret, or RUNNEL_JOB_SECRET");
  for (;;) {
    let code: number;
    try {
      code = await runWorker({ manager, secret, epoch: null, index: null, listen, registry: () => loadRegistry() });
    } catch (err) {
      // The manager is not there (yet, or any more): try again shortly.
      if (once) throw err;
      await Bun.sleep(500);
      continue;
    }
    if (once) return code;
    console.error(`worker: the job's run ended (${code === 0 ? "finished" : "aborted"}); registering again with ${manager}`);
    await Bun.sleep(200);
  }
}

async function validate(argv: string[]): Promise<number> {
  const file = argv.find((a) => !a.startsWith("-"));
  if (!file) throw new UsageError("name the SQL file to validate");
  const registry = await loadRegistry();
  const pipeline = planSql(readSql(file), registry, { env: process.env });
  const job = new Job(pipeline, registry, { parallelism: 1, stateDir: mkdtempSync(join(tmpdir(), "runnel-validate-")), checkpointIntervalMs: 0 });
  if (argv.includes("--connect")) await job.preflight();
  console.log(describeGraph(job.graph));
  return 0;
}

async function plugins(): Promise<number> {
  const registry = await loadRegistry();
  for (const [name, p] of registry.plugins) {
    console.log(`${name}${p.version ? `@${p.version}` : ""}`);
    for (const c of p.connectors ?? []) console.log(`  connector ${c.name}${c.source ? " source" : ""}${c.sink ? " sink" : ""}`);
    for (const f of p.formats ?? []) console.log(`  format ${f.name}`);
    for (const u of p.udfs ?? []) console.log(`  function ${u.name}`);
    for (const u of p.udafs ?? []) console.log(`  aggregate ${u.name}`);
  }
  return registry.failures.length > 0 ? 1 : 0;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  let sqlText: string | undefined;
  try {
    switch (command) {
      case "run":
        sqlText = rest.find((a) => a.endsWith(".sql") && existsSync(a)) ? readFileSync(rest.find((a) => a.endsWith(".sql"))!, "utf8") : undefined;
        return await run(rest);
      case "worker":
        return await worker(rest);
      case "validate":
        sqlText = rest.find((a) => existsSync(a)) ? readFileSync(rest.find((a) => existsSync(a))!, "utf8") : undefined;
        return await validate(rest);
      case "plugins":
        return await plugins();
      case "migrate":
      case "token":
      case "secrets": {
        // The control plane owns its database; the CLI only offers its commands (loaded on demand, so the engine stays apart).
        const { controlPlaneCommand } = await import("../../control-plane/cli.ts");
        return await controlPlaneCommand(command, rest);
      }
      case undefined:
      case "help":
      case "--help":
      case "-h":
        console.log(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command '${command}'`);
    }
  } catch (err) {
    if (err instanceof SqlError) {
      console.error(formatSqlError(err, sqlText ?? ""));
      return 2;
    }
    if (err instanceof UsageError) {
      console.error(`error: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    if (err instanceof JobError) {
      console.error(`error: ${err.message}`);
      return 1;
    }
    // Connector failures (a missing file, a refused connection) are the user's to fix:
    // say what happened; the stack only helps us, so it waits for RUNNEL_DEBUG.
    const message = err instanceof Error ? err.message : String(err);
    console.error(`error: ${message}`);
    if (process.env.RUNNEL_DEBUG && err instanceof Error) console.error(err.stack);
    return 1;
  }
}

const code = await main(process.argv.slice(2));
// stdout may be a pipe with rows still buffered: let it drain before exiting.
await new Promise<void>((resolve) => process.stdout.write("", () => resolve()));
process.exit(code);
