/** A job state as a coloured badge with its name (colour is never the only cue). */
const TONE: Record<string, string> = {
  Running: "ok",
  Finished: "done",
  Stopped: "idle",
  Created: "idle",
  Failed: "bad",
  Failing: "bad",
  Recovering: "warn",
  Restarting: "warn",
  Rescaling: "warn",
  CheckpointStopping: "warn",
  Stopping: "warn",
  Compiling: "warn",
  Scheduling: "warn",
  Finishing: "warn",
};

export function StateBadge(props: { state: string | null | undefined }) {
  const state = props.state ?? "no job";
  return (
    <span className={`state state-${TONE[state] ?? "idle"}`} data-state={state}>
      {state}
    </span>
  );
}

export const isTerminal = (state: string | null | undefined) => state === "Stopped" || state === "Finished" || state === "Failed";
