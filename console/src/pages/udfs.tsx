/**
 * UDFs and UDAFs stored in the control plane: their source, and an editor for
 * new ones that checks JavaScript/TypeScript syntax as you type; the server
 * checks the module itself when it is saved.
 */
import { useMemo, useState, type FormEvent } from "react";
import { useMutation, useQuery } from "urql";
import { javascript } from "@codemirror/lang-javascript";
import { syntaxTree } from "@codemirror/language";
import { linter, type Diagnostic } from "@codemirror/lint";
import { graphql } from "../graphql.ts";
import { CodeEditor } from "../components/code-editor.tsx";
import { fmtTime } from "../lib/format.ts";
import { useViewer } from "../lib/viewer.tsx";

const UdfsQuery = graphql(`
  query Udfs {
    udfs {
      id
      name
      description
      definition
      createdAt
    }
  }
`);
const CreateUdf = graphql(`
  mutation CreateUdf($input: CreateUdfInput!) {
    createUdf(input: $input) {
      __typename
      ... on UserError {
        message
      }
      ... on OptionError {
        line
        column
      }
    }
  }
`);
const DeleteUdf = graphql(`
  mutation DeleteUdf($id: ID!) {
    deleteUdf(input: { id: $id }) {
      __typename
      ... on UserError {
        message
      }
    }
  }
`);

const TEMPLATE = `// A UDF: args and returns are SQL types; fn gets and returns plain values.
export default {
  args: ["BIGINT"],
  returns: "BIGINT",
  fn: (x) => x * 3,
};
// A UDAF has init/add/result instead of fn:
// export default { args: ["BIGINT"], returns: "BIGINT", init: () => 0, add: (s, x) => s + x, result: (s) => s };
`;

/** Syntax errors from the parser's error nodes: instant, and no code is run in the browser. */
const syntaxLinter = linter((view) => {
  const out: Diagnostic[] = [];
  syntaxTree(view.state).iterate({
    enter(node) {
      if (node.type.isError) out.push({ from: node.from, to: Math.max(node.to, Math.min(node.from + 1, view.state.doc.length)), severity: "error", message: "syntax error" });
    },
  });
  return out;
});

export function UdfsPage() {
  const [{ data, error }, refetch] = useQuery({ query: UdfsQuery });
  const [, remove] = useMutation(DeleteUdf);
  const { canEdit } = useViewer();
  const [message, setMessage] = useState<string | null>(null);
  return (
    <section aria-labelledby="udfs-title">
      <h1 id="udfs-title">UDFs and UDAFs</h1>
      {error && <p role="alert" className="error">{error.message}</p>}
      {data && data.udfs.length === 0 && <p>None stored yet.</p>}
      {data?.udfs.map((u) => (
        <details key={u.id} className="entry">
          <summary>
            <code>{u.name}</code> <span className="muted">{u.description ?? ""} · {fmtTime(u.createdAt)}</span>
          </summary>
          <CodeEditor value={u.definition} readOnly label={`Source of ${u.name}`} extensions={[javascript({ typescript: true })]} minHeight="4rem" />
          {canEdit && (
            <button
              type="button"
              className="danger"
              onClick={async () => {
                const r = await remove({ id: u.id });
                const out = r.data?.deleteUdf;
                setMessage(out && "message" in out && out.message ? out.message : null);
                refetch({ requestPolicy: "network-only" });
              }}
            >
              Delete {u.name}
            </button>
          )}
        </details>
      ))}
      {message && <p role="alert" className="error">{message}</p>}
      {canEdit && <NewUdf onCreated={() => refetch({ requestPolicy: "network-only" })} />}
    </section>
  );
}

function NewUdf(props: { onCreated(): void }) {
  const [name, setName] = useState("");
  const [description, setDescription] = useState("");
  const [definition, setDefinition] = useState(TEMPLATE);
  const [state, create] = useMutation(CreateUdf);
  const [problem, setProblem] = useState<string | null>(null);
  const extensions = useMemo(() => [javascript({ typescript: true }), syntaxLinter], []);
  async function submit(e: FormEvent) {
    e.preventDefault();
    setProblem(null);
    const r = await create({ input: { name: name.trim(), description: description.trim() || null, definition } });
    const out = r.data?.createUdf;
    if (out?.__typename === "UdfPayload") {
      setName("");
      setDescription("");
      setDefinition(TEMPLATE);
      props.onCreated();
    } else setProblem(out && "message" in out ? out.message : (r.error?.message ?? "not saved"));
  }
  return (
    <form onSubmit={submit} aria-labelledby="new-udf-title" className="card">
      <h2 id="new-udf-title">New UDF or UDAF</h2>
      <div className="field">
        <label htmlFor="udf-name">Name (as called in SQL)</label>
        <input id="udf-name" required pattern="[A-Za-z_][A-Za-z0-9_]*" value={name} onChange={(e) => setName(e.target.value)} />
      </div>
      <div className="field">
        <label htmlFor="udf-description">Description</label>
        <input id="udf-description" value={description} onChange={(e) => setDescription(e.target.value)} />
      </div>
      <div className="field">
        <span className="label">Module source</span>
        <CodeEditor value={definition} onChange={setDefinition} extensions={extensions} label="UDF module source" />
      </div>
      {problem && (
        <p role="alert" className="error">
          {problem}
        </p>
      )}
      <button type="submit" className="primary" disabled={state.fetching || !name.trim()}>
        Save
      </button>
    </form>
  );
}
