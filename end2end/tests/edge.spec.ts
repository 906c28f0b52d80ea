// Kefu at its edge, in a real browser (SECURITY.md): the console runs live under its
// Content-Security-Policy without a single violation, and a throttled sign-in says so in the
// agent's language. A server of this spec's own: throttling its one address (127.0.0.1) must
// not lock the shared server's other tests out.
import { test, expect, type Browser, type Page } from "@playwright/test";
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { demoPassword } from "../constants";

const port = Number(process.env.KEFU_E2E_PORT ?? 3950) + 11;
const base = `http://127.0.0.1:${port}`;
let server: ChildProcess | undefined;

test.beforeAll(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kefu-e2e-edge-"));
  fs.writeFileSync(path.join(dir, "kefu.toml"), "# written by the edge spec\n");
  const bin = process.env.KEFU_BIN ?? path.join(os.homedir(), ".cache/kefu/target/release/kefu");
  server = spawn(
    bin,
    ["serve", "--demo", "--config", path.join(dir, "kefu.toml"), "--bind", `127.0.0.1:${port}`,
      "--database-url", `sqlite://${dir}/kefu.db`],
    { cwd: "..", env: { ...process.env, KEFU_DEMO_PASSWORD: demoPassword, KEFU_LOG_LEVEL: "error" }, stdio: "ignore" },
  );
  await expect
    .poll(async () => (await fetch(`${base}/readyz`).catch(() => null))?.status ?? 0, { timeout: 20_000 })
    .toBe(200);
});

test.afterAll(async () => {
  const exited = new Promise((resolve) => server?.once("exit", resolve));
  server?.kill("SIGTERM");
  await exited;
});

/** A page that records every page error and console error (a CSP violation is one). */
async function watched(browser: Browser, locale: string, width: number, height: number) {
  const context = await browser.newContext({ baseURL: base, locale, viewport: { width, height } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (msg) => msg.type() === "error" && errors.push(msg.text()));
  return { context, page, errors };
}

async function signIn(page: Page, password: string) {
  await page.goto("/login");
  await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
  await page.fill('input[name="email"]', "demo@kefu.local");
  await page.fill('input[name="password"]', password);
  await page.locator('input[name="password"]').press("Enter");
}

test("the console runs live under its Content-Security-Policy without a violation", async ({ browser }) => {
  const { context, page, errors } = await watched(browser, "en-US", 1366, 768);
  const response = await page.goto("/login");
  const policy = response?.headers()["content-security-policy"] ?? "";
  expect(policy).toContain("frame-ancestors 'none'");
  expect(policy).toMatch(/'nonce-[0-9a-f]{32}'/);
  expect(response?.headers()["x-frame-options"]).toBe("DENY");
  await signIn(page, demoPassword);
  await expect(page).toHaveURL(/\/inbox$/);
  // The live link is up over a WebSocket (connect-src 'self').
  await expect(page.locator("[data-connection]")).toHaveAttribute("data-connection", "websocket");
  await page.goto("/admin/sites");
  await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
  expect(errors).toEqual([]);
  await context.close();
});

test("a throttled sign-in says so, in English and in Chinese, on a laptop and a phone", async ({ browser }) => {
  const { context, page, errors } = await watched(browser, "en-US", 1366, 768);
  // Ten wrong passwords from this address; the eleventh attempt is held back.
  for (let attempt = 0; attempt < 10; attempt++) {
    await signIn(page, `wrong ${attempt}`);
    await expect(page.getByRole("alert")).toHaveText("Wrong e-mail or password.");
  }
  await signIn(page, "wrong again");
  await expect(page.getByRole("alert")).toHaveText(
    "Too many sign-in attempts. Please wait a few minutes, then try again.",
  );
  await page.screenshot({ path: test.info().outputPath("throttled-en-1366.png"), fullPage: true });
  // The 401s and 429s the browser logs for the refused requests are the point here.
  expect(errors.filter((e) => !/status of 40[13]|status of 429/.test(e))).toEqual([]);
  await context.close();

  for (const [locale, width, height, text] of [
    ["en-US", 390, 844, "Too many sign-in attempts. Please wait a few minutes, then try again."],
    ["zh-CN", 1366, 768, "登录尝试次数过多，请稍等几分钟后再试。"],
    ["zh-CN", 390, 844, "登录尝试次数过多，请稍等几分钟后再试。"],
  ] as const) {
    const shown = await watched(browser, locale, width, height);
    await signIn(shown.page, demoPassword);
    await expect(shown.page.getByRole("alert")).toHaveText(text);
    await shown.page.screenshot({ path: test.info().outputPath(`throttled-${locale}-${width}.png`), fullPage: true });
    expect(shown.errors.filter((e) => !/status of 429/.test(e))).toEqual([]);
    await shown.context.close();
  }
});
