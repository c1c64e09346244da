/**
 * Editing a running pipeline's query (GraphQL updatePipeline, REST PATCH): the
 * job takes a checkpoint and restarts with the new query, keeping the state of
 * the operators the edit left alone; an edit that changes an operator holding
 * state is refused, naming it, and nothing changes; ignoreState starts afresh.
 */
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { eventually, testControlPlane, stoppedAfterAll, type TestControlPlane, CREATE_PIPELINE } from "../../kit/control-plane.ts";

setDefaultTimeout(120_000);
const started = stoppedAfterAll<TestControlPlane>();

const impulse = "CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '200', message_count = '600');";
const counts = (where: string, key = "counter % 6") => `${impulse}\nSELECT ${key} AS k, count(*) AS n FROM impulse WHERE ${where} GROUP BY k;`;

async function start(cp: TestControlPlane, query: string) {
  const r = await cp.gql(CREATE_PIPELINE, { input: { name: "edited", query, checkpointIntervalMicros: 200_000 } });
  const pipelineId = r.createPipeline.pipeline.id as string;
  const jobId = r.createPipeline.pipeline.jobs[0].id as string;
  const lines: string[] = [];
  const it = cp.ws().iterate({ query: `subscription { pipelineOutput(pipelineId: "${pipelineId}") { lines } }` });
  void (async () => {
    for await (const m of it) lines.push(...(m.data as any).pipelineOutput.lines);
  })().catch(() => {});
  const job = async () => (await cp.gql(`{ job(id: "${jobId}") { state events { toState reason } checkpoints { checkpointId } } }`)).job;
  await eventually("running with a checkpoint and output", async () => {
    const j = await job();
    return j.state === "Running" && j.checkpoints.length > 0 && lines.length > 0;
  });
  return { pipelineId, jobId, lines, job };
}

/** The latest count per key in the output's change stream. */
function latest(lines: string[]): Map<number, number> {
  const out = new Map<number, number>();
  for (const l of lines) {
    const c = JSON.parse(l);
    if (c.after) out.set(c.after.k, c.after.n);
    else if (c.op === "d") out.delete(c.before.k);
  }
  return out;
}

const UPDATE = `mutation ($input: UpdatePipelineInput!) { updatePipeline(input: $input) { __typename ... on PipelinePayload { pipeline { query version } } ... on UserError { message } } }`;

describe("editing a running pipeline's query", () => {
  test("an edited filter keeps the aggregate's state: every event counted once across the restart", async () => {
    const cp = await testControlPlane("pglite");
    started.push(cp);
    const { jobId, lines, job } = await start(cp, counts("counter >= 0"));
    const r = await cp.gql(UPDATE, { input: { id: (await cp.gql(`{ job(id: "${jobId}") { pipelineId } }`)).job.pipelineId, query: counts("counter < 1000000") } });
    expect(r.updatePipeline.__typename).toBe("PipelinePayload");
    expect(r.updatePipeline.pipeline.query).toContain("counter < 1000000");
    await eventually("Finished", async () => (await job()).state === "Finished", 90_000);
    const events = (await job()).events;
    expect(events.map((e: any) => e.toState)).toContain("Restarting");
    expect(events.some((e: any) => /from checkpoint \d+/.test(e.reason))).toBe(true);
    // 600 events, 100 per key: had the restart lost the aggregate's state, the counts would be short.
    await eventually("the final counts", () => {
      const m = latest(lines);
      return m.size === 6 && [...m.values()].every((n) => n === 100);
    });
  });

  test("a changed grouping is refused naming the operator (GraphQL and REST); ignoreState starts afresh", async () => {
    const cp = await testControlPlane("pglite");
    started.push(cp);
    const { pipelineId, job } = await start(cp, counts("counter >= 0"));
    const changed = counts("counter >= 0", "counter % 4");
    const r = await cp.gql(UPDATE, { input: { id: pipelineId, query: changed } });
    expect(r.updatePipeline.__typename).not.toBe("PipelinePayload");
    expect(r.updatePipeline.message).toMatch(/cannot keep the job's state \(checkpoint \d+ of job .*operator ".*aggregate.*" holds state but changed or was removed/i);
    expect(r.updatePipeline.message).toContain("ignoreState: true");

    const res = await fetch(`${cp.url}/api/v1/pipelines/${pipelineId}`, { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: changed }) });
    expect(res.status).toBe(409);
    expect(((await res.json()) as any).error).toContain("holds state but changed");
    // Nothing changed, and the job ran on.
    expect((await cp.gql(`{ pipeline(id: "${pipelineId}") { query version } }`)).pipeline).toEqual({ query: counts("counter >= 0"), version: 1 });
    expect((await job()).events.map((e: any) => e.toState)).not.toContain("Restarting");

    const fresh = await fetch(`${cp.url}/api/v1/pipelines/${pipelineId}`, { method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ query: changed, ignoreState: true }) });
    expect(fresh.status).toBe(200);
    await eventually("restarted from scratch", async () => (await job()).events.some((e: any) => e.reason.includes("ignoring state") || e.reason.includes("from scratch")), 60_000);
  });
});
