/**
 * A pipeline's job: the live dataflow graph with per-operator metrics,
 * checkpoints, events and failures, the output tail for a preview sink, and
 * the controls (stop in each mode, start, restart keeping or ignoring state,
 * rescale, edit the query, delete), and where each subtask runs. Everything
 * live arrives over subscriptions.
 */
import { useEffect, useMemo, useRef, useState, type FormEvent } from "react";
import { useMutation, useQuery, useSubscription } from "urql";
import { Link, useLocation } from "wouter";
import { graphql, type ResultOf } from "../graphql.ts";
import { DataflowGraph } from "../components/dataflow-graph.tsx";
import { StateBadge, isTerminal } from "../components/state-badge.tsx";
import { OutputTable } from "../components/output-table.tsx";
import { SqlEditor, ValidateQuery, ValidationStatus, type Validation } from "../components/sql-editor.tsx";
import { JobFields, JobUpdatesSubscription } from "./pipelines.tsx";
import { PipelineOutput } from "./new-pipeline.tsx";
import { useJobMetrics } from "../lib/metrics.ts";
import { fmtBytes, fmtDurationMs, fmtMicros, fmtRate, fmtTime } from "../lib/format.ts";
import { useNow } from "../lib/now.ts";
import { placementByOperator, workersOf } from "../lib/placement.ts";
import { useViewer } from "../lib/viewer.tsx";
import { useCatalog } from "../lib/catalog.ts";

const PipelineQuery = graphql(
  `
    query Pipeline($id: ID!) {
      pipeline(id: $id) {
        id
        name
        query
        udfs
        parallelism
        stop
        version
        checkpointIntervalMicros
        createdAt
        jobs {
          ...JobFields
          events {
            at
            fromState
            toState
            reason
          }
        }
      }
    }
  `,
  [JobFields],
);

const CheckpointsSubscription = graphql(`
  subscription JobCheckpoints($jobId: ID!) {
    jobCheckpoints(jobId: $jobId) {
      checkpointId
      runId
      at
      durationMicros
      alignmentMicros
      sizeBytes
      then
    }
  }
`);
type CheckpointRow = ResultOf<typeof CheckpointsSubscription>["jobCheckpoints"];

const StopMutation = graphql(`
  mutation Stop($id: ID!, $mode: StopMode!) {
    stopPipeline(input: { id: $id, mode: $mode }) {
      __typename
      ... on UserError {
        message
      }
    }
  }
`);
const StartMutation = graphql(`
  mutation Start($id: ID!) {
    startPipeline(input: { id: $id }) {
      __typename
      ... on UserError {
        message
      }
    }
  }
`);
const RestartMutation = graphql(`
  mutation Restart($id: ID!, $ignoreState: Boolean) {
    restartPipeline(input: { id: $id, ignoreState: $ignoreState }) {
      __typename
      ... on UserError {
        message
      }
    }
  }
`);
const RescaleMutation = graphql(`
  mutation Rescale($id: ID!, $parallelism: Int!) {
    updatePipeline(input: { id: $id, parallelism: $parallelism }) {
      __typename
      ... on UserError {
        message
      }
    }
  }
`);
const EditQueryMutation = graphql(`
  mutation EditQuery($id: ID!, $query: String!, $ignoreState: Boolean) {
    updatePipeline(input: { id: $id, query: $query, ignoreState: $ignoreState }) {
      __typename
      ... on PipelinePayload {
        pipeline {
          id
          query
          version
        }
      }
      ... on UserError {
        message
      }
    }
  }
`);
const DeleteMutation = graphql(`
  mutation Delete($id: ID!) {
    deletePipeline(input: { id: $id }) {
      __typename
      ... on UserError {
        message
      }
    }
  }
`);

const STOP_MODES = [
  { mode: "checkpoint", label: "with a final checkpoint" },
  { mode: "graceful", label: "gracefully (as checkpoint)" },
  { mode: "immediate", label: "immediately (resume from the last checkpoint)" },
  { mode: "force", label: "by force (kill the worker)" },
] as const;

export function PipelinePage(props: { id: string }) {
  const [{ data, error, fetching }, refetch] = useQuery({ query: PipelineQuery, variables: { id: props.id } });
  const pipeline = data?.pipeline ?? null;
  const [{ data: live }] = useSubscription({ query: JobUpdatesSubscription, variables: { pipelineId: props.id }, pause: !pipeline });
  const lastReason = live?.jobUpdates.reason ?? null;
  // A change of state adds an event: read the job's history again (pushed by the subscription, not polled).
  useEffect(() => {
    if (lastReason) refetch({ requestPolicy: "network-only" });
  }, [live, lastReason, refetch]);

  if (error) return <p role="alert" className="error">{error.message}</p>;
  if (!data && fetching) return <p role="status">Loading…</p>;
  if (!pipeline) {
    return (
      <>
        <h1>Pipeline not found</h1>
        <p>
          There is no pipeline {props.id}. <Link href="/">Back to the pipelines</Link>.
        </p>
      </>
    );
  }
  const stored = pipeline.jobs[0] ?? null;
  const liveJob = live?.jobUpdates.job;
  const job = stored && liveJob && liveJob.id === stored.id ? { ...stored, ...liveJob } : stored;
  return <JobView pipeline={pipeline} job={job} reload={() => refetch({ requestPolicy: "network-only" })} />;
}

type PipelineData = NonNullable<ResultOf<typeof PipelineQuery>["pipeline"]>;
type JobData = PipelineData["jobs"][number];

function JobView({ pipeline, job, reload }: { pipeline: PipelineData; job: JobData | null; reload(): void }) {
  const { canEdit } = useViewer();
  const parallelism = job?.parallelism ?? pipeline.parallelism;
  const [{ data: planned }] = useQuery({ query: ValidateQuery, variables: { sql: pipeline.query, parallelism, udfs: pipeline.udfs } });
  const nodes = planned?.validateQuery.nodes ?? null;
  const running = job !== null && !isTerminal(job.state);
  const metrics = useJobMetrics(job && running ? job.id : null);
  const hasPreview = !!nodes?.some((n) => n.label === "preview output");
  const now = useNow();
  const uptime = running && job?.startTime ? now - job.startTime / 1000 : null;
  const graphText = planned?.validateQuery.graph;
  const placement = useMemo(() => (running && job?.placement ? placementByOperator(graphText, job.placement) : undefined), [running, graphText, job?.placement]);
  // The job manager may move subtasks to new processes without a change of state; the metrics show it (a subtask's worker or fresh counters): read the placement again.
  const processes = metrics?.processes;
  useEffect(() => {
    if (processes) reload();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [processes]);

  return (
    <article aria-labelledby="pipeline-title" className="job">
      <div className="page-head">
        <div>
          <h1 id="pipeline-title">{pipeline.name}</h1>
          <p className="muted">
            <code>{pipeline.id}</code> · version {pipeline.version} · checkpoint every {fmtMicros(pipeline.checkpointIntervalMicros)}
          </p>
        </div>
        <dl className="facts">
          <div>
            <dt>State</dt>
            <dd>
              <StateBadge state={job?.state} />
            </dd>
          </div>
          <div>
            <dt>Parallelism</dt>
            <dd data-testid="parallelism">{parallelism}</dd>
          </div>
          <div>
            <dt>Uptime</dt>
            <dd>{uptime === null ? "—" : fmtDurationMs(uptime)}</dd>
          </div>
          <div>
            <dt>Input</dt>
            <dd>{fmtRate(running ? metrics?.inRate : null)}</dd>
          </div>
          <div>
            <dt>Output</dt>
            <dd>{fmtRate(running ? metrics?.outRate : null)}</dd>
          </div>
          <div>
            <dt>Restarts</dt>
            <dd>{job?.restarts ?? 0}</dd>
          </div>
        </dl>
      </div>

      {job?.failureMessage && (
        <div className="failure" role="alert">
          <h2>Failure</h2>
          <pre>{job.failureMessage}</pre>
        </div>
      )}

      {canEdit && job && <Controls pipelineId={pipeline.id} job={job} parallelism={parallelism} />}

      <section aria-labelledby="graph-title">
        <h2 id="graph-title">Dataflow</h2>
        {nodes ? (
          <DataflowGraph nodes={nodes} metrics={running ? metrics : null} placement={placement} caption={`${pipeline.name}: operators with records per second, watermark, backpressure and workers`} />
        ) : (
          <p className="muted">Planning the graph…</p>
        )}
        {running && <Workers placement={job?.placement ?? null} />}
      </section>

      <div className="columns">
        {job && <Checkpoints jobId={job.id} />}
        {job && <Events job={job} />}
      </div>

      {hasPreview && <OutputTail pipelineId={pipeline.id} />}

      <QuerySection pipeline={pipeline} job={job} parallelism={parallelism} canEdit={canEdit} onUpdated={reload} />
    </article>
  );
}

/**
 * The pipeline's query, and (for editors, while it has a job) a form to edit
 * it with validation as you type. The job takes a checkpoint and restarts with
 * the new query keeping the state of the operators the edit left alone; an
 * edit that changes an operator holding state is refused, and starting from
 * scratch is offered instead.
 */
function QuerySection(props: { pipeline: PipelineData; job: JobData | null; parallelism: number; canEdit: boolean; onUpdated(): void }) {
  const { pipeline } = props;
  const { catalog } = useCatalog();
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(pipeline.query);
  const [validation, setValidation] = useState<Validation | null>(null);
  const [ignoreState, setIgnoreState] = useState(false);
  const [refusal, setRefusal] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [state, update] = useMutation(EditQueryMutation);
  const unchanged = draft === pipeline.query;
  // Keyboard users land in the editor when the form opens (autoFocus), and back on its button when it closes.
  const editButton = useRef<HTMLButtonElement>(null);
  const opened = useRef(false);
  useEffect(() => {
    if (!editing && opened.current) editButton.current?.focus();
    opened.current ||= editing;
  }, [editing]);

  const open = () => {
    setDraft(pipeline.query);
    setValidation(null);
    setIgnoreState(false);
    setRefusal(null);
    setDone(null);
    setEditing(true);
  };
  async function apply(fromScratch: boolean) {
    setRefusal(null);
    const r = await update({ id: pipeline.id, query: draft, ignoreState: fromScratch });
    const out = r.data?.updatePipeline;
    if (out?.__typename === "PipelinePayload") {
      setEditing(false);
      setDone(`Query updated (version ${out.pipeline.version}): the job restarts with it${fromScratch ? ", from scratch" : ", keeping its state"}.`);
      props.onUpdated();
    } else setRefusal(out && "message" in out ? out.message : (r.error?.message ?? "the query was not updated"));
  }

  return (
    <section aria-labelledby="query-title" className="query">
      <h2 id="query-title">Query</h2>
      {!editing ? (
        <>
          <SqlEditor key="shown" value={pipeline.query} onChange={() => {}} parallelism={props.parallelism} udfs={pipeline.udfs} catalog={null} readOnly label="Pipeline query (read-only)" />
          {props.canEdit && props.job && (
            <div className="actions">
              <button type="button" ref={editButton} onClick={open}>
                Edit query
              </button>
              {done && <span role="status">{done}</span>}
            </div>
          )}
        </>
      ) : (
        <form
          className="query-edit"
          aria-describedby="edit-validation"
          onSubmit={(e: FormEvent) => {
            e.preventDefault();
            void apply(ignoreState);
          }}
        >
          <p className="muted" id="edit-help">
            The job takes a checkpoint and restarts with the new query, keeping the state of every operator the edit leaves unchanged (a filter or projection edited, a sink added). Ctrl-Space completes; Escape then Tab leaves the editor.
          </p>
          <SqlEditor key="edit" value={draft} onChange={setDraft} parallelism={props.parallelism} udfs={pipeline.udfs} catalog={catalog} onValidated={setValidation} label="Edit the pipeline's query" autoFocus />
          <ValidationStatus id="edit-validation" validation={validation} />
          <label className="check">
            <input type="checkbox" checked={ignoreState} onChange={(e) => setIgnoreState(e.target.checked)} /> Start from scratch (drop the job's state)
          </label>
          {refusal && (
            <div role="alert" className="error">
              <p>{refusal}</p>
              {!ignoreState && (
                <button type="button" className="danger" disabled={state.fetching} onClick={() => void apply(true)}>
                  Apply, starting from scratch
                </button>
              )}
            </div>
          )}
          <div className="actions">
            <button type="submit" className="primary" disabled={state.fetching || unchanged || !validation?.valid}>
              {state.fetching ? "Applying…" : "Apply edit"}
            </button>
            <button type="button" onClick={() => setEditing(false)}>
              Cancel
            </button>
            {unchanged && <span className="muted">No change yet.</span>}
          </div>
        </form>
      )}
    </section>
  );
}

function Controls({ pipelineId, job, parallelism }: { pipelineId: string; job: JobData; parallelism: number }) {
  const [, navigate] = useLocation();
  const [stopState, stop] = useMutation(StopMutation);
  const [, start] = useMutation(StartMutation);
  const [, restart] = useMutation(RestartMutation);
  const [, rescale] = useMutation(RescaleMutation);
  const [, remove] = useMutation(DeleteMutation);
  const [mode, setMode] = useState<(typeof STOP_MODES)[number]["mode"]>("checkpoint");
  const [ignoreState, setIgnoreState] = useState(false);
  const [target, setTarget] = useState(parallelism);
  const [message, setMessage] = useState<string | null>(null);
  useEffect(() => setTarget(parallelism), [parallelism]);
  const terminal = isTerminal(job.state);

  const run = async (what: string, p: Promise<{ data?: Record<string, { __typename: string; message?: string }>; error?: { message: string } }>) => {
    setMessage(null);
    const r = await p;
    const out = r.data ? Object.values(r.data)[0] : undefined;
    if (r.error) setMessage(`${what}: ${r.error.message}`);
    else if (out && out.message) setMessage(`${what}: ${out.message}`);
    return out;
  };

  return (
    <section aria-labelledby="controls-title" className="controls">
      <h2 id="controls-title" className="visually-hidden">
        Controls
      </h2>
      {!terminal && (
        <form
          onSubmit={(e: FormEvent) => {
            e.preventDefault();
            void run("stop", stop({ id: pipelineId, mode }));
          }}
        >
          <label htmlFor="stop-mode">Stop</label>
          <select id="stop-mode" value={mode} onChange={(e) => setMode(e.target.value as typeof mode)}>
            {STOP_MODES.map((m) => (
              <option key={m.mode} value={m.mode}>
                {m.label}
              </option>
            ))}
          </select>
          <button type="submit" disabled={stopState.fetching || !job.runningDesired}>
            Stop
          </button>
        </form>
      )}
      {terminal && (
        <button type="button" onClick={() => void run("start", start({ id: pipelineId }))}>
          Start
        </button>
      )}
      <form
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          void run("restart", restart({ id: pipelineId, ignoreState }));
        }}
      >
        <label className="check">
          <input type="checkbox" checked={ignoreState} onChange={(e) => setIgnoreState(e.target.checked)} /> ignore state
        </label>
        <button type="submit">Restart</button>
      </form>
      <form
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          void run("rescale", rescale({ id: pipelineId, parallelism: target }));
        }}
      >
        <label htmlFor="rescale-to">Parallelism</label>
        <input id="rescale-to" type="number" min={1} max={1024} value={target} onChange={(e) => setTarget(Number(e.target.value) || 1)} />
        <button type="submit" disabled={target === parallelism}>
          Rescale
        </button>
      </form>
      {terminal && (
        <button
          type="button"
          className="danger"
          onClick={async () => {
            if (!window.confirm("Delete this pipeline, its job and its history?")) return;
            const out = await run("delete", remove({ id: pipelineId }));
            if (out?.__typename === "DeletedPayload") navigate("/");
          }}
        >
          Delete
        </button>
      )}
      {message && (
        <p role="alert" className="error">
          {message}
        </p>
      )}
    </section>
  );
}

/** The job's worker processes: where its subtasks run (several after a scale-out). */
function Workers({ placement }: { placement: JobData["placement"] }) {
  const workers = workersOf(placement);
  if (workers.length === 0) return <p className="muted">Worker processes: not placed yet.</p>;
  return (
    <p className="workers" data-testid="workers">
      {workers.length === 1 ? "Runs in 1 worker process: " : `Runs in ${workers.length} worker processes: `}
      {workers.map((w, i) => (
        <span key={w.worker} data-worker={w.worker} data-pid={w.pid}>
          {i > 0 ? "; " : ""}worker {w.worker} on {w.host}, pid {w.pid} ({w.tasks} subtask{w.tasks === 1 ? "" : "s"})
        </span>
      ))}
    </p>
  );
}

function Checkpoints({ jobId }: { jobId: string }) {
  const [{ data }] = useSubscription({ query: CheckpointsSubscription, variables: { jobId } }, (prev: Map<string, CheckpointRow> | undefined, r) => {
    const next = new Map(prev);
    next.set(`${r.jobCheckpoints.runId}/${r.jobCheckpoints.checkpointId}`, r.jobCheckpoints);
    return next;
  });
  const rows = useMemo(() => [...(data?.values() ?? [])].sort((a, b) => b.at - a.at).slice(0, 50), [data]);
  return (
    <section aria-labelledby="checkpoints-title">
      <h2 id="checkpoints-title">Checkpoints</h2>
      {rows.length === 0 ? (
        <p className="muted">None yet.</p>
      ) : (
        <div className="table-wrap">
          <table className="checkpoints">
            <thead>
              <tr>
                <th scope="col">#</th>
                <th scope="col">Completed</th>
                <th scope="col">Duration</th>
                <th scope="col">Alignment</th>
                <th scope="col">Size</th>
                <th scope="col">Then</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((c) => (
                <tr key={`${c.runId}/${c.checkpointId}`} data-checkpoint={c.checkpointId} data-then={c.then}>
                  <th scope="row">{c.checkpointId}</th>
                  <td>{fmtTime(c.at)}</td>
                  <td>{fmtMicros(c.durationMicros)}</td>
                  <td>{fmtMicros(c.alignmentMicros)}</td>
                  <td>{fmtBytes(c.sizeBytes)}</td>
                  <td>{c.then}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function Events({ job }: { job: JobData }) {
  const events = [...job.events].reverse().slice(0, 100);
  return (
    <section aria-labelledby="events-title">
      <h2 id="events-title">Events</h2>
      <ol className="events">
        {events.map((e, i) => (
          <li key={i} className={e.toState === "Failed" || e.toState === "Failing" || e.toState === "Recovering" ? "bad" : ""}>
            <time>{fmtTime(e.at)}</time> <StateBadge state={e.toState} /> <span>{e.reason}</span>
          </li>
        ))}
      </ol>
    </section>
  );
}

function OutputTail({ pipelineId }: { pipelineId: string }) {
  const [{ data }] = useSubscription({ query: PipelineOutput, variables: { pipelineId } }, (prev: string[] | undefined, r) => [...(prev ?? []), ...r.pipelineOutput.lines].slice(-500));
  return (
    <section aria-labelledby="output-title">
      <h2 id="output-title">Output</h2>
      <OutputTable lines={data ?? []} caption="Latest preview rows" max={100} />
    </section>
  );
}
