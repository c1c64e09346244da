/**
 * The console on a server that needs tokens, in a real browser: the login
 * screen refuses a wrong token and accepts a right one, which lasts for the tab
 * only (sessionStorage); then the admin pages: an API token made with a role
 * (shown once), a connection profile whose secret is never shown back, a UDF
 * whose syntax error is underlined as it is typed, and GraphiQL served offline
 * with the tab's token.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import type { Page } from "playwright-core";
import { launchBrowser, type TestBrowser } from "../kit/browser.ts";
import { eventually, testControlPlane, type TestControlPlane } from "../kit/control-plane.ts";

setDefaultTimeout(120_000);

const TOKEN = "console-admin-token";
let cp: TestControlPlane;
let browser: TestBrowser;
let page: Page & { errors: string[] };

beforeAll(async () => {
  [cp, browser] = await Promise.all([testControlPlane("pglite", { apiTokens: [TOKEN] }), launchBrowser()]);
  page = await browser.page(cp.url);
});
afterAll(async () => {
  await browser?.close();
  await cp?.stop();
});

async function logIn(p: Page, token: string) {
  await p.getByLabel("API token").fill(token);
  await p.getByRole("button", { name: "Log in" }).click();
}

describe("logging in", () => {
  test("a wrong token is refused with the server's reason; the right one opens the console", async () => {
    await page.goto("/");
    await page.getByRole("heading", { name: "Log in to Runnel" }).waitFor();
    await logIn(page, "not-the-token");
    await page.getByRole("alert").filter({ hasText: "not valid" }).waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem("runnel.token"))).toBeNull();

    await logIn(page, TOKEN);
    await page.getByRole("heading", { name: "Pipelines" }).waitFor();
    expect(await page.locator(".who .badge").textContent()).toBe("admin");
    expect(await page.evaluate(() => sessionStorage.getItem("runnel.token"))).toBe(TOKEN);
  });

  test("the token lasts for the tab: a reload keeps it, another tab logs in again, logging out forgets it", async () => {
    await page.reload();
    await page.getByRole("heading", { name: "Pipelines" }).waitFor();
    const other = await browser.page(cp.url);
    await other.goto("/");
    await other.getByRole("heading", { name: "Log in to Runnel" }).waitFor();
    await other.close();
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByRole("heading", { name: "Log in to Runnel" }).waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem("runnel.token"))).toBeNull();
    await logIn(page, TOKEN);
    await page.getByRole("heading", { name: "Pipelines" }).waitFor();
  });
});

describe("settings", () => {
  test("an API token is created with a role and shown once; it logs in", async () => {
    await page.getByRole("link", { name: "API tokens" }).click();
    await page.getByLabel("Name (who or what uses it)").fill("dashboard");
    await page.getByLabel("Role").selectOption("VIEWER");
    await page.getByRole("button", { name: "Create token" }).click();
    const token = (await page.getByTestId("new-token").textContent())!;
    expect(token).toMatch(/^rnl_/);
    await page.getByRole("rowheader", { name: "dashboard" }).waitFor();
    // Shown once: after leaving the page it is gone from it.
    await page.getByRole("link", { name: "Pipelines" }).click();
    await page.getByRole("link", { name: "API tokens" }).click();
    await page.getByRole("rowheader", { name: "dashboard" }).waitFor();
    expect(await page.content()).not.toContain(token);

    const other = await browser.page(cp.url);
    await other.goto("/");
    await logIn(other, token);
    await other.getByRole("heading", { name: "Pipelines" }).waitFor();
    await other.close();
  });

  test("a connection profile's secret is sent but never shown back", async () => {
    await page.getByRole("link", { name: "Connection profiles" }).click();
    await page.getByLabel("Name", { exact: true }).fill("local-kafka");
    await page.getByLabel("Connector").selectOption("kafka");
    await page.getByLabel("bootstrap_servers").fill("127.0.0.1:19092");
    const secret = page.locator("#opt-auth\\.password");
    expect(await secret.getAttribute("type")).toBe("password");
    await secret.fill("hunter2-secret");
    await page.getByRole("button", { name: "Save profile" }).click();
    const row = page.getByRole("row").filter({ has: page.getByRole("rowheader", { name: "local-kafka" }) });
    await row.waitFor();
    expect(await row.textContent()).toContain("auth.password");
    expect(await row.textContent()).toContain("127.0.0.1:19092");
    expect(await page.content()).not.toContain("hunter2-secret");
  });

  test("a UDF's syntax error is underlined as it is typed; a valid one is saved", async () => {
    await page.getByRole("link", { name: "UDFs" }).click();
    await page.getByLabel("Name (as called in SQL)").fill("triple");
    const editor = page.getByLabel("UDF module source");
    await editor.click();
    await page.keyboard.press("Control+A");
    await page.keyboard.press("Delete");
    await page.keyboard.insertText(`export default { args: ["BIGINT"], returns: "BIGINT", fn: (x) => x * };`);
    await page.locator(".cm-lintRange-error").first().waitFor();
    await page.keyboard.press("Control+A");
    await page.keyboard.insertText(`export default { args: ["BIGINT"], returns: "BIGINT", fn: (x) => x * 3 };`);
    await eventually("the underline to go", async () => (await page.locator(".cm-lintRange-error").count()) === 0);
    await page.getByRole("button", { name: "Save" }).click();
    await page.locator("summary", { hasText: "triple" }).waitFor();
    const { udfs } = await cp.gql(`{ udfs { name } }`, {}, { authorization: `Bearer ${TOKEN}` });
    expect(udfs.map((u: any) => u.name)).toEqual(["triple"]);
    // The only errors: the browser's own log of the refused logins (401) above.
    expect(page.errors.filter((e) => !e.includes("status of 401"))).toEqual([]);
  });

  test("GraphiQL is served by the control plane, titled, with no request leaving the server, using the tab's token", async () => {
    const outside: string[] = [];
    page.on("request", (r) => {
      if (!r.url().startsWith(cp.url) && !r.url().startsWith("blob:") && !r.url().startsWith("data:")) outside.push(r.url());
    });
    const errors: string[] = [];
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    await page.getByRole("link", { name: "GraphiQL" }).click();
    await page.waitForURL(/\/graphql$/);
    const gi = page;
    expect(await gi.title()).toBe("Runnel GraphiQL");
    await gi.locator(".graphiql-container").first().waitFor();
    // The schema loads with the tab's token (introspection needs it on this server): the docs explorer shows the root types.
    await gi.getByRole("button", { name: /Documentation Explorer/i }).first().click();
    await gi.getByText("Subscription", { exact: true }).first().waitFor();
    expect(outside).toEqual([]);
    expect(errors).toEqual([]);
  });
});
