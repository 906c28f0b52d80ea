import { test, expect, Page, Browser, BrowserContext } from "@playwright/test";
import * as http from "node:http";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { AddressInfo } from "node:net";
import { demoPassword } from "../constants";

// The console's shell: one live link and one header for every signed-in page. An agent moves
// between pages while a visitor on a customer's page (another origin) chats; the agent stays
// online, and what arrives meanwhile shows on whichever page they are. Any page error or
// console error fails the test.

const kefu = `http://127.0.0.1:${Number(process.env.KEFU_E2E_PORT ?? 3950)}`;

let host: http.Server;
let hostUrl = "";

test.beforeAll(async () => {
  host = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(
      `<!DOCTYPE html><html><head><meta charset="utf-8"><title>Host page</title></head><body><h1>Shop</h1>` +
        `<script src="${kefu}/widget/widget.js" data-site="demo" async></script></body></html>`,
    );
  });
  await new Promise<void>((resolve) => host.listen(0, "127.0.0.1", resolve));
  hostUrl = `http://127.0.0.1:${(host.address() as AddressInfo).port}`;
});

test.afterAll(async () => {
  await new Promise((resolve) => host.close(resolve));
});

const opened: BrowserContext[] = [];
test.afterEach(async () => {
  for (const context of opened.splice(0)) await context.close().catch(() => {});
});

/** Collects page errors and console errors; the test asserts there were none. */
function watchErrors(page: Page, errors: string[]) {
  page.on("pageerror", (error) => errors.push(`pageerror: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`console: ${message.text()}`);
  });
}

/** Signs the demo admin in; counts the agent WebSockets the tab opens. */
async function signIn(browser: Browser, errors: string[], locale = "en-US") {
  const context = await browser.newContext({ baseURL: kefu, locale });
  opened.push(context);
  const page = await context.newPage();
  watchErrors(page, errors);
  const sockets = { agent: 0 };
  page.on("websocket", (ws) => {
    if (ws.url().endsWith("/ws/agent")) sockets.agent += 1;
  });
  await page.goto("/login");
  await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
  await page.fill('input[name="email"]', "demo@kefu.local");
  await page.fill('input[name="password"]', demoPassword);
  await page.locator('input[name="mode"][value="auto"]').check();
  await page.locator('button[type="submit"]').first().click();
  await expect(page).toHaveURL(/\/inbox$/);
  await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
  await expect(page.locator("[data-connection]")).toHaveAttribute("data-connection", "websocket");
  return { page, sockets };
}

/** Follows a header link and waits for the page to be live. */
async function go(page: Page, href: string) {
  await page.locator(`header.topbar nav a[href="${href}"]`).click();
  await expect(page).toHaveURL(new RegExp(`${href}$`));
  await expect(page.locator(`header.topbar nav a[href="${href}"]`)).toHaveAttribute("aria-current", "page");
  await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
}

test("the agent stays online on every console page, with one WebSocket, and sees new messages anywhere", async ({ browser }) => {
  const errors: string[] = [];
  const { page, sockets } = await signIn(browser, errors);

  // A visitor on a customer's page, its widget live; every time the widget shows the site
  // offline is recorded.
  const visitorContext = await browser.newContext();
  opened.push(visitorContext);
  const visitor = await visitorContext.newPage();
  watchErrors(visitor, errors);
  await visitor.goto(hostUrl + "/");
  await expect(visitor.locator("kefu-widget[data-kefu-ready]")).toBeAttached();
  await visitor.locator("kefu-widget .launcher").click();
  await expect(visitor.locator("kefu-widget[data-online]")).toHaveAttribute("data-online", "true");
  await visitor.evaluate(() => {
    const w = window as any;
    w.wentOffline_ = 0;
    const marked = document.querySelector("kefu-widget[data-online]")!;
    new MutationObserver(() => {
      if (marked.getAttribute("data-online") !== "true") w.wentOffline_ += 1;
    }).observe(marked, { attributes: true, attributeFilter: ["data-online"] });
  });
  const input = visitor.locator("kefu-widget .compose textarea");
  await input.fill("Hello, is anyone there?");
  await input.press("Enter");
  const row = page.locator("li.conversation", { hasText: "Hello, is anyone there?" });
  await expect(row).toBeVisible();

  // Across the console, page by page; a message arrives while the agent reads the reports.
  await go(page, "/history");
  await go(page, "/reports");
  await input.fill("Still waiting for an answer");
  await input.press("Enter");
  await expect(page.locator('header.topbar a[href="/inbox"] .unread')).toHaveText(/^[1-9]\d*$/);
  await expect(page).toHaveTitle(/^\(\d+\) Kefu$/);
  const unread = Number(await page.locator('header.topbar a[href="/inbox"] .unread').textContent());
  await go(page, "/leave-messages");
  await go(page, "/canned");
  await go(page, "/admin/sites");
  await expect(page.locator('header.topbar a[href="/inbox"] .unread')).toHaveText(String(unread));
  await go(page, "/inbox");
  await expect(row).toContainText("Still waiting for an answer");
  await expect(page.locator("[data-connection]")).toHaveAttribute("data-connection", "websocket");

  // One connection for the whole tour, and the visitor never saw the site go offline.
  expect(sockets.agent).toBe(1);
  await expect(visitor.locator("kefu-widget[data-online]")).toHaveAttribute("data-online", "true");
  expect(await visitor.evaluate(() => (window as any).wentOffline_)).toBe(0);
  expect(errors).toEqual([]);
});

const consolePages = [
  "/inbox",
  "/history",
  "/leave-messages",
  "/reports",
  "/canned",
  "/admin/sites",
  "/admin/agents",
  "/admin/teams",
  "/admin/api",
  "/admin/mail",
  "/admin/translation",
  "/admin/upkeep",
];

test("switching language works on every console page and follows on <html lang>", async ({ browser }) => {
  const errors: string[] = [];
  const { page, sockets } = await signIn(browser, errors);
  const switchButton = page.locator("header.topbar form.language button");
  for (const path of consolePages) {
    await page.goto(path);
    await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
    await expect(page.locator("html")).toHaveAttribute("lang", "en");
    await switchButton.click();
    await expect(page.locator("html")).toHaveAttribute("lang", "zh-CN");
    await expect(page.locator('header.topbar a[href="/inbox"]')).toContainText("会话");
    await expect(page.locator("main h1, main h2").first()).toContainText(/\p{Script=Han}/u);
    await switchButton.click();
    await expect(page.locator("html")).toHaveAttribute("lang", "en");
    await expect(page.locator('header.topbar a[href="/inbox"]')).toContainText("Inbox");
  }
  // Still live after all the switching: the connection came back on each full load and is up.
  await expect(page.locator("[data-connection]")).toHaveAttribute("data-connection", "websocket");
  expect(sockets.agent).toBeGreaterThan(0);
  expect(errors).toEqual([]);
});

/** A visitor of the demo site speaking the HTTP fallback from the test. */
async function visitorSays(request: import("@playwright/test").APIRequestContext, body: string): Promise<number> {
  const headers = { origin: "https://shop.example", "content-type": "application/json" };
  const post = async (frames: object[], token?: string) => {
    const response = await request.post(`${kefu}/http/visitor/send`, {
      headers: token ? { ...headers, "x-kefu-visitor-token": token } : headers,
      data: JSON.stringify(frames),
    });
    expect(response.status()).toBe(200);
    return (await response.json()) as { type: string; [key: string]: any }[];
  };
  const welcome = (await post([{ type: "hello", protocol_version: 1, site_key: "demo" }])).find((f) => f.type === "welcome");
  const frames = await post([{ type: "send", client_id: crypto.randomUUID(), body }], welcome?.visitor_token);
  return frames.find((f) => f.type === "ack")!.conversation_id;
}

const sizes = [
  { width: 1366, height: 768 },
  { width: 1280, height: 720 },
  { width: 390, height: 844 },
];

test("every console page fits laptops and phones in both languages (screenshots in end2end/screenshots)", async ({ browser, request }) => {
  test.setTimeout(180_000);
  // A second agent on the demo site, so the transfer control is there.
  const run = Date.now() % 1_000_000;
  const added = spawnSync(
    process.env.KEFU_BIN ?? path.join(os.homedir(), ".cache/kefu/target/release/kefu"),
    ["agent", "add", "--database-url", process.env.KEFU_E2E_DATABASE!, "--email", `bo${run}@kefu.local`, "--name", "Bo", "--site", "demo"],
    { cwd: "..", env: { ...process.env, KEFU_AGENT_PASSWORD: demoPassword }, encoding: "utf8" },
  );
  expect(added.status, added.stderr).toBe(0);
  const errors: string[] = [];
  const { page } = await signIn(browser, errors);
  const conversation = await visitorSays(request, `Where is my order #${run}? It was due yesterday.`);
  const row = page.locator(`li.conversation[data-conversation="${conversation}"]`);
  await row.click();
  await page.locator(".conversation-head details.more summary").click();
  await page.locator(".conversation-head .tag-editor input").fill("vip, refund");
  await page.locator(".conversation-head .tag-editor button").click();
  await expect(page.locator(".conversation-head .head-who .tag")).toHaveCount(2);
  // Saving re-draws the header (the menu closes); the transfer list offers the second agent.
  await expect(page.locator(".conversation-head .transfer select")).toContainText("Bo");
  await page.locator("textarea[name=reply]").fill("Let me check that for you.");
  await page.locator("textarea[name=reply]").press("Enter");
  await expect(page.locator(".message.agent:not(.pending)", { hasText: "Let me check" })).toBeVisible();

  fs.mkdirSync(shots, { recursive: true });
  const pages = ["/history", "/reports", "/admin/sites", "/leave-messages"];
  try {
    for (const lang of ["en", "zh"]) {
      if (lang === "zh") {
        await page.locator("header.topbar form.language button").click();
        await expect(page.locator("html")).toHaveAttribute("lang", "zh-CN");
      }
      for (const size of sizes) {
        await page.setViewportSize(size);
        const name = (what: string) => path.join(shots, `${size.width}x${size.height}-${lang}-${what}.png`);
        await page.goto("/inbox");
        await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
        await page.screenshot({ path: name("inbox") });
        await fits(page, size.width, "inbox");
        await row.click();
        await expect(page.locator(".conversation-head")).toBeVisible();
        await page.screenshot({ path: name("conversation") });
        await fits(page, size.width, "conversation");
        if (size.width >= 1024) {
          // Every action of the conversation's header is on screen.
          const actions = page.locator(".conversation-head .head-actions > button, .conversation-head .head-actions summary");
          expect(await actions.count()).toBeGreaterThanOrEqual(3);
          for (const action of await actions.all()) {
            const box = await action.boundingBox();
            expect(box, await action.textContent() ?? "").not.toBeNull();
            expect(box!.x).toBeGreaterThanOrEqual(0);
            expect(box!.x + box!.width, `${await action.textContent()} at ${size.width}px`).toBeLessThanOrEqual(size.width);
            expect(box!.y + box!.height).toBeLessThanOrEqual(size.height);
          }
        } else {
          // On a phone the profile and the way back are one tap each.
          await page.locator(".conversation-head .profile-toggle").click();
          await expect(page.locator(".visitor-panel")).toBeVisible();
          await page.screenshot({ path: name("profile") });
          await page.locator(".conversation-head .back").click();
          await page.locator(".conversation-head .back").click();
          await expect(page.locator(".inbox-pane")).toBeVisible();
          await expect(page.locator(".conversation-pane")).toBeHidden();
        }
        for (const where of pages) {
          await page.goto(where);
          await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
          await page.screenshot({ path: name(where.slice(1).replace("/", "-")), fullPage: size.width < 640 });
          await fits(page, size.width, where);
        }
      }
    }
  } finally {
    await page.setViewportSize(sizes[0]);
    await page.goto("/inbox");
    if ((await page.locator("html").getAttribute("lang")) === "zh-CN") {
      await page.locator("header.topbar form.language button").click();
      await expect(page.locator("html")).toHaveAttribute("lang", "en");
    }
  }
  expect(errors).toEqual([]);
});

const shots = path.join(__dirname, "..", "screenshots");

/** Nothing sticks out of the viewport sideways: the page does not scroll horizontally. */
async function fits(page: Page, width: number, what: string) {
  const overflow = await page.evaluate(() => {
    const out: string[] = [];
    const limit = document.documentElement.clientWidth;
    if (document.documentElement.scrollWidth > limit) out.push(`page ${document.documentElement.scrollWidth}px`);
    return out;
  });
  expect(overflow, `${what} at ${width}px`).toEqual([]);
}

test("Pending, resolve by keyboard, the shortcut list, and banning a visitor from the conversation", async ({ browser, request }) => {
  const errors: string[] = [];
  const { page } = await signIn(browser, errors);
  const run = Date.now() % 1_000_000;
  // A visitor over plain HTTP, whose token the test keeps to try again after the ban.
  const headers = { origin: "https://shop.example", "content-type": "application/json" };
  const post = async (frames: object[], token?: string) => {
    const response = await request.post(`${kefu}/http/visitor/send`, {
      headers: token ? { ...headers, "x-kefu-visitor-token": token } : headers,
      data: JSON.stringify(frames),
    });
    return (await response.json()) as { type: string; [key: string]: any }[];
  };
  const token = (await post([{ type: "hello", protocol_version: 1, site_key: "demo" }])).find((f) => f.type === "welcome")!.visitor_token;
  const sent = await post([{ type: "send", client_id: crypto.randomUUID(), body: `Spam spam ${run}` }], token);
  const conversation = sent.find((f) => f.type === "ack")!.conversation_id;
  const row = page.locator(`li.conversation[data-conversation="${conversation}"]`);
  await expect(row).toBeVisible();

  // `j` opens the newest conversation; `r` and `/` go to the reply box; `?` lists the keys.
  await page.locator("body").press("j");
  const head = page.locator(`.conversation-head[data-conversation="${conversation}"]`);
  await expect(head).toBeVisible();
  await page.locator("body").press("r");
  await expect(page.locator("textarea[name=reply]")).toBeFocused();
  await page.locator("textarea[name=reply]").blur();
  await page.locator("body").press("/");
  await expect(page.locator("textarea[name=reply]")).toBeFocused();
  await expect(page.locator("textarea[name=reply]")).toHaveValue("/");
  await page.locator("textarea[name=reply]").fill("");
  await page.locator("textarea[name=reply]").blur();
  await page.locator("body").press("?");
  await expect(page.locator(".shortcut-help")).toBeVisible();
  await expect(page.locator(".shortcut-help")).toContainText("Next conversation");
  await page.locator("body").press("Escape");
  await expect(page.locator(".shortcut-help")).toBeHidden();

  // Pending: the header and the inbox's tabs follow live.
  const pendingTab = page.locator('nav[aria-label=status] button', { hasText: "Pending" });
  const before = Number(await pendingTab.locator(".count").textContent());
  await head.locator("[data-action=pending]").click();
  await expect(head).toHaveAttribute("data-status", "pending");
  await expect(pendingTab.locator(".count")).toHaveText(String(before + 1));
  await head.locator("[data-action=reopen]").click();
  await expect(head).toHaveAttribute("data-status", "open");
  await page.locator("body").press("e");
  await expect(head).toHaveAttribute("data-status", "resolved");

  // Ban from the conversation's menu, with a reason and a duration; the visitor is refused.
  await head.locator("details.more summary").click();
  const ban = head.locator("form.ban");
  await ban.locator("input").fill("Spam");
  await ban.locator("select").selectOption("1");
  await ban.locator("button").click();
  await expect(ban.getByRole("status")).toContainText("banned");
  const refused = await post([{ type: "hello", protocol_version: 1, site_key: "demo" }], token);
  expect(refused.find((f) => f.type === "error")?.code).toBe("banned");
  expect(errors).toEqual([]);
});

test("with the network gone the console still opens from its last copy, and goes live again when it returns", async ({ browser }) => {
  const errors: string[] = [];
  const { page } = await signIn(browser, errors);
  const context = page.context();
  // The service worker takes the page over, and a reload leaves a copy of the page and its files.
  await page.evaluate(() => navigator.serviceWorker.ready.then(() => undefined));
  await page.reload();
  await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
  expect(await page.evaluate(() => navigator.serviceWorker.controller !== null)).toBe(true);
  await expect(page.locator("[data-connection]")).toHaveAttribute("data-connection", "websocket");

  await context.setOffline(true);
  await page.reload();
  await expect(page.locator("header.topbar")).toBeVisible();
  await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
  await expect(page.locator("[data-connection]")).toHaveAttribute("data-connection", "connecting");

  await context.setOffline(false);
  await expect(page.locator("[data-connection]")).toHaveAttribute("data-connection", "websocket", { timeout: 20_000 });
  // The page and the link's failed attempts while offline are expected; nothing else is.
  expect(errors.filter((e) => !/ERR_INTERNET_DISCONNECTED|WebSocket|Failed to fetch|net::/.test(e))).toEqual([]);
});
