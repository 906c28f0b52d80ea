import { test, expect } from "@playwright/test";
import { spawn, spawnSync, ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { AddressInfo } from "node:net";

// First run in the browser: a Kefu server with no account leads every URL to the setup wizard,
// which wants the token from the server's log. The admin chooses the local MariaDB (a wrong
// password is named as such by "Test connection"), creates the first administrator and site,
// and ends on a working console — without restarting anything — where a visitor on a page
// with the new snippet is answered.

const port = Number(process.env.KEFU_E2E_PORT ?? 3950) + 10;
const base = `http://127.0.0.1:${port}`;
const bin = process.env.KEFU_BIN ?? path.join(os.homedir(), ".cache/kefu/target/release/kefu");
const database = `kefu_e2e_setup_${process.pid}`;

function mariadb(sql: string) {
  const result = spawnSync("mariadb", ["-uroot", "-h127.0.0.1", "-e", sql], { encoding: "utf8" });
  expect(result.status, result.stderr).toBe(0);
}

let server: ChildProcess;
let log = "";
let host: http.Server;
let hostUrl = "";
let snippet = "";

test.beforeAll(async () => {
  mariadb(`DROP DATABASE IF EXISTS ${database}; CREATE DATABASE ${database} CHARACTER SET utf8mb4`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kefu-e2e-setup-"));
  const config = path.join(dir, "kefu.toml");
  fs.writeFileSync(config, `# a fresh install\n[database]\nurl = "sqlite://${dir}/kefu.db"\n`);
  server = spawn(bin, ["serve", "--config", config, "--bind", `127.0.0.1:${port}`], {
    cwd: "..",
    env: { ...process.env, KEFU_LOG_LEVEL: "warn" },
  });
  server.stdout?.on("data", (chunk) => (log += chunk));
  server.stderr?.on("data", (chunk) => (log += chunk));
  await expect
    .poll(async () => (await fetch(`${base}/healthz`).catch(() => null))?.status ?? 0, { timeout: 20_000 })
    .toBe(200);
  // The customer's shop, on another origin, with whatever snippet the wizard gave.
  host = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(`<!DOCTYPE html><html><head><meta charset="utf-8"><title>Shop</title></head><body><h1>Shop</h1>${snippet}</body></html>`);
  });
  await new Promise<void>((resolve) => host.listen(0, "127.0.0.1", resolve));
  hostUrl = `http://127.0.0.1:${(host.address() as AddressInfo).port}`;
});

test.afterAll(async () => {
  const exited = new Promise((resolve) => server?.once("exit", resolve));
  server?.kill("SIGTERM");
  await exited;
  await new Promise((resolve) => host.close(resolve));
  mariadb(`DROP DATABASE IF EXISTS ${database}`);
});

test("a fresh server walks through the setup wizard onto MariaDB and ends on a working console", async ({ browser }) => {
  test.setTimeout(90_000);
  const context = await browser.newContext({ baseURL: base });
  const page = await context.newPage();

  // Any console URL leads to the wizard, which first wants the token from the log.
  await page.goto("/inbox");
  await expect(page).toHaveURL(/\/setup$/);
  await page.getByLabel("Setup token").fill("not the token");
  await page.getByRole("button", { name: "Continue" }).click();
  await expect(page.getByRole("alert")).toContainText("not the setup token");
  const token = /setup\?token=(\w+)/.exec(log)?.[1];
  expect(token, log).toBeTruthy();
  await page.getByLabel("Setup token").fill(token!);
  await page.getByRole("button", { name: "Continue" }).click();

  // The database: MariaDB on this machine; a wrong password is named as such.
  await page.getByLabel("MySQL or MariaDB").check();
  await page.getByLabel("Host").fill("127.0.0.1");
  await page.getByLabel("Port").fill("3306");
  await page.getByLabel("User", { exact: true }).fill("root");
  await page.getByLabel("Password", { exact: true }).fill("wrong password");
  await page.getByLabel("Database name").fill(database);
  await page.getByRole("button", { name: "Test connection" }).click();
  await expect(page.locator("#database-result")).toContainText('refused user "root": wrong password');
  await page.getByLabel("Password", { exact: true }).fill("");
  await page.getByRole("button", { name: "Test connection" }).click();
  await expect(page.locator("#database-result")).toContainText(`Connected to mysql://root@127.0.0.1:3306/${database}`);

  // The administrator and the website.
  await page.getByLabel("E-mail").fill("owner@shop.example");
  await page.getByLabel("Name", { exact: true }).first().fill("Owner");
  await page.getByLabel("Password (8 characters or more)").fill("owner-password");
  await page.locator('input[name="site_name"]').fill("Shop");
  await page.getByLabel("Addresses (separate several with spaces)").fill(hostUrl);
  await page.getByRole("button", { name: "Finish set-up" }).click();
  await expect(page.getByRole("heading", { name: "Kefu is set up" })).toBeVisible();
  snippet = await page.getByLabel("Embed snippet").inputValue();
  expect(snippet).toMatch(new RegExp(`^<script src="${base}/widget/widget\\.js" data-site="\\w{16}" async></script>$`));

  // Kefu itself takes over on the same address, on MariaDB.
  await expect
    .poll(async () => (await fetch(`${base}/readyz`).catch(() => null))?.status ?? 0, { timeout: 20_000 })
    .toBe(200);
  const tables = spawnSync("mariadb", ["-uroot", "-h127.0.0.1", "-N", "-e", `SELECT email FROM ${database}.agents`], {
    encoding: "utf8",
  });
  expect(tables.stdout.trim()).toBe("owner@shop.example");
  await page.getByRole("link", { name: "Open the console and sign in" }).click();
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
  await page.fill('input[name="email"]', "owner@shop.example");
  await page.fill('input[name="password"]', "owner-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/inbox$/);
  await expect(page.locator("main[data-hydrated=true]")).toBeVisible();

  // A visitor on a page with the new snippet chats with the console.
  const visitorContext = await browser.newContext();
  const visitor = await visitorContext.newPage();
  await visitor.goto(hostUrl);
  await expect(visitor.locator("kefu-widget[data-kefu-ready]")).toBeAttached();
  await visitor.locator("kefu-widget .launcher").click();
  const input = visitor.locator("kefu-widget .compose textarea");
  await input.fill("Hello from the new shop");
  await input.press("Enter");
  const row = page.locator("li.conversation", { hasText: "Hello from the new shop" });
  await expect(row).toBeVisible();
  await row.click();
  const reply = page.getByLabel("Reply");
  await reply.fill("Welcome to our shop!");
  await reply.press("Enter");
  await expect(visitor.locator("kefu-widget .m.a .b")).toHaveText("Welcome to our shop!");
  await visitorContext.close();
  await context.close();
});

// A zh-CN browser gets the wizard in Chinese, with `<html lang="zh-CN">`, from the token to the
// sign-in page, on a server of its own (SQLite); the switch at the top changes the language
// both ways. The wizard's own problems are checked in Chinese by server/tests/setup.rs; here
// nothing may go wrong: any page error or console error fails the test.
test("a zh-CN browser is set up in Chinese", async ({ browser }) => {
  test.setTimeout(90_000);
  const zhPort = Number(process.env.KEFU_E2E_PORT ?? 3950) + 12;
  const zhBase = `http://127.0.0.1:${zhPort}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kefu-e2e-setup-zh-"));
  const config = path.join(dir, "kefu.toml");
  fs.writeFileSync(config, `# a fresh install\n[database]\nurl = "sqlite://${dir}/kefu.db"\n`);
  const zh = spawn(bin, ["serve", "--config", config, "--bind", `127.0.0.1:${zhPort}`], {
    cwd: "..",
    env: { ...process.env, KEFU_LOG_LEVEL: "warn" },
  });
  let zhLog = "";
  zh.stdout?.on("data", (chunk) => (zhLog += chunk));
  zh.stderr?.on("data", (chunk) => (zhLog += chunk));
  const context = await browser.newContext({ baseURL: zhBase, locale: "zh-CN" });
  try {
    await expect
      .poll(async () => (await fetch(`${zhBase}/healthz`).catch(() => null))?.status ?? 0, { timeout: 20_000 })
      .toBe(200);
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`console: ${message.text()}`);
    });

    // The token page, in Chinese; the switch goes to English and back.
    await page.goto("/inbox");
    await expect(page).toHaveURL(/\/setup$/);
    await expect(page.locator("html")).toHaveAttribute("lang", "zh-CN");
    await expect(page.getByRole("heading", { name: "设置 Kefu" })).toBeVisible();
    await page.getByRole("link", { name: "English" }).click();
    await expect(page.locator("html")).toHaveAttribute("lang", "en");
    await expect(page.getByLabel("Setup token")).toBeVisible();
    await page.getByRole("link", { name: "中文" }).click();
    await expect(page.locator("html")).toHaveAttribute("lang", "zh-CN");
    const token = /setup\?token=(\w+)/.exec(zhLog)?.[1];
    expect(token, zhLog).toBeTruthy();
    await page.getByLabel("设置令牌").fill(token!);
    await page.getByRole("button", { name: "继续" }).click();

    // The wizard: every label Chinese, the built-in database tested.
    await expect(page.locator("html")).toHaveAttribute("lang", "zh-CN");
    for (const legend of ["1. 数据库", "2. 管理员", "3. 您的网站", "4. 电子邮件（可选）", "5. 翻译（可选）"]) {
      await expect(page.locator("legend", { hasText: legend })).toBeVisible();
    }
    await expect(page.getByLabel("SQLite，内置（无需安装）")).toBeChecked();
    await expect(page.locator('select[name="translation_provider"] option').first()).toHaveText("不使用");
    for (const [width, height] of [
      [1366, 768],
      [390, 844],
    ]) {
      await page.setViewportSize({ width, height });
      await page.screenshot({ path: test.info().outputPath(`setup-zh-${width}x${height}.png`), fullPage: true });
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow, `horizontal overflow at ${width} px`).toBeLessThanOrEqual(0);
    }
    await page.getByRole("button", { name: "测试连接" }).click();
    await expect(page.locator("#database-result")).toContainText("已连接到 sqlite://");
    await page.getByLabel("电子邮箱").fill("owner@shop.example");
    await page.getByLabel("姓名").fill("店主");
    await page.getByLabel("密码（至少 8 个字符）").fill("owner-password");
    await page.getByLabel("名称", { exact: true }).fill("小店");
    await page.getByLabel("网址（多个网址用空格分隔）").fill("https://shop.example");
    await page.getByRole("button", { name: "完成设置" }).click();

    // Done, in Chinese, and on to the console's sign-in page.
    await expect(page.getByRole("heading", { name: "Kefu 设置完成" })).toBeVisible();
    await expect(page.locator("html")).toHaveAttribute("lang", "zh-CN");
    await expect(page.getByText("请把下面这行代码粘贴到 小店 的网页中")).toBeVisible();
    await expect(page.getByLabel("嵌入代码")).toHaveValue(/data-site="\w{16}"/);
    await page.screenshot({ path: test.info().outputPath("setup-zh-done-390x844.png"), fullPage: true });
    await expect
      .poll(async () => (await fetch(`${zhBase}/readyz`).catch(() => null))?.status ?? 0, { timeout: 20_000 })
      .toBe(200);
    await page.getByRole("link", { name: "打开控制台并登录" }).click();
    await expect(page).toHaveURL(/\/login$/);
    await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
    expect(problems).toEqual([]);
  } finally {
    await context.close();
    const exited = new Promise((resolve) => zh.once("exit", resolve));
    zh.kill("SIGTERM");
    await exited;
  }
});
