#!/usr/bin/env bun
/**
 * A worker process of a control-plane job that runs across processes: started
 * by the job's process (jobs/worker.ts, which runs the job manager) through a
 * scheduler, it plans the pipeline as that process did — the job's UDFs, the
 * connection profiles its tables use, the files it may touch — from what the
 * assignment carries over the job's authenticated control connection (never
 * its environment), then runs the subtasks placed on it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runWorker, workerAddressFromEnv } from "../../core/cluster/worker.ts";
import { createRegistry } from "../../core/registry/loader.ts";
import { envPolicy, filePolicy } from "../security/policies.ts";
import { loadUdfs } from "./udf-modules.ts";
import type { ClusterPlanHost } from "./protocol.ts";

// Checkpoint files and anything else it writes are the control plane's user's alone.
process.umask(0o077);
const udfDir = mkdtempSync(join(tmpdir(), "runnel-udfs-"));
process.on("exit", () => rmSync(udfDir, { recursive: true, force: true }));

const code = await runWorker({
  ...workerAddressFromEnv("this process is started by a control-plane job, not by hand"),
  registry: () => createRegistry(),
  async prepare(registry, assignment) {
    const host = assignment.plan.host as ClusterPlanHost;
    await loadUdfs(registry, assignment.plan.udfs ?? [], udfDir);
    const files = filePolicy(host.fileRoots);
    return {
      context: { connectionProfile: (name) => host.profiles[name], envPolicy: envPolicy(host.envAllowlist), files },
      job: { files },
    };
  },
});
process.exit(code);
