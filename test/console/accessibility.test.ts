/**
 * The console's pages pass axe-core's WCAG 2 A/AA rules (labels, names,
 * contrast, landmarks) in light and dark colour schemes, and the keyboard
 * reaches the navigation first (after a skip link).
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import type { Page } from "playwright-core";
import { launchBrowser, type TestBrowser } from "../kit/browser.ts";
import { eventually, testControlPlane, type TestControlPlane } from "../kit/control-plane.ts";
import { REPO } from "../kit/cli.ts";

setDefaultTimeout(120_000);

const AXE = readFileSync(`${REPO}/node_modules/axe-core/axe.min.js`, "utf8");
let cp: TestControlPlane;
let browser: TestBrowser;
let pipelineId = "";

beforeAll(async () => {
  [cp, browser] = await Promise.all([testControlPlane("pglite"), launchBrowser()]);
  const r = await cp.gql(
    `mutation { createPipeline(input: { name: "a11y", checkpointIntervalMicros: 500000, query: "CREATE TABLE impulse WITH (connector = 'impulse', event_rate = '50'); SELECT counter FROM impulse;" }) { ... on PipelinePayload { pipeline { id } } } }`,
  );
  pipelineId = r.createPipeline.pipeline.id;
});
afterAll(async () => {
  await browser?.close();
  await cp?.stop();
});

/** axe's violations on the page, as "rule: target" lines. axe is evaluated as a function argument, not an inline script, so the page's CSP stays on. */
async function violations(page: Page): Promise<string[]> {
  const result = await page.evaluate(async (source) => {
    (0, eval)(source);
    const axe = (globalThis as any).axe;
    const r = await axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
    return r.violations.map((v: any) => `${v.id}: ${v.nodes.map((n: any) => n.target.join(" ")).slice(0, 3).join(", ")}`);
  }, AXE);
  return result;
}

for (const scheme of ["light", "dark"] as const) {
  test(`the main pages have no WCAG A/AA violations (${scheme})`, async () => {
    const page = await browser.page(cp.url);
    await page.emulateMedia({ colorScheme: scheme });
    const pages: [string, string][] = [
      ["/", `tr[data-pipeline="${pipelineId}"]`],
      ["/new", '[data-valid="true"]'],
      [`/pipelines/${pipelineId}`, "tr[data-checkpoint]"],
      ["/catalog", "details.entry"],
      ["/udfs", "form"],
      ["/profiles", "form"],
      ["/tokens", "form"],
    ];
    const found: string[] = [];
    for (const [path, ready] of pages) {
      await page.goto(path);
      await page.locator(ready).first().waitFor({ timeout: 60_000 });
      for (const v of await violations(page)) found.push(`${path} ${v}`);
    }
    // The job page's form to edit the query, opened (it takes the keyboard's focus).
    await page.goto(`/pipelines/${pipelineId}`);
    await page.getByRole("button", { name: "Edit query" }).click();
    await page.locator('.query-edit [data-valid="true"]').waitFor();
    expect(await page.evaluate(() => document.activeElement?.getAttribute("aria-label"))).toBe("Edit the pipeline's query");
    for (const v of await violations(page)) found.push(`edit query ${v}`);
    expect(found).toEqual([]);
    await page.close();
  });
}

test("the keyboard reaches a skip link, then the navigation", async () => {
  const page = await browser.page(cp.url);
  await page.goto("/");
  await page.getByRole("heading", { name: "Pipelines" }).waitFor();
  await page.keyboard.press("Tab");
  expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Skip to content");
  await page.keyboard.press("Tab");
  await page.keyboard.press("Tab");
  expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Pipelines");
  await page.keyboard.press("Enter");
  await eventually("still on the pipelines", async () => page.url().endsWith("/"));
  await page.close();
});
