import { test, expect, Page, Browser, BrowserContext } from "@playwright/test";
import * as http from "node:http";
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
  await expect(page.locator("li.conversation", { hasText: "Hello, is anyone there?" })).toBeVisible();
  const id = await page.locator("li.conversation", { hasText: "Hello, is anyone there?" }).getAttribute("data-conversation");
  const row = page.locator(`li.conversation[data-conversation="${id}"]`);

  // Pages other than the inbox are lazy wasm chunks: none came with the inbox, History's
  // arrives when the agent first opens it.
  const chunks: string[] = [];
  page.on("requestfinished", (request) => {
    const name = new URL(request.url()).pathname.match(/^\/pkg\/split___(\w+?)_route_view_/);
    if (name) chunks.push(name[1]);
  });
  await expect(row).toBeVisible();
  expect(chunks).toEqual([]);

  // Across the console, page by page; a message arrives while the agent reads the reports.
  await go(page, "/history");
  expect(chunks).toContain("history");
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
  // The language is the agent's profile: a failure here must not leave later tests in Chinese.
  test.info().annotations.push({ type: "restores", description: "English" });
  try {
  for (const path of consolePages) {
    await page.goto(path);
    await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
    await expect(page.locator("html")).toHaveAttribute("lang", "en");
    await switchButton.click();
    await expect(page.locator("html")).toHaveAttribute("lang", "zh-CN");
    await expect(page.locator('header.topbar nav a[href="/inbox"]')).toContainText("会话");
    await expect(page.locator("main h1, main h2").first()).toContainText(/\p{Script=Han}/u);
    await switchButton.click();
    await expect(page.locator("html")).toHaveAttribute("lang", "en");
    await expect(page.locator('header.topbar nav a[href="/inbox"]')).toContainText("Inbox");
  }
  } finally {
    if ((await page.locator("html").getAttribute("lang")) === "zh-CN") {
      await switchButton.click();
      await expect(page.locator("html")).toHaveAttribute("lang", "en");
    }
  }
  // Still live after all the switching: the connection came back on each full load and is up.
  await expect(page.locator("[data-connection]")).toHaveAttribute("data-connection", "websocket");
  expect(sockets.agent).toBeGreaterThan(0);
  expect(errors).toEqual([]);
});

test("Pending, Snooze, resolve by keyboard, the shortcut list, and banning a visitor from the conversation", async ({ browser, request }) => {
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

  // Snooze for an hour: pending with its time; the visitor writing wakes it at once.
  await head.locator("details.snooze summary").click();
  await head.locator("[data-snooze=hour]").click();
  await expect(head).toHaveAttribute("data-status", "pending");
  await expect(head.locator(".snoozed")).toContainText("Snoozed until");
  await expect(pendingTab.locator(".count")).toHaveText(String(before + 1));
  await post([{ type: "send", client_id: crypto.randomUUID(), conversation_id: conversation, body: `Still there? ${run}` }], token);
  await expect(head).toHaveAttribute("data-status", "open");
  await expect(head.locator(".snoozed")).toHaveCount(0);
  await expect(pendingTab.locator(".count")).toHaveText(String(before));
  await page.locator("body").press("e");
  await expect(head).toHaveAttribute("data-status", "resolved");

  // Ban from the conversation's menu, with a reason and a duration; the visitor is refused.
  await head.locator("details.more summary").click();
  const ban = head.locator("form.ban");
  await ban.locator("input").fill("Spam");
  await ban.locator("select").selectOption("1");
  await ban.locator("button").click();
  await expect(ban.getByRole("status")).toContainText("banned");
  const refused = await post([{ type: "hello", protocol_version: 1, site_key: "demo", visitor_token: token }]);
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
