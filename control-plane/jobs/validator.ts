/**
 * The child process that checks what users submit, away from the control
 * plane: it plans a pipeline's SQL (and masks its secrets), or imports a
 * UDF's module source to see that it defines a UDF. It starts with an empty
 * environment (as the workers' user, when RUNNEL_WORKER_WRAPPER names one)
 * and makes a scratch directory of its own to work in, so code that runs
 * while a module is imported finds no credentials; the control plane bounds
 * its time and memory (see sandbox.ts). `pool` processes serve many requests that carry no UDF
 * code; `once` processes serve one and are killed; `check` processes import
 * one UDF module alone, without the plugins. Arguments: the mode and the
 * project directory whose plugins to load.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildGraph, describeGraph } from "../../core/dataflow/graph.ts";
import { stateIdentities } from "../../core/dataflow/fingerprint.ts";
import { combinable } from "../../core/operators/window-combine.ts";
import { createRegistry } from "../../core/registry/loader.ts";
import { PluginRegistry } from "../../core/registry/registry.ts";
import type { TableDef } from "../../core/plan/logical.ts";
import { typeName } from "../../core/plugin-api/types.ts";
import { formatSqlError, planSql, SqlError, type PlanContext } from "../../core/sql/index.ts";
import { parseStatements } from "../../core/sql/statements.ts";
import { buildTable } from "../../core/sql/tables.ts";
import { envPolicy, filePolicy } from "../security/policies.ts";
import { maskQuery, redactText } from "../security/redact.ts";
import type { QueryTable, SandboxRequest, SandboxResponse } from "./sandbox.ts";
import { loadUdfs, UdfDefinitionError } from "./udf-modules.ts";

process.umask(0o077);
// Made here rather than by the control plane: this process may run as another user.
const scratch = mkdtempSync(join(tmpdir(), "runnel-validation-"));
process.chdir(scratch);
process.on("exit", () => rmSync(scratch, { recursive: true, force: true }));
process.on("SIGTERM", () => process.exit(0));
// The plugins load before the child says it is ready, so that a request finds it warm (a `check` child needs none).
const base: PluginRegistry = process.argv[2] === "check" ? new PluginRegistry() : await createRegistry(process.argv[3] ?? process.cwd());

function describeTable(table: TableDef): QueryTable {
  const fields = [...table.fields, ...table.virtual.map((v) => v.field)];
  return { name: table.name, connector: table.connector ?? null, columns: fields.map((f) => ({ name: f.name, type: typeName(f.type) })) };
}

/**
 * The tables a script declares, even when a later statement is wrong (so an
 * editor can still complete their columns); tables that don't build are left out.
 */
function tablesOfScript(query: string, registry: PluginRegistry, context: PlanContext): QueryTable[] {
  let statements: ReturnType<typeof parseStatements>;
  try {
    statements = parseStatements(query);
  } catch {
    return [];
  }
  const out: QueryTable[] = [];
  for (const s of statements) {
    if (s.kind !== "create_table") continue;
    try {
      out.push(describeTable(buildTable(query, s, registry, context)));
    } catch {
      // A table with a mistake: the diagnostics name it.
    }
  }
  return out;
}

async function handle(request: SandboxRequest): Promise<SandboxResponse> {
  if (request.kind === "udf") {
    try {
      await loadUdfs(new PluginRegistry(), [{ name: request.name, definition: request.definition }], scratch);
      return { ok: true, result: {} };
    } catch (err) {
      const message = err instanceof UdfDefinitionError ? err.message : `UDF '${request.name}' is not valid: ${(err as Error).message}`;
      return { ok: false, error: { message, kind: "option", option: "definition" } };
    }
  }
  const registry = base.clone();
  const { masked, values } = maskQuery(request.query, registry);
  const context: PlanContext = {
    connectionProfile: (name) => request.profiles[name],
    envPolicy: envPolicy(request.envAllowlist),
    files: filePolicy(request.fileRoots),
  };
  try {
    await loadUdfs(registry, request.udfs, scratch);
  } catch (err) {
    if (err instanceof UdfDefinitionError) return { ok: false, error: { message: err.message, kind: "invalid", option: "udfs" }, tables: tablesOfScript(request.query, registry, context) };
    throw err;
  }
  try {
    const plan = planSql(request.query, registry, context);
    const graph = buildGraph(plan, {
      parallelism: request.parallelism,
      sinkMaxParallelism: (table) => (table?.connector ? registry.connector(table.connector)?.sink?.maxParallelism : undefined),
      // As the job will plan it (core/dataflow/job.ts), so the graph shown has its combiners.
      combinable: (agg) => combinable(agg.aggregates, registry),
    });
    return {
      ok: true,
      result: {
        graph: describeGraph(graph),
        tasks: graph.stages.reduce((n, s) => n + s.parallelism, 0),
        nodes: graph.nodes.map((n) => ({ id: n.id, label: n.label, parallelism: n.parallelism, inputs: n.inputs.map((i) => i.id) })),
        tables: [...plan.tables.values()].map(describeTable),
        maskedQuery: masked,
        identities: stateIdentities(graph, registry),
      },
    };
  } catch (err) {
    if (err instanceof SqlError) {
      const pos = err.position(request.query);
      const message = redactText(formatSqlError(err, request.query), values);
      return { ok: false, error: { message, kind: err.option ? "option" : "sql", line: pos?.line, column: pos?.column, option: err.option }, tables: tablesOfScript(request.query, registry, context) };
    }
    return { ok: false, error: { message: redactText(`the query cannot be planned: ${(err as Error).message}`, values), kind: "sql" }, tables: tablesOfScript(request.query, registry, context) };
  }
}

process.on("message", async (request: SandboxRequest) => {
  let response: SandboxResponse;
  try {
    response = await handle(request);
  } catch (err) {
    response = { ok: false, error: { message: `validation failed unexpectedly: ${(err as Error).message}`, kind: "internal" } };
  }
  // A `once` child is killed by the control plane when the answer arrives.
  process.send!(response);
});
// The control plane went away: so does this process.
process.on("disconnect", () => process.exit(0));
process.send!({ ready: true, scratch });
