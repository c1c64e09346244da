/**
 * A new pipeline from SQL: the editor validates as you type (errors at their
 * line and column) and shows the planned dataflow graph; a preview runs a bare
 * SELECT and streams its rows into a table; the connectors' options are at hand.
 */
import { useEffect, useRef, useState, type FormEvent } from "react";
import { useMutation, useSubscription } from "urql";
import { useLocation } from "wouter";
import { graphql } from "../graphql.ts";
import { SqlEditor, ValidationStatus, type Validation } from "../components/sql-editor.tsx";
import { DataflowGraph } from "../components/dataflow-graph.tsx";
import { OptionsTable } from "../components/options-table.tsx";
import { OutputTable } from "../components/output-table.tsx";
import { useCatalog, optionDocs } from "../lib/catalog.ts";

const EXAMPLE = `CREATE TABLE impulse WITH (
  connector = 'impulse',
  event_rate = '100'
);

SELECT counter, subtask_index
FROM impulse
WHERE counter % 10 = 0;
`;

export const CreatePipeline = graphql(`
  mutation CreatePipeline($input: CreatePipelineInput!) {
    createPipeline(input: $input) {
      __typename
      ... on PipelinePayload {
        pipeline {
          id
          name
        }
      }
      ... on SqlError {
        message
        line
        column
      }
      ... on OptionError {
        message
        option
        line
        column
      }
      ... on UserError {
        message
      }
    }
  }
`);

const StopPipeline = graphql(`
  mutation StopPreview($id: ID!) {
    stopPipeline(input: { id: $id, mode: immediate }) {
      __typename
    }
  }
`);

const DeletePipeline = graphql(`
  mutation DeletePreview($id: ID!) {
    deletePipeline(input: { id: $id }) {
      __typename
      ... on UserError {
        message
      }
    }
  }
`);

export const PipelineOutput = graphql(`
  subscription PipelineOutput($pipelineId: ID!) {
    pipelineOutput(pipelineId: $pipelineId) {
      lines
    }
  }
`);

const PreviewJob = graphql(`
  subscription PreviewJob($pipelineId: ID!) {
    jobUpdates(pipelineId: $pipelineId) {
      job {
        id
        state
        failureMessage
      }
    }
  }
`);

/** A query writes somewhere other than the preview output when it has a sink that is not "preview output". */
const writesToSinks = (v: Validation | null) => !!v?.nodes?.some((n) => n.id.endsWith("-sink") && n.label !== "preview output");

export function NewPipelinePage() {
  const [, navigate] = useLocation();
  const { catalog } = useCatalog();
  const [sqlText, setSql] = useState(EXAMPLE);
  const [name, setName] = useState("");
  const [parallelism, setParallelism] = useState(1);
  const [intervalS, setIntervalS] = useState(10);
  const [udfs, setUdfs] = useState<string[]>([]);
  const [validation, setValidation] = useState<Validation | null>(null);
  const [connector, setConnector] = useState("impulse");
  const [createState, create] = useMutation(CreatePipeline);
  const [problem, setProblem] = useState<string | null>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    setProblem(null);
    const r = await create({ input: { name: name.trim(), query: sqlText, parallelism, checkpointIntervalMicros: Math.round(intervalS * 1_000_000), udfs } });
    const out = r.data?.createPipeline;
    if (out?.__typename === "PipelinePayload") navigate(`/pipelines/${out.pipeline.id}`);
    else if (out && "message" in out) setProblem(out.message);
    else setProblem(r.error?.message ?? "the pipeline was not created");
  }

  const connectorInfo = catalog?.connectors.find((c) => c.name === connector);

  return (
    <section aria-labelledby="new-title" className="new-pipeline">
      <h1 id="new-title">New pipeline</h1>
      <div className="split">
        <form onSubmit={submit} className="editor-pane" aria-describedby="validation-status">
          <div className="field">
            <label htmlFor="pipeline-name">Name</label>
            <input id="pipeline-name" required value={name} onChange={(e) => setName(e.target.value)} placeholder="e.g. clicks per minute" />
          </div>
          <div className="field-row">
            <div className="field">
              <label htmlFor="parallelism">Parallelism</label>
              <input id="parallelism" type="number" min={1} max={1024} required value={parallelism} onChange={(e) => setParallelism(Number(e.target.value) || 1)} />
            </div>
            <div className="field">
              <label htmlFor="interval">Checkpoint every (s)</label>
              <input id="interval" type="number" min={0.1} step={0.1} required value={intervalS} onChange={(e) => setIntervalS(Number(e.target.value) || 10)} />
            </div>
          </div>
          {catalog && catalog.udfs.length > 0 && (
            <fieldset className="field">
              <legend>UDFs the query uses</legend>
              {catalog.udfs.map((u) => (
                <label key={u.id} className="check">
                  <input type="checkbox" checked={udfs.includes(u.name)} onChange={(e) => setUdfs(e.target.checked ? [...udfs, u.name] : udfs.filter((n) => n !== u.name))} /> {u.name}
                </label>
              ))}
            </fieldset>
          )}
          <div className="field">
            <span className="label" id="sql-label">
              Query <span className="muted">(Ctrl-Space completes; Escape then Tab leaves the editor)</span>
            </span>
            <SqlEditor value={sqlText} onChange={setSql} parallelism={parallelism} udfs={udfs.length ? udfs : null} catalog={catalog} onValidated={setValidation} label="SQL query" />
          </div>
          <ValidationStatus id="validation-status" validation={validation} />
          {problem && (
            <p role="alert" className="error">
              {problem}
            </p>
          )}
          <div className="actions">
            <button type="submit" className="primary" disabled={createState.fetching || !name.trim() || !validation?.valid}>
              {createState.fetching ? "Creating…" : "Create pipeline"}
            </button>
          </div>
          {validation?.valid && validation.nodes && <DataflowGraph nodes={validation.nodes} caption="The planned dataflow graph" />}
          <Preview sql={sqlText} validation={validation} parallelism={parallelism} udfs={udfs} />
        </form>
        <aside className="side-pane" aria-labelledby="connectors-title">
          <h2 id="connectors-title">Connector options</h2>
          <label htmlFor="connector-pick">Connector</label>
          <select id="connector-pick" value={connector} onChange={(e) => setConnector(e.target.value)}>
            {catalog?.connectors.map((c) => (
              <option key={c.name} value={c.name}>
                {c.name} ({[c.source && "source", c.sink && "sink"].filter(Boolean).join(", ")})
              </option>
            ))}
          </select>
          {connectorInfo && (
            <>
              {connectorInfo.description && <p>{connectorInfo.description}</p>}
              <button type="button" onClick={() => setSql(`${tableTemplate(connectorInfo.name, connectorInfo.optionsSchema)}\n\n${sqlText}`)}>
                Insert a CREATE TABLE for {connectorInfo.name}
              </button>
              <OptionsTable schema={connectorInfo.optionsSchema} caption={`Options of ${connectorInfo.name}`} />
            </>
          )}
        </aside>
      </div>
    </section>
  );
}

function tableTemplate(connector: string, schema: unknown): string {
  const required = optionDocs(schema).filter((o) => o.required);
  const quote = (k: string) => (/^[a-z_][a-z0-9_]*$/.test(k) ? k : `'${k}'`);
  const options = [`connector = '${connector}'`, ...required.map((o) => `${quote(o.name)} = '${o.values?.[0] ?? ""}'`)];
  return `CREATE TABLE ${connector.replace(/\W/g, "_")}_table WITH (\n  ${options.join(",\n  ")}\n);`;
}

/**
 * A preview runs the query as a short-lived pipeline with frequent checkpoints
 * (its rows are published when a checkpoint completes) and removes it after.
 * Only a bare SELECT: a query with INSERT INTO would write to its real sinks.
 */
function Preview(props: { sql: string; validation: Validation | null; parallelism: number; udfs: string[] }) {
  const [, create] = useMutation(CreatePipeline);
  const [, stop] = useMutation(StopPipeline);
  const [, remove] = useMutation(DeletePipeline);
  const [pipelineId, setPipelineId] = useState<string | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [{ data: out }] = useSubscription({ query: PipelineOutput, variables: { pipelineId: pipelineId ?? "" }, pause: !pipelineId }, (prev: string[] | undefined, r) => [
    ...(prev ?? []),
    ...r.pipelineOutput.lines,
  ].slice(-1000));
  const [{ data: job }] = useSubscription({ query: PreviewJob, variables: { pipelineId: pipelineId ?? "" }, pause: !pipelineId });
  const running = useRef<string | null>(null);
  running.current = pipelineId;

  const end = async (id: string) => {
    await stop({ id });
    // Deleting needs the job stopped; it is within moments of an immediate stop.
    for (let i = 0; i < 40; i++) {
      const r = await remove({ id });
      if (r.data?.deletePipeline.__typename !== "ConflictError") return;
      await new Promise((res) => setTimeout(res, 250));
    }
  };
  useEffect(() => () => void (running.current && end(running.current)), []);

  const sinks = writesToSinks(props.validation);
  async function start() {
    setProblem(null);
    const r = await create({
      input: { name: `preview ${new Date().toLocaleTimeString()}`, query: props.sql, parallelism: props.parallelism, checkpointIntervalMicros: 1_000_000, udfs: props.udfs },
    });
    const p = r.data?.createPipeline;
    if (p?.__typename === "PipelinePayload") setPipelineId(p.pipeline.id);
    else setProblem(p && "message" in p ? p.message : (r.error?.message ?? "the preview did not start"));
  }
  async function finish() {
    const id = pipelineId;
    setPipelineId(null);
    if (id) await end(id);
  }
  const state = job?.jobUpdates.job.state;
  return (
    <section aria-labelledby="preview-title" className="preview">
      <h2 id="preview-title">Preview</h2>
      {sinks && <p className="muted">Preview runs only a bare SELECT: this query writes to its sinks (INSERT INTO), which a preview must not do.</p>}
      <div className="actions">
        {!pipelineId ? (
          <button type="button" onClick={start} disabled={!props.validation?.valid || sinks}>
            Run preview
          </button>
        ) : (
          <button type="button" onClick={finish}>
            Stop preview
          </button>
        )}
        {pipelineId && <span role="status">preview job: {state ?? "starting"}</span>}
      </div>
      {job?.jobUpdates.job.failureMessage && <p className="error">{job.jobUpdates.job.failureMessage}</p>}
      {problem && <p className="error">{problem}</p>}
      {pipelineId && <OutputTable lines={out ?? []} caption="Preview rows" />}
    </section>
  );
}
