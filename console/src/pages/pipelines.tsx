/** Pipelines: each with its job's state, parallelism, uptime and live input/output rates. */
import { useState } from "react";
import { useQuery, useSubscription } from "urql";
import { Link } from "wouter";
import { graphql, type ResultOf } from "../graphql.ts";
import { StateBadge, isTerminal } from "../components/state-badge.tsx";
import { useJobMetrics } from "../lib/metrics.ts";
import { fmtDurationMs, fmtRate, fmtTime } from "../lib/format.ts";
import { useNow } from "../lib/now.ts";
import { useViewer } from "../lib/viewer.tsx";

const PipelinesQuery = graphql(`
  query Pipelines($after: String) {
    pipelines(first: 50, after: $after) {
      edges {
        node {
          id
          name
          parallelism
          stop
          createdAt
          jobs {
            id
            state
            parallelism
            startTime
            finishTime
            restarts
          }
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

/** What the console shows of a job, wherever it reads one (unmasked: the fields are read directly). */
export const JobFields = graphql(`
  fragment JobFields on Job @_unmask {
    id
    state
    runningDesired
    runId
    parallelism
    tasks
    restarts
    startTime
    finishTime
    failureMessage
    placement {
      task
      worker
      host
      pid
    }
  }
`);

export const JobUpdatesSubscription = graphql(
  `
    subscription JobUpdates($pipelineId: ID!) {
      jobUpdates(pipelineId: $pipelineId) {
        reason
        job {
          ...JobFields
        }
      }
    }
  `,
  [JobFields],
);

export function PipelinesPage() {
  // Pages of 50, newest first (the API's query cost limit keeps pages small).
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const after = cursors[cursors.length - 1] ?? null;
  const [{ data, fetching, error }] = useQuery({ query: PipelinesQuery, variables: { after }, requestPolicy: "cache-and-network" });
  const pageInfo = data?.pipelines.pageInfo;
  const { canEdit } = useViewer();
  const rows = data?.pipelines.edges.map((e) => e.node) ?? [];
  return (
    <section aria-labelledby="pipelines-title">
      <div className="page-head">
        <h1 id="pipelines-title">Pipelines</h1>
        {canEdit && (
          <Link href="/new" className="button primary">
            New pipeline
          </Link>
        )}
      </div>
      {error && <p role="alert" className="error">{error.message}</p>}
      {!data && fetching && <p role="status">Loading…</p>}
      {data && rows.length === 0 && <p>No pipelines yet.{canEdit ? " Create one from a SQL query." : ""}</p>}
      {rows.length > 0 && (
        <div className="table-wrap">
          <table className="pipelines">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">State</th>
                <th scope="col">Parallelism</th>
                <th scope="col">Uptime</th>
                <th scope="col">Input</th>
                <th scope="col">Output</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((p) => (
                <PipelineRow key={p.id} pipeline={p} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      {(cursors.length > 1 || pageInfo?.hasNextPage) && (
        <div className="actions">
          <button type="button" disabled={cursors.length === 1} onClick={() => setCursors(cursors.slice(0, -1))}>
            Newer
          </button>
          <button type="button" disabled={!pageInfo?.hasNextPage} onClick={() => pageInfo?.endCursor && setCursors([...cursors, pageInfo.endCursor])}>
            Older
          </button>
        </div>
      )}
    </section>
  );
}

type Row = ResultOf<typeof PipelinesQuery>["pipelines"]["edges"][number]["node"];

function PipelineRow(props: { pipeline: Row }) {
  const p = props.pipeline;
  const [{ data: live }] = useSubscription({ query: JobUpdatesSubscription, variables: { pipelineId: p.id } });
  const job = live?.jobUpdates.job ?? p.jobs[0] ?? null;
  const running = job !== null && !isTerminal(job.state);
  const metrics = useJobMetrics(running ? job.id : null);
  const now = useNow();
  const uptime = running && job.startTime ? now - job.startTime / 1000 : null;
  return (
    <tr data-pipeline={p.id}>
      <th scope="row">
        <Link href={`/pipelines/${p.id}`}>{p.name}</Link>
      </th>
      <td>
        <StateBadge state={job?.state} />
      </td>
      <td>{job?.parallelism ?? p.parallelism}</td>
      <td>{uptime === null ? "—" : fmtDurationMs(uptime)}</td>
      <td>{running ? fmtRate(metrics?.inRate) : "—"}</td>
      <td>{running ? fmtRate(metrics?.outRate) : "—"}</td>
      <td>{fmtTime(p.createdAt)}</td>
    </tr>
  );
}
