/**
 * The SQL editor: highlighting, completion of table, column, connector, option
 * and function names, and validation as you type: the server plans the query
 * (validateQuery) and its errors are underlined where they are (line and
 * column), with the planned graph handed to the page.
 */
import { useMemo, useRef } from "react";
import { useClient } from "urql";
import { PostgreSQL, sql } from "@codemirror/lang-sql";
import { linter, type Diagnostic } from "@codemirror/lint";
import type { CompletionContext, CompletionResult } from "@codemirror/autocomplete";
import type { EditorView } from "@codemirror/view";
import { CodeEditor } from "./code-editor.tsx";
import { graphql, type ResultOf } from "../graphql.ts";
import { optionDocs, type Catalog } from "../lib/catalog.ts";

export const ValidateQuery = graphql(`
  query ValidateQuery($sql: String!, $parallelism: Int, $udfs: [String!]) {
    validateQuery(sql: $sql, parallelism: $parallelism, udfs: $udfs) {
      valid
      graph
      tasks
      nodes {
        id
        label
        parallelism
        inputs
      }
      diagnostics {
        message
        line
        column
        option
      }
      tables {
        name
        connector
        columns {
          name
          type
        }
      }
    }
  }
`);

export type Validation = ResultOf<typeof ValidateQuery>["validateQuery"];

/** Where a diagnostic goes: its line and column (1-based), underlining the word there. */
export function diagnosticRange(doc: EditorView["state"]["doc"], line: number | null, column: number | null): { from: number; to: number } {
  if (!line) return { from: 0, to: Math.min(doc.length, doc.line(1).length || 1) };
  const l = doc.line(Math.min(Math.max(line, 1), doc.lines));
  const from = Math.min(l.from + Math.max((column ?? 1) - 1, 0), l.to);
  const rest = doc.sliceString(from, l.to);
  const word = /^("[^"]*"|'[^']*'|[\w.$]+|\S)/.exec(rest)?.[0].length ?? 0;
  if (word > 0) return { from, to: from + word };
  return from > l.from ? { from: from - 1, to: from } : { from, to: Math.min(from + 1, doc.length) };
}

const CONNECTOR_VALUE = /\b(connector|format)\s*=\s*'([\w-]*)$/i;

function extraCompletions(catalog: () => Catalog | null, tables: () => Validation["tables"]) {
  return (ctx: CompletionContext): CompletionResult | null => {
    const cat = catalog();
    if (!cat) return null;
    const line = ctx.state.doc.lineAt(ctx.pos);
    const before = line.text.slice(0, ctx.pos - line.from);
    const value = CONNECTOR_VALUE.exec(before);
    if (value) {
      const list = value[1]!.toLowerCase() === "connector" ? cat.connectors : cat.formats;
      return { from: ctx.pos - value[2]!.length, options: list.map((c) => ({ label: c.name, type: "enum", detail: value[1]!.toLowerCase(), info: c.description ?? undefined })), validFor: /^[\w-]*$/ };
    }
    const word = ctx.matchBefore(/[\w.]+/);
    if (!word && !ctx.explicit) return null;
    const from = word?.from ?? ctx.pos;
    // Inside WITH (...) of a statement: that statement's connector's options.
    const statementStart = ctx.state.doc.sliceString(0, ctx.pos).lastIndexOf(";") + 1;
    const statement = ctx.state.doc.sliceString(statementStart, ctx.pos);
    if (/\bWITH\s*\([^)]*$/i.test(statement)) {
      const connector = /\bconnector\s*=\s*'([\w-]+)'/i.exec(statement)?.[1];
      const schema = cat.connectors.find((c) => c.name === connector)?.optionsSchema;
      const options = [
        { label: "connector", type: "property", detail: "option" },
        { label: "format", type: "property", detail: "option" },
        ...optionDocs(schema).map((o) => ({ label: o.name.includes(".") ? `'${o.name}'` : o.name, type: "property", detail: `${o.type}${o.required ? ", required" : ""}`, info: o.description ?? undefined })),
      ];
      return { from, options, validFor: /^[\w.']*$/ };
    }
    const fns = [...cat.functions.map((f) => ({ name: f.name, kind: f.kind })), ...cat.udfs.map((u) => ({ name: u.name, kind: "UDF" }))];
    // Unqualified column names of every declared table (the SQL language completes `table.` itself).
    const columns = new Map<string, string>();
    for (const t of tables()) for (const c of t.columns) if (!columns.has(c.name)) columns.set(c.name, `${t.name}.${c.name} ${c.type}`);
    if (word?.text.includes(".")) return null;
    return {
      from,
      options: [
        ...[...columns].map(([name, detail]) => ({ label: name, type: "property", detail })),
        ...fns.map((f) => ({ label: f.name, type: "function", detail: f.kind.toLowerCase(), apply: `${f.name}(`, boost: -1 })),
      ],
      validFor: /^\w*$/,
    };
  };
}

export interface SqlEditorProps {
  value: string;
  onChange(sql: string): void;
  parallelism: number;
  udfs: string[] | null;
  catalog: Catalog | null;
  onValidated?(v: Validation | null): void;
  readOnly?: boolean;
  label?: string;
  autoFocus?: boolean;
}

export function SqlEditor(props: SqlEditorProps) {
  const client = useClient();
  // The linter and completion read the latest props through refs: the editor is built once.
  const latest = useRef(props);
  latest.current = props;
  const tables = useRef<Validation["tables"]>([]);

  const extensions = useMemo(() => {
    if (props.readOnly) return [];
    return [
      PostgreSQL.language.data.of({ autocomplete: extraCompletions(() => latest.current.catalog, () => tables.current) }),
      linter(
        async (view) => {
          const text = view.state.doc.toString();
          if (!text.trim()) {
            latest.current.onValidated?.(null);
            return [];
          }
          const { parallelism, udfs } = latest.current;
          const result = await client.query(ValidateQuery, { sql: text, parallelism, udfs }, { requestPolicy: "network-only" }).toPromise();
          // A newer edit has started another check; this one's answer is stale.
          if (view.state.doc.toString() !== text) return [];
          const v = result.data?.validateQuery ?? null;
          if (!v) {
            latest.current.onValidated?.(null);
            return [{ from: 0, to: 0, severity: "warning", message: `could not validate: ${result.error?.message ?? "no answer"}` }];
          }
          tables.current = v.tables.length ? v.tables : tables.current;
          latest.current.onValidated?.(v);
          return v.diagnostics.map((d): Diagnostic => ({ ...diagnosticRange(view.state.doc, d.line ?? null, d.column ?? null), severity: "error", message: d.message }));
        },
        { delay: 350 },
      ),
    ];
  }, [client, props.readOnly]);

  // Table and column completion from the tables the script declares.
  const schemaTables = useSchemaKey(tables.current);
  const dynamic = useMemo(
    () => sql({ dialect: PostgreSQL, upperCaseKeywords: true, schema: Object.fromEntries(schemaTables.map((t) => [t.name, t.columns.map((c) => ({ label: c.name, type: "property", detail: c.type }))])) }),
    [schemaTables],
  );

  return <CodeEditor value={props.value} onChange={props.onChange} extensions={extensions} dynamic={dynamic} readOnly={props.readOnly} label={props.label ?? "SQL query"} minHeight="16rem" autoFocus={props.autoFocus} />;
}

/** What validation as you type found: valid (with its task count), or each error at its line and column. Announced politely. */
export function ValidationStatus(props: { id: string; validation: Validation | null }) {
  const { validation } = props;
  return (
    <div id={props.id} className="diagnostics" aria-live="polite">
      {validation === null && <p className="muted">Validating as you type…</p>}
      {validation?.valid && (
        <p className="ok-text" data-valid="true">
          Valid: {validation.tasks} task{validation.tasks === 1 ? "" : "s"}.
        </p>
      )}
      {(validation?.diagnostics ?? []).map((d, i) => (
        <p key={i} className="error diagnostic" data-line={d.line ?? ""} data-column={d.column ?? ""}>
          {d.line ? `Line ${d.line}, column ${d.column}: ` : ""}
          {/* The server's message repeats the position and ends with a code frame; keep the frame's lines. */}
          {d.message.replace(/^error at line \d+, column \d+: /, "")}
        </p>
      ))}
    </div>
  );
}

/** The same array object while the tables' names and columns stay the same, so the editor is not reconfigured on every keystroke. */
function useSchemaKey(tables: Validation["tables"]) {
  const last = useRef<{ key: string; tables: Validation["tables"] }>({ key: "", tables: [] });
  const key = JSON.stringify(tables);
  if (key !== last.current.key) last.current = { key, tables };
  return last.current.tables;
}
