import { test, expect, Browser } from "@playwright/test";
import { spawn, ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { AddressInfo } from "node:net";
import { demoPassword } from "../constants";

// Two-way translation in real browsers: a visitor whose browser speaks zh-CN writes Chinese in
// the widget; the English-speaking agent reads it with its translation in the console; the
// agent's English reply reaches the widget in Chinese, where the visitor can reveal the
// original. The provider is a stand-in speaking LibreTranslate's documented API
// (`POST /translate` with q, source, target → translatedText); the admin sets it up and tries
// it on the admin translation page. A second identical message comes from the cache; with the
// provider down, messages still flow with the "unavailable" marker; at the site's daily budget
// translation stops and the console says so.

/** LibreTranslate's shape: a small dictionary, a log of what it was asked, and an off switch. */
class StandIn {
  server?: http.Server;
  url = "";
  asked: { q: string; source: string; target: string }[] = [];
  down = false;
  private dictionary: Record<string, [string, string]> = {
    "Hello, how can I help you?": ["您好，有什么可以帮您？", "en"],
    "你好，我想退款": ["Hello, I want a refund", "zh"],
    "We will refund you today": ["我们今天给您退款", "en"],
  };

  async start() {
    this.server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (chunk) => (body += chunk));
      req.on("end", () => {
        if (req.method !== "POST" || req.url !== "/translate") {
          res.writeHead(404).end();
          return;
        }
        const asked = JSON.parse(body);
        this.asked.push(asked);
        if (this.down) {
          res.writeHead(503, { "content-type": "application/json" }).end('{"error":"down"}');
          return;
        }
        const [text, language] = this.dictionary[asked.q] ?? [`[${asked.target}] ${asked.q}`, "zh"];
        const answer: Record<string, unknown> = { translatedText: text };
        if (asked.source === "auto") answer.detectedLanguage = { language, confidence: 90 };
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(answer));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
  }

  times(q: string) {
    return this.asked.filter((a) => a.q === q).length;
  }

  async stop() {
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

/** A kefu server of this spec's own, with a configuration file the admin page writes to. */
class OwnServer {
  process?: ChildProcess;
  readonly base: string;
  private dir = fs.mkdtempSync(path.join(os.tmpdir(), "kefu-e2e-translate-"));
  private bin = process.env.KEFU_BIN ?? path.join(os.homedir(), ".cache/kefu/target/release/kefu");

  constructor(port: number) {
    this.base = `http://127.0.0.1:${port}`;
  }

  async start() {
    const config = path.join(this.dir, "kefu.toml");
    // The stand-in provider is on this machine: Kefu calls it only because the file allows it.
    fs.writeFileSync(
      config,
      `# written by the translation spec\n[outbound]\nallow = ["${provider.url.replace("http://", "")}"]\n`,
    );
    this.process = spawn(
      this.bin,
      [
        "serve",
        "--demo",
        "--config",
        config,
        "--bind",
        this.base.replace("http://", ""),
        "--database-url",
        `sqlite://${this.dir}/kefu.db`,
      ],
      { cwd: "..", env: { ...process.env, KEFU_DEMO_PASSWORD: demoPassword, KEFU_LOG_LEVEL: "warn" }, stdio: process.env.KEFU_E2E_LOGS ? "inherit" : "ignore" },
    );
    await expect
      .poll(async () => (await fetch(`${this.base}/readyz`).catch(() => null))?.status ?? 0, { timeout: 20_000 })
      .toBe(200);
  }

  async stop() {
    const exited = new Promise((resolve) => this.process?.once("exit", resolve));
    this.process?.kill("SIGTERM");
    await exited;
  }
}

let host: http.Server;
let hostUrl = "";
const provider = new StandIn();
const kefu = new OwnServer(Number(process.env.KEFU_E2E_PORT ?? 3950) + 9);

test.beforeAll(async () => {
  await provider.start();
  await kefu.start();
  // The customer's shop, on another origin, embedding the widget.
  host = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(
      `<!DOCTYPE html><html><head><meta charset="utf-8"><title>商店</title></head><body><h1>商店</h1>` +
        `<script src="${kefu.base}/widget/widget.js" data-site="demo" async></script></body></html>`,
    );
  });
  await new Promise<void>((resolve) => host.listen(0, "127.0.0.1", resolve));
  hostUrl = `http://127.0.0.1:${(host.address() as AddressInfo).port}`;
});

test.afterAll(async () => {
  await new Promise((resolve) => host.close(resolve));
  await kefu.stop();
  await provider.stop();
});

async function signIn(browser: Browser) {
  const context = await browser.newContext({ baseURL: kefu.base, locale: "en-US" });
  const page = await context.newPage();
  await page.goto("/login");
  await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
  await page.fill('input[name="email"]', "demo@kefu.local");
  await page.fill('input[name="password"]', demoPassword);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/inbox$/);
  return { context, page };
}

test("a zh-CN visitor and an English agent read each other through the provider, the cache and the budget", async ({ browser }) => {
  test.setTimeout(90_000);
  const { context, page: agent } = await signIn(browser);

  // The admin sets the provider up, tries it, and saves it; then turns translation on for the site.
  await agent.goto("/admin/translation");
  await expect(agent.locator("main[data-hydrated=true]")).toBeVisible();
  await agent.locator(`select[name="form[provider]"]`).selectOption("libretranslate");
  await agent.getByLabel("Address (empty: the provider's own)").fill(provider.url);
  await agent.getByLabel("Characters per site per day").fill("60");
  await agent.getByRole("button", { name: "Test provider" }).click();
  await expect(agent.locator(".provider-answer")).toContainText("您好，有什么可以帮您？");
  await agent.getByRole("button", { name: "Save" }).click();
  await expect(agent.getByRole("status").filter({ hasText: "Saved" })).toBeVisible();
  await agent.goto("/admin/sites");
  await expect(agent.locator("main[data-hydrated=true]")).toBeVisible();
  // Each site is a closed row until opened (only the newest starts open).
  await agent.locator("details.site-item", { hasText: "Demo site" }).evaluate((d) => ((d as HTMLDetailsElement).open = true));
  const demo = agent.locator("details.site-item", { hasText: "Demo site" }).locator("section.site-form");
  await demo.getByLabel("Translate between agents and visitors automatically").check();
  const saved = agent.waitForResponse((r) => r.url().endsWith("/api/admin/sites/update"));
  await demo.getByRole("button", { name: "Save" }).click();
  const response = await saved;
  expect(response.status(), await response.text()).toBe(200);
  await agent.goto("/inbox");
  await expect(agent.locator("main[data-hydrated=true]")).toBeVisible();

  // The visitor's browser speaks Chinese.
  const visitorContext = await browser.newContext({ locale: "zh-CN" });
  const visitor = await visitorContext.newPage();
  await visitor.goto(hostUrl);
  await expect(visitor.locator("kefu-widget[data-kefu-ready]")).toBeAttached();
  await visitor.locator("kefu-widget .launcher").click();
  const say = async (text: string) => {
    const input = visitor.locator("kefu-widget .compose textarea");
    await input.fill(text);
    await input.press("Enter");
  };
  await say("你好，我想退款");

  // The agent sees both texts side by side.
  const row = agent.locator("li.conversation").first();
  await expect(row).toContainText("你好，我想退款");
  await row.click();
  const first = agent.locator(".transcript .message.visitor").first();
  await expect(first.locator(".body")).toHaveText("你好，我想退款");
  await expect(first.locator(".translation")).toContainText("Hello, I want a refund");
  await expect(first.locator(".translation")).toContainText("Translated from zh");
  expect(provider.asked[provider.asked.length - 1]).toMatchObject({ q: "你好，我想退款", target: "en" });

  // The agent checks the reply in the visitor's language, then sends it: the visitor reads
  // Chinese, and can reveal the English original.
  const reply = agent.getByLabel("Reply");
  await reply.fill("We will refund you today");
  await agent.getByRole("button", { name: "Translate", exact: true }).click();
  await expect(agent.locator(".draft-translation")).toContainText("我们今天给您退款");
  await reply.press("Enter");
  const answer = visitor.locator("kefu-widget .m.a").last();
  await expect(answer.locator(".b")).toHaveText("我们今天给您退款");
  await answer.locator("button.kefu-original").click();
  await expect(answer.locator(".b")).toHaveText("We will refund you today");
  await answer.locator("button.kefu-original").click();
  await expect(answer.locator(".b")).toHaveText("我们今天给您退款");
  // Asked once, for the draft: sending it came from the cache.
  expect(provider.times("We will refund you today")).toBe(1);

  // The same words again: translated from the cache, the provider is not asked again.
  await say("你好，我想退款");
  const visitorMessages = agent.locator(".transcript .message.visitor");
  await expect(visitorMessages).toHaveCount(2);
  await expect(visitorMessages.nth(1).locator(".translation")).toContainText("Hello, I want a refund");
  expect(provider.times("你好，我想退款")).toBe(1);

  // The provider goes down: messages still flow both ways, marked "translation unavailable".
  provider.down = true;
  await say("还有一个问题");
  await expect(visitorMessages.nth(2).locator(".body")).toHaveText("还有一个问题");
  await expect(visitorMessages.nth(2).locator(".translation-unavailable[data-why=provider]")).toContainText(
    "Translation unavailable",
  );
  await reply.fill("Go ahead");
  await reply.press("Enter");
  await expect(visitor.locator("kefu-widget .m.a .b").last()).toHaveText("Go ahead");
  provider.down = false;

  // The budget (60 characters a day) runs out: translation stops, and the console says so.
  await say("这是一个很长的问题，关于我的订单什么时候可以发货以及运费是多少，还有能不能开发票呢");
  await expect(visitorMessages.nth(3).locator(".translation-unavailable[data-why=budget]")).toContainText(
    "today's translation budget for this site is spent",
  );
  await agent.goto("/admin/translation");
  const usage = agent.locator(".translation-usage tr", { hasText: "Demo site" });
  await expect(usage).toHaveAttribute("data-limit-reached", "true");
  await expect(usage).toContainText("Daily budget reached");

  await visitorContext.close();
  await context.close();
});
