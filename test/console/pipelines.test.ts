/**
 * The console in a real browser (Chromium) against a real control plane on
 * PGlite: a pipeline is written in the SQL editor (a typo is underlined where it
 * is, fixing it lets the pipeline be created), its graph's counters advance,
 * checkpoints appear, and the job is stopped with a checkpoint, started,
 * restarted keeping its state, and rescaled, all from the job page.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Page } from "playwright-core";
import { launchBrowser, type TestBrowser } from "../kit/browser.ts";
import { eventually, testControlPlane, type TestControlPlane } from "../kit/control-plane.ts";

setDefaultTimeout(120_000);

let cp: TestControlPlane;
let browser: TestBrowser;
let page: Page & { errors: string[] };
let pipelineId = "";

beforeAll(async () => {
  [cp, browser] = await Promise.all([testControlPlane("pglite"), launchBrowser()]);
  page = await browser.page(cp.url);
});
afterAll(async () => {
  await browser?.close();
  await cp?.stop();
});

const TYPO = `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '200');
SELECT counter, subtask_index FROM impulse WHERE countr % 2 = 0;`;
const FIXED = TYPO.replace("countr", "counter");

async function replaceEditorText(p: Page, text: string) {
  await p.locator(".cm-content").first().click();
  await p.keyboard.press("Control+A");
  await p.keyboard.press("Delete");
  await p.keyboard.insertText(text);
}

/** The number a cell carries in data-value (the raw counter behind its formatted text). */
async function operatorCount(p: Page, kind: string, metric: "records-in" | "records-out"): Promise<number> {
  const v = await p.locator(`tr[data-operator$="-${kind}"] td[data-metric="${metric}"]`).first().getAttribute("data-value");
  return v ? Number(v) : -1;
}

const jobState = (p: Page) => p.locator(".facts [data-state]").first().getAttribute("data-state");

/** Waits for the job to run; if it ended instead (on a loaded machine it once had), fails with its history, so the cause is in the report. */
async function untilJobRuns(): Promise<void> {
  let last: any;
  try {
    await eventually("the job to be Running", async () => {
      last = (await cp.gql(`{ pipeline(id: "${pipelineId}") { jobs { state failureMessage events { toState reason } } } }`)).pipeline.jobs[0];
      return last?.state === "Running";
    }, 60_000);
  } catch (e) {
    throw new Error(`${(e as Error).message}; the job: ${JSON.stringify(last)}; control plane log: ${cp.logs.slice(-20).join(" | ")}`);
  }
}

describe("pipelines in the console", () => {
  test("a typo is underlined at its line and column; fixing it creates the pipeline", async () => {
    await page.goto("/new");
    await page.getByLabel("Name").fill("every other counter");
    await page.getByLabel("Checkpoint every (s)").fill("1");
    await replaceEditorText(page, TYPO);

    const diagnostic = page.locator(".diagnostics .error").first();
    await diagnostic.waitFor();
    const line = TYPO.split("\n")[1]!;
    expect(await diagnostic.getAttribute("data-line")).toBe("2");
    expect(await diagnostic.getAttribute("data-column")).toBe(String(line.indexOf("countr") + 1));
    expect(await diagnostic.textContent()).toContain("countr");
    // The editor underlines exactly the misspelt name.
    expect(await page.locator(".cm-lintRange-error").first().textContent()).toBe("countr");
    expect(await page.getByRole("button", { name: "Create pipeline" }).isDisabled()).toBe(true);

    await replaceEditorText(page, FIXED);
    await page.locator('[data-valid="true"]').waitFor();
    expect(await page.locator(".cm-lintRange-error").count()).toBe(0);
    // The planned graph is shown before creating.
    expect(await page.locator("figure.graph g.op").count()).toBe(3);

    await page.getByRole("button", { name: "Create pipeline" }).click();
    await page.waitForURL(/\/pipelines\/pl_/);
    pipelineId = page.url().split("/pipelines/")[1]!;
    expect(await page.getByRole("heading", { level: 1 }).textContent()).toBe("every other counter");
    const stored = await cp.gql(`{ pipeline(id: "${pipelineId}") { query } }`);
    expect(stored.pipeline.query).toBe(FIXED);
  });

  test("the graph's counters advance while it runs, and checkpoints appear", async () => {
    await eventually("the job to run", async () => (await jobState(page)) === "Running");
    const first = await eventually("the source to count records", async () => {
      const n = await operatorCount(page, "source", "records-out");
      return n > 0 ? n : undefined;
    });
    await eventually("the counters to advance", async () => (await operatorCount(page, "source", "records-out")) > first);
    // Rates are shown on the graph's boxes.
    await eventually("a rate on the source", async () => /in [\d.,]+k?\/s/.test((await page.locator('g.op[data-operator$="-source"] [data-metric="rates"]').textContent()) ?? ""));
    await page.locator("tr[data-checkpoint]").first().waitFor();
    const cells = await page.locator("tr[data-checkpoint]").first().locator("td").allTextContents();
    expect(cells[3]).toMatch(/\d+(\.\d)? (B|KiB)/); // size
  });

  test("stop with a checkpoint, start, restart keeping state, rescale", async () => {
    await untilJobRuns();
    await page.getByLabel("Stop").selectOption("checkpoint");
    await page.getByRole("button", { name: "Stop", exact: true }).click();
    await eventually("the job to stop", async () => (await jobState(page)) === "Stopped", 60_000);
    await page.locator('tr[data-then="stop"]').first().waitFor();

    await page.getByRole("button", { name: "Start", exact: true }).click();
    await eventually("the job to run again", async () => (await jobState(page)) === "Running", 60_000);
    await page.getByText(/running with parallelism 1, from checkpoint \d+/).first().waitFor();

    await page.getByRole("button", { name: "Restart" }).click();
    await page.getByText("restart requested: taking a checkpoint").first().waitFor({ timeout: 60_000 });
    await eventually("the restarted job to run", async () => (await jobState(page)) === "Running", 60_000);

    await page.getByLabel("Parallelism").fill("2");
    await page.getByRole("button", { name: "Rescale" }).click();
    await page.getByText("rescaling from 1 to 2: taking a checkpoint").first().waitFor({ timeout: 60_000 });
    await eventually("the job to run with 2 subtasks", async () => (await jobState(page)) === "Running", 60_000);
    expect(await page.getByTestId("parallelism").textContent()).toBe("2");
    // The graph is planned at the new parallelism and the source reports two subtasks.
    await page.locator('g.op[data-operator$="-source"] .op-par', { hasText: "×2" }).waitFor();
    await eventually("two source subtasks", async () => (await page.locator('tr[data-operator$="-source"] td').first().textContent()) === "2");
    const job = await cp.gql(`{ pipeline(id: "${pipelineId}") { parallelism jobs { state parallelism } } }`);
    expect(job.pipeline.jobs[0]).toEqual({ state: "Running", parallelism: 2 });
  });

  test("the pipeline list shows it running with its parallelism and live rates", async () => {
    await untilJobRuns();
    await page.goto("/");
    const row = page.locator(`tr[data-pipeline="${pipelineId}"]`);
    await row.waitFor();
    await eventually("the row's input rate", async () => /\/s$/.test(((await row.locator("td").nth(3).textContent()) ?? "").trim()));
    const cells = await row.locator("td").allTextContents();
    expect(cells[0]).toBe("Running");
    expect(cells[1]).toBe("2");
    expect(page.errors).toEqual([]);
  });

  test("the editor completes columns of the declared tables, functions and connector names", async () => {
    await page.goto("/new");
    await replaceEditorText(page, "CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '10');\nSELECT subtask_index, coun");
    // The script is not valid yet, but its table is known once validated: wait for the final text's
    // diagnostic (it quotes the text's line 2), not one of an earlier text (the page keeps a draft).
    await page.locator(".diagnostics .error", { hasText: "subtask_index, coun" }).first().waitFor();
    // Typing opened completion before the tables were known; close it and ask again, as a user would.
    await page.keyboard.press("Escape");
    await page.keyboard.press("Control+Space");
    const options = page.locator(".cm-tooltip-autocomplete li");
    await options.first().waitFor();
    const labels = await options.allTextContents();
    expect(labels.some((l) => l.startsWith("counter"))).toBe(true); // a column of impulse
    expect(labels.some((l) => l.startsWith("count"))).toBe(true); // the aggregate
    await page.keyboard.press("Escape");

    await replaceEditorText(page, "CREATE TABLE t WITH (connector = 'kaf");
    await page.keyboard.press("Control+Space");
    await page.locator(".cm-tooltip-autocomplete li", { hasText: "kafka" }).first().waitFor();
    await page.keyboard.press("Escape");
  });

  test("a preview streams a SELECT's rows into a table, and is removed when stopped", async () => {
    await page.goto("/new");
    await page.locator('[data-valid="true"]').waitFor();
    await page.getByRole("button", { name: "Run preview" }).click();
    const rows = page.locator(".preview table tbody tr");
    await rows.first().waitFor({ timeout: 60_000 });
    expect(await page.locator(".preview table thead th").allTextContents()).toEqual(["counter", "subtask_index"]);
    const counter = Number(await rows.first().locator("td").first().textContent());
    expect(counter % 10).toBe(0); // the example's WHERE counter % 10 = 0
    await page.getByRole("button", { name: "Stop preview" }).click();
    await eventually("the preview pipeline to be deleted", async () => {
      const { pipelines } = await cp.gql(`{ pipelines { edges { node { name } } } }`);
      return !pipelines.edges.some((e: any) => e.node.name.startsWith("preview"));
    });
    expect(page.errors).toEqual([]);
  });
});
