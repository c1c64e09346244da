#!/usr/bin/env bun
/**
 * Entry point of a worker process started by a scheduler: everything it needs
 * comes from the environment the job manager gave it.
 */
import { createRegistry } from "../registry/loader.ts";
import { runWorker, workerAddressFromEnv } from "./worker.ts";

const code = await runWorker({
  ...workerAddressFromEnv("workers are started by a job manager (runnel run --workers N), or by hand with runnel worker"),
  registry: () => createRegistry(),
});
process.exit(code);
