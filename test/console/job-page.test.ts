/**
 * The job page in a real browser (Chromium) against a real control plane on
 * PGlite, for a pipeline at parallelism 2 writing to a real sink (a preview
 * runs in one process): the page shows which worker process (index, host,
 * pid) runs each operator's subtasks, as the API places them; and the query
 * is edited from the page: a changed grouping is refused naming the operator
 * holding state (starting from scratch is offered explicitly), a changed
 * filter restarts the job with the new query from its checkpoint.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Page } from "playwright-core";
import { launchBrowser, type TestBrowser } from "../kit/browser.ts";
import { CREATE_PIPELINE, eventually, testControlPlane, type TestControlPlane } from "../kit/control-plane.ts";

setDefaultTimeout(120_000);

let cp: TestControlPlane;
let browser: TestBrowser;
let page: Page & { errors: string[] };
let pipelineId = "";

const query = (where: string, key = "counter % 6") => `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '100');
CREATE TABLE counts (k BIGINT, n BIGINT) WITH (connector = 'blackhole');
INSERT INTO counts SELECT ${key} AS k, count(*) AS n FROM impulse WHERE ${where} GROUP BY k;`;
const FIRST = query("counter >= 0");

beforeAll(async () => {
  // Two worker processes for a job at parallelism 2, whatever this machine's core count.
  [cp, browser] = await Promise.all([testControlPlane("pglite", { jobWorkers: 2 }), launchBrowser()]);
  page = await browser.page(cp.url);
  const r = await cp.gql(CREATE_PIPELINE, { input: { name: "counts by key", query: FIRST, parallelism: 2, checkpointIntervalMicros: 500_000 } });
  expect(r.createPipeline.__typename).toBe("PipelinePayload");
  pipelineId = r.createPipeline.pipeline.id;
});
afterAll(async () => {
  await browser?.close();
  await cp?.stop();
});

const jobState = (p: Page) => p.locator(".facts [data-state]").first().getAttribute("data-state");

type Placement = { task: string; worker: number; host: string; pid: number };
const apiPlacement = async (): Promise<Placement[] | null> => (await cp.gql(`{ pipeline(id: "${pipelineId}") { jobs { state placement { task worker host pid } } } }`)).pipeline.jobs[0].placement;

/** The pids the operator table shows for an operator's subtasks, by subtask index. */
async function shownPids(p: Page, kind: string): Promise<number[]> {
  const items = p.locator(`tr[data-operator$="-${kind}"] td[data-metric="placement"] li`);
  const out: number[] = [];
  for (const li of await items.all()) out[Number(await li.getAttribute("data-subtask"))] = Number(await li.getAttribute("data-pid"));
  return out;
}

/** The API's pid for each subtask of the stage the graph text puts this operator in. */
async function expectedPids(kind: string): Promise<number[]> {
  const { pipeline } = await cp.gql(`{ pipeline(id: "${pipelineId}") { query parallelism } }`);
  const { validateQuery } = await cp.gql(`query ($sql: String!, $p: Int) { validateQuery(sql: $sql, parallelism: $p) { graph } }`, { sql: pipeline.query, p: pipeline.parallelism });
  let stage = "";
  let found = "";
  for (const line of (validateQuery.graph as string).split("\n")) {
    if (line.startsWith("stage-")) stage = line.split(" ")[0]!;
    else if (new RegExp(`^\\s+\\d+-${kind}:`).test(line)) found = stage;
  }
  const out: number[] = [];
  for (const p of (await apiPlacement()) ?? []) if (p.task.startsWith(`${found}/`)) out[Number(p.task.split("/")[1])] = p.pid;
  return out;
}

async function replaceEditorText(p: Page, text: string) {
  await p.locator(".cm-content").first().click();
  await p.keyboard.press("Control+A");
  await p.keyboard.press("Delete");
  await p.keyboard.insertText(text);
}

describe("the job page", () => {
  test("shows the worker process (index, host, pid) each operator's subtasks run on", async () => {
    await page.goto(`/pipelines/${pipelineId}`);
    await eventually("the job to run", async () => (await jobState(page)) === "Running", 60_000);
    for (const kind of ["source", "updating_aggregate", "sink"]) {
      const pids = await eventually(`two placed subtasks of the ${kind}`, async () => {
        const shown = await shownPids(page, kind);
        return shown.length === 2 && shown.every((n) => n > 0) ? shown : undefined;
      });
      // Two subtasks in two distinct processes, as the API places them, and both processes alive.
      expect(new Set(pids).size).toBe(2);
      expect(pids).toEqual(await expectedPids(kind));
      for (const pid of pids) expect(() => process.kill(pid, 0)).not.toThrow();
    }
    const workers = page.getByTestId("workers");
    expect(await workers.textContent()).toContain("Runs in 2 worker processes");
    expect(await workers.locator("[data-pid]").count()).toBe(2);
    expect(page.errors).toEqual([]);
  });

  test("an edit that changes the grouping is refused, naming the operator holding state", async () => {
    // The refusal needs a checkpoint holding the aggregate's state.
    await page.locator("tr[data-checkpoint]").first().waitFor({ timeout: 60_000 });
    await page.getByRole("button", { name: "Edit query" }).click();
    await replaceEditorText(page, query("counter >= 0", "counter % 4"));
    await page.locator('.query-edit [data-valid="true"]').waitFor();
    await page.getByRole("button", { name: "Apply edit" }).click();
    const refusal = page.locator(".query-edit [role=alert]");
    await refusal.waitFor();
    expect(await refusal.textContent()).toMatch(/operator "[^"]*aggregate[^"]*" holds state but changed/i);
    // Starting from scratch is offered explicitly; the edit did not happen.
    expect(await page.getByRole("button", { name: "Apply, starting from scratch" }).isVisible()).toBe(true);
    expect((await cp.gql(`{ pipeline(id: "${pipelineId}") { version query } }`)).pipeline).toEqual({ version: 1, query: FIRST });
    expect(await jobState(page)).toBe("Running");
  });

  test("an edited filter restarts the job with the new query, keeping its state", async () => {
    const before = await apiPlacement();
    const edited = query("counter < 1000000000");
    await replaceEditorText(page, edited);
    await page.locator('.query-edit [data-valid="true"]').waitFor();
    await page.getByRole("button", { name: "Apply edit" }).click();
    await page.locator('.events [data-state="Restarting"]').first().waitFor({ timeout: 60_000 });
    await eventually("the job to run the new query", async () => (await jobState(page)) === "Running" && (await page.locator(".query .cm-content").textContent())?.includes("counter < 1000000000"), 60_000);
    await page.getByText(/version 2 ·/).waitFor();
    await page.getByText(/running with parallelism 2 in 2 worker processes, from checkpoint \d+/).first().waitFor();
    const stored = (await cp.gql(`{ pipeline(id: "${pipelineId}") { version query } }`)).pipeline;
    expect(stored).toEqual({ version: 2, query: edited });
    // The placement follows the restarted job's processes.
    await eventually("the new placement on the page", async () => {
      const now = await apiPlacement();
      return now !== null && JSON.stringify(now) !== JSON.stringify(before) && JSON.stringify(await shownPids(page, "source")) === JSON.stringify(await expectedPids("source"));
    });
    expect(page.errors).toEqual([]);
  });

  test("a refused edit can start from scratch instead, when asked explicitly", async () => {
    await page.locator("tr[data-checkpoint]").first().waitFor({ timeout: 60_000 });
    await page.getByRole("button", { name: "Edit query" }).click();
    const regrouped = query("counter < 1000000000", "counter % 4");
    await replaceEditorText(page, regrouped);
    await page.locator('.query-edit [data-valid="true"]').waitFor();
    await page.getByRole("button", { name: "Apply edit" }).click();
    await page.locator(".query-edit [role=alert]").waitFor();
    const fromStart = page.locator(".events li", { hasText: /running with parallelism 2 in 2 worker processes, from the start/ });
    expect(await fromStart.count()).toBe(1); // the first run
    await page.getByRole("button", { name: "Apply, starting from scratch" }).click();
    await eventually("the job to run again from the start", async () => (await fromStart.count()) === 2, 60_000);
    await page.getByText(/version 3 ·/).waitFor();
    expect((await cp.gql(`{ pipeline(id: "${pipelineId}") { version query } }`)).pipeline).toEqual({ version: 3, query: regrouped });
    expect(page.errors).toEqual([]);
  });
});
