/**
 * `external`: the job manager starts nothing; workers started by anything else
 * (systemd, Nomad, a shell on another machine) register with it, given its
 * address, the job's secret and epoch (`runnel worker --manager host:port ...`).
 */
import { definePlugin, defineScheduler } from "../../core/plugin-api/index.ts";

export const externalScheduler = defineScheduler({
  name: "external",
  description: "Workers started elsewhere register with the job manager",
  start: () => null,
});

export default definePlugin({ name: "scheduler-external", version: "0.1.0", schedulers: [externalScheduler] });
