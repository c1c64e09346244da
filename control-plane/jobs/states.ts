/**
 * Job states, named as Arroyo names them. The supervisor records every move
 * with a reason; desired state (running or a stop mode) lives apart, on the
 * job row, and the supervisor makes the observed state follow it.
 */
export const JOB_STATES = [
  "Created",
  "Compiling",
  "Scheduling",
  "Running",
  "CheckpointStopping",
  "Stopping",
  "Recovering",
  "Restarting",
  "Rescaling",
  "Finishing",
  "Failing",
  "Failed",
  "Stopped",
  "Finished",
] as const;

export type JobState = (typeof JOB_STATES)[number];

/** States in which no worker runs and nothing happens until the desired state changes. */
export const TERMINAL_STATES: readonly JobState[] = ["Stopped", "Finished", "Failed"];

export const isTerminal = (s: string) => (TERMINAL_STATES as readonly string[]).includes(s);
