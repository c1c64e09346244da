#!/usr/bin/env bun
/**
 * `bun run console:screenshots`: regenerates the README's screenshots of the
 * console (console/screenshots/*.png) from a real control plane with running
 * pipelines, in Debian's Chromium (scripts/services/chromium.sh start).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { launchBrowser } from "../test/kit/browser.ts";
import { eventually, testControlPlane } from "../test/kit/control-plane.ts";

const OUT = join(import.meta.dir, "screenshots");
mkdirSync(OUT, { recursive: true });

const WINDOWED = `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '500');
SELECT tumble(INTERVAL '2' SECOND) AS window, subtask_index, count(*) AS n
FROM impulse
GROUP BY window, subtask_index;`;

const cp = await testControlPlane("pglite");
const browser = await launchBrowser();
try {
  const create = async (name: string, query: string, parallelism = 1) => {
    const r = await cp.gql(
      `mutation ($input: CreatePipelineInput!) { createPipeline(input: $input) { __typename ... on PipelinePayload { pipeline { id } } ... on UserError { message } } }`,
      { input: { name, query, parallelism, checkpointIntervalMicros: 2_000_000 } },
    );
    if (r.createPipeline.__typename !== "PipelinePayload") throw new Error(`${name}: ${r.createPipeline.message}`);
    return r.createPipeline.pipeline.id as string;
  };
  const main = await create("events per 2 s window", WINDOWED, 2);
  await create("counter sample", `CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '100');\nSELECT counter FROM impulse WHERE counter % 10 = 0;`);
  await eventually("checkpoints of the main pipeline", async () => {
    const { pipeline } = await cp.gql(`{ pipeline(id: "${main}") { jobs { state checkpoints { checkpointId } } } }`);
    return pipeline.jobs[0].state === "Running" && pipeline.jobs[0].checkpoints.length >= 3;
  }, 60_000);

  const page = await browser.page(cp.url, { width: 1280, height: 800 });
  const shot = (name: string, fullPage = false) => page.screenshot({ path: join(OUT, `${name}.png`), fullPage });

  await page.goto("/");
  await eventually("rates in the list", async () => ((await page.locator("tbody tr td").nth(3).textContent()) ?? "").endsWith("/s"));
  await shot("pipelines");

  await page.goto(`/pipelines/${main}`);
  await page.locator("tr[data-checkpoint]").nth(2).waitFor();
  await eventually("rates on the graph", async () => /\d\/s/.test((await page.locator('g.op[data-operator$="-source"] [data-metric="rates"]').textContent()) ?? ""));
  await page.locator('td[data-metric="placement"] li').first().waitFor();
  await shot("job", true);

  await page.goto("/new");
  await page.getByLabel("Name").fill("every tenth counter");
  await page.locator(".cm-content").first().click();
  await page.keyboard.press("Control+End");
  await page.keyboard.insertText("\n-- a typo is underlined where it is:\nSELECT countr FROM impulse;");
  await page.locator(".cm-lintRange-error").first().waitFor();
  await shot("new-pipeline");

  await page.goto("/catalog");
  await page.locator("details.entry summary").first().click();
  await shot("catalog");

  const phone = await browser.page(cp.url, { width: 390, height: 844 });
  await phone.goto(`/pipelines/${main}`);
  await phone.locator("tr[data-checkpoint]").first().waitFor();
  await phone.waitForTimeout(1500);
  await phone.screenshot({ path: join(OUT, "job-phone.png") });
  console.error(`wrote ${OUT}/{pipelines,job,new-pipeline,catalog,job-phone}.png`);
} finally {
  await browser.close();
  await cp.stop();
}
