/**
 * A real browser for the console's tests: Debian's Chromium
 * (scripts/services/chromium.sh) driven by playwright-core. Headless, no
 * sandbox (tests run as root), a fresh profile, and none of Chromium's
 * background connections (this machine's network refuses them). Every page
 * records console errors and Content-Security-Policy violations, which the
 * tests check are absent.
 */
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { rmSync } from "node:fs";
import { ensureConsoleBuilt } from "../../console/build.ts";
import { tempDir } from "./cli.ts";

export const CHROMIUM = process.env.RUNNEL_CHROMIUM ?? "/usr/bin/chromium";

export interface TestBrowser {
  browser: Browser;
  /** A new tab in a new context (its own sessionStorage), recording its errors. */
  page(baseURL: string, viewport?: { width: number; height: number }): Promise<Page & { errors: string[] }>;
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<TestBrowser> {
  // The console's assets are built by `bun install`; a test run after editing console/ rebuilds them first.
  await ensureConsoleBuilt();
  const profile = tempDir("runnel-chromium-");
  const context: BrowserContext = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  }).catch((err) => {
    throw new Error(`could not start Chromium at ${CHROMIUM} (run scripts/services/chromium.sh start): ${err.message}`);
  });
  const browser = context.browser() as Browser | null;
  const contexts: BrowserContext[] = [context];
  return {
    browser: browser as Browser,
    async page(baseURL, viewport = { width: 1280, height: 800 }) {
      // A persistent context is one profile: each further page gets its own incognito-like context when the browser allows it.
      const ctx = browser ? await browser.newContext({ baseURL, viewport }) : context;
      if (ctx !== context) contexts.push(ctx);
      const page = (await ctx.newPage()) as Page & { errors: string[] };
      await page.setViewportSize(viewport);
      page.errors = [];
      page.on("console", (m) => {
        if (m.type() === "error") page.errors.push(m.text());
      });
      page.on("pageerror", (e) => page.errors.push(e.message));
      return page;
    },
    async close() {
      for (const c of contexts.reverse()) await c.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
