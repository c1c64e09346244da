#!/usr/bin/env bun
/**
 * Entry point of a worker process started by a scheduler: everything it needs
 * comes from the environment the job manager gave it (RUNNEL_MANAGER,
 * RUNNEL_JOB_SECRET, RUNNEL_EPOCH, RUNNEL_WORKER_INDEX, RUNNEL_WORKER_LISTEN).
 */
import { createRegistry } from "../registry/loader.ts";
import { runWorker } from "./worker.ts";

const env = (name: string) => {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} is not set: workers are started by a job manager (runnel run --workers N), or by hand with runnel worker`);
    process.exit(2);
  }
  return v;
};

const code = await runWorker({
  manager: env("RUNNEL_MANAGER"),
  secret: env("RUNNEL_JOB_SECRET"),
  epoch: Number(env("RUNNEL_EPOCH")),
  index: process.env.RUNNEL_WORKER_INDEX ? Number(process.env.RUNNEL_WORKER_INDEX) : null,
  listen: process.env.RUNNEL_WORKER_LISTEN ?? "127.0.0.1:0",
  registry: () => createRegistry(),
});
process.exit(code);
