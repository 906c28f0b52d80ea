import { test, expect, Page, Browser, APIRequestContext } from "@playwright/test";
import { spawnSync } from "node:child_process";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import { AddressInfo } from "node:net";
import { demoPassword } from "../constants";

// The visitor widget as a customer's website uses it: the host pages below are served by a
// separate server on another port (another origin), each embedding the one-line snippet that
// points at Kefu. An agent is a second browser page signed in to the console, speaking the
// real-time protocol over its own WebSocket.

const kefu = `http://127.0.0.1:${Number(process.env.KEFU_E2E_PORT ?? 3950)}`;
const snippet = (attrs = "") =>
  `<script src="${kefu}/widget/widget.js" data-site="demo" ${attrs} async></script>`;
const pages: Record<string, string> = {
  "/": `<h1>Shop</h1><p>Products.</p>${snippet()}`,
  "/http-only": `<h1>Shop</h1>${snippet('data-transport="http"')}`,
  "/zh": `<h1>商店</h1>${snippet('data-lang="zh-CN"')}`,
  "/identify": `<h1>Account</h1>${snippet()}<script>
    window.addEventListener("load", () => window.Kefu.identify({ name: "Mei", email: "mei@example.com", attributes: { plan: "gold" } }));
  </script>`,
  "/hostile": `<style>* { all: unset } div { display: none } button { display: none }
    body * { font-size: 0 }</style><div><h1>Hostile shop</h1></div>${snippet()}`,
};

let host: http.Server;
let hostUrl = "";

test.beforeAll(async () => {
  host = http.createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const body = pages[path];
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(`<!DOCTYPE html><html><head><meta charset="utf-8"><title>Host page</title></head><body>${body}</body></html>`);
  });
  await new Promise<void>((resolve) => host.listen(0, "127.0.0.1", resolve));
  hostUrl = `http://127.0.0.1:${(host.address() as AddressInfo).port}`;
});

test.afterAll(async () => {
  await new Promise((resolve) => host.close(resolve));
});

type Frame = { type: string; [key: string]: any };

/** A signed-in agent with a live WebSocket; frames it receives are collected in the page. */
async function agent(browser: Browser) {
  const context = await browser.newContext({ baseURL: kefu });
  const page = await context.newPage();
  await page.goto("/login");
  await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
  await page.fill('input[name="email"]', "demo@kefu.local");
  await page.fill('input[name="password"]', demoPassword);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/inbox$/);
  await page.evaluate(
    () =>
      new Promise<void>((resolve, reject) => {
        const w = window as any;
        w.frames_ = [];
        const ws = new WebSocket(location.origin.replace("http", "ws") + "/ws/agent");
        w.ws_ = ws;
        ws.onopen = () => ws.send(JSON.stringify({ type: "hello", protocol_version: 1 }));
        ws.onmessage = (e) => {
          const frame = JSON.parse(e.data);
          w.frames_.push(frame);
          if (frame.type === "ping") ws.send(JSON.stringify({ type: "pong", nonce: frame.nonce }));
          if (frame.type === "welcome") resolve();
        };
        ws.onerror = () => reject(new Error("agent websocket failed"));
      }),
  );
  return {
    page,
    /** Waits for a visitor message with this body and returns it. */
    async message(body: string): Promise<Frame> {
      const handle = await page.waitForFunction(
        (body) => (window as any).frames_.find((f: Frame) => f.type === "message" && f.body === body),
        body,
      );
      return (await handle.jsonValue()) as Frame;
    },
    async reply(conversation_id: number, body: string) {
      await page.evaluate(
        ([conversation_id, body]) =>
          (window as any).ws_.send(
            JSON.stringify({ type: "send", conversation_id, client_id: crypto.randomUUID(), body }),
          ),
        [conversation_id, body] as const,
      );
    },
    close: () => context.close(),
  };
}

async function openWidget(page: Page) {
  await expect(page.locator("kefu-widget[data-kefu-ready]")).toBeAttached();
  await page.locator("kefu-widget .launcher").click();
  await expect(page.locator("kefu-widget .panel")).toBeVisible();
}

async function send(page: Page, text: string) {
  const input = page.locator("kefu-widget .compose textarea");
  await input.fill(text);
  await input.press("Enter");
}

/** Waits until no agent of the demo site is online (an agent of another spec file may still be
 * signing out, or lingering after a poll for the idle timeout). */
async function noAgentOnline(request: APIRequestContext) {
  await expect
    .poll(
      async () => {
        const site = await request.get(`${kefu}/http/visitor/site?key=demo`, { headers: { origin: hostUrl } });
        return (await site.json()).online;
      },
      { timeout: 40_000 },
    )
    .toBe(false);
}

// These two run first, before this file's agents sign in.
test("the widget speaks Chinese when the page asks for it", async ({ page, request }) => {
  await noAgentOnline(request);
  await page.goto(hostUrl + "/zh");
  await openWidget(page);
  await expect(page.locator("kefu-widget .greet")).toHaveText("您好！有什么可以帮您？");
  await expect(page.locator("kefu-widget form.offline button.send")).toHaveText("提交留言");
});

test("with no agent online the offline form stores a leave-message", async ({ page, request }) => {
  test.setTimeout(60_000);
  await noAgentOnline(request);
  await page.goto(hostUrl + "/");
  await openWidget(page);
  const form = page.locator("kefu-widget form.offline");
  await expect(form).toBeVisible();
  await expect(page.locator("kefu-widget .compose")).toBeHidden();
  await form.locator('input[name="name"]').fill("Mei");
  await form.locator('textarea[name="body"]').fill("Please call me back about my order.");
  await form.getByRole("button", { name: "Leave a message" }).click();
  // A contact is required; nothing is sent without one.
  await expect(page.locator("kefu-widget .notice")).toHaveText("Please tell us how to reach you.");
  await form.locator('input[name="contact"]').fill("mei@example.com");
  const stored = page.waitForResponse((r) => r.url().endsWith("/http/visitor/leave-message"));
  await form.getByRole("button", { name: "Leave a message" }).click();
  const response = await stored;
  expect(response.status()).toBe(201);
  expect((await response.json()).id).toBeGreaterThan(0);
  await expect(page.locator("kefu-widget .thanks")).toBeVisible();
  await expect(form).toBeHidden();
});

test("a visitor on another origin chats with an agent, and a reply notifies while the panel is closed", async ({ page, browser }) => {
  const ann = await agent(browser);
  await page.goto(hostUrl + "/");
  await openWidget(page);
  await expect(page.locator("kefu-widget .compose")).toBeVisible();
  await expect(page.locator("kefu-widget")).toHaveAttribute("data-transport", "websocket");
  await send(page, "Hello from the host page");
  const message = await ann.message("Hello from the host page");
  expect(message.author).toBe("visitor");
  // The agent was told about the visitor's browser when they came online.
  const presence = await ann.page.evaluate((conversation) => {
    const frames: Frame[] = (window as any).frames_;
    const created = frames.find((f) => f.type === "conversation_created" && f.conversation_id === conversation);
    return frames.find((f) => f.type === "visitor_presence" && f.online && f.visitor_id === created?.visitor_id);
  }, message.conversation_id);
  expect(presence?.details?.time_zone).toMatch(/\w/);
  expect(presence?.details?.screen).toMatch(/^\d+x\d+$/);
  expect(presence?.details?.user_agent).toContain("Chrome");
  // Stored and acknowledged: the bubble shows the delivered mark.
  await expect(page.locator("kefu-widget .m.v .mark")).toHaveText("✓");

  await page.locator("kefu-widget .launcher").click();
  await expect(page.locator("kefu-widget .panel")).toBeHidden();
  await ann.reply(message.conversation_id, "Happy to help!");
  await expect(page.locator("kefu-widget .badge")).toHaveText("1");
  await expect(page).toHaveTitle("(1) Host page");
  await page.locator("kefu-widget .launcher").click();
  await expect(page.locator("kefu-widget .m.a")).toContainText("Happy to help!");
  await expect(page.locator("kefu-widget .badge")).toBeHidden();
  // The header now names the agent who answered, with their initial.
  await expect(page.locator("kefu-widget .head .name")).toHaveText("Demo Admin");
  await expect(page.locator("kefu-widget .head .avatar")).toHaveText("D");
  await expect(page).toHaveTitle("Host page");
  // The agent learns the visitor has read it.
  await ann.page.waitForFunction(() =>
    (window as any).frames_.some((f: Frame) => f.type === "read" && f.author === "visitor"),
  );
  await ann.close();
});

test("with WebSockets broken in the page the widget falls back to HTTP and says so", async ({ page, browser }) => {
  await page.addInitScript(() => {
    // A proxy that kills every WebSocket: each one fails right after it is created.
    (window as any).WebSocket = class {
      static OPEN = 1;
      readyState = 3;
      onerror: any = null;
      onclose: any = null;
      constructor() {
        setTimeout(() => {
          this.onerror?.(new Event("error"));
          this.onclose?.(new CloseEvent("close", { code: 1006 }));
        }, 5);
      }
      send() {}
      close() {}
    };
  });
  const ann = await agent(browser);
  await page.goto(hostUrl + "/");
  await openWidget(page);
  await expect(page.locator("kefu-widget")).toHaveAttribute("data-transport", "http", { timeout: 10_000 });
  await send(page, "Sent over plain HTTP");
  const message = await ann.message("Sent over plain HTTP");
  await ann.reply(message.conversation_id, "Received over HTTP too");
  await expect(page.locator("kefu-widget .m.a")).toContainText("Received over HTTP too");
  await expect(page.locator("kefu-widget .m.v .mark")).toHaveText(/✓/);
  await ann.close();
});

test("data-transport=http never opens a WebSocket", async ({ page, browser }) => {
  const ann = await agent(browser);
  const sockets: string[] = [];
  page.on("websocket", (ws) => sockets.push(ws.url()));
  await page.goto(hostUrl + "/http-only");
  await openWidget(page);
  await expect(page.locator("kefu-widget")).toHaveAttribute("data-transport", "http");
  await send(page, "HTTP only, by choice");
  const message = await ann.message("HTTP only, by choice");
  await ann.reply(message.conversation_id, "Answered");
  await expect(page.locator("kefu-widget .m.a")).toContainText("Answered");
  expect(sockets).toEqual([]);
  await ann.close();
});

for (const [path, transport] of [["/", "websocket"], ["/http-only", "http"]] as const) {
  test(`an agent's invitation opens the widget over ${transport}, and the agent learns it was seen`, async ({ browser }) => {
    const ann = await agent(browser);
    const context = await browser.newContext();
    const page = await context.newPage();
    // A page address of its own, to tell this visitor among those the agent sees.
    const url = `${hostUrl}${path}?invited-over=${transport}`;
    await page.goto(url);
    await expect(page.locator("kefu-widget")).toHaveAttribute("data-transport", transport);
    await expect(page.locator("kefu-widget .panel")).toBeHidden();
    const visitor = await (
      await ann.page.waitForFunction(
        (url) => (window as any).frames_.find((f: Frame) => f.type === "page_view" && f.url === url)?.visitor_id,
        url,
      )
    ).jsonValue();
    const words = `Hello over ${transport}! Can I help?`;
    await ann.page.evaluate(
      ([visitor_id, body]) =>
        (window as any).ws_.send(JSON.stringify({ type: "invite", visitor_id, client_id: crypto.randomUUID(), body })),
      [visitor, words] as const,
    );
    await expect(page.locator("kefu-widget .panel")).toBeVisible();
    await expect(page.locator("kefu-widget .m.a")).toContainText(words);
    // The open panel reads it: the agent is told the invitation was seen.
    const invitation = await ann.message(words);
    await ann.page.waitForFunction(
      (conversation) =>
        (window as any).frames_.some(
          (f: Frame) => f.type === "read" && f.author === "visitor" && f.conversation_id === conversation,
        ),
      invitation.conversation_id,
    );
    await context.close();
    await ann.close();
  });
}

test("the launcher, paperclip and emoji button are drawn icons, not emoji characters", async ({ browser }) => {
  const ann = await agent(browser);
  for (const viewport of [{ width: 1366, height: 768 }, { width: 390, height: 844 }]) {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    await page.goto(hostUrl + "/");
    const launcher = page.locator("kefu-widget .launcher");
    await expect(launcher.locator("svg")).toBeVisible();
    await expect(launcher).toHaveText("");
    await expect(page.locator("kefu-widget[data-kefu-ready]")).toBeAttached();
    const shots = `test-results/widget-screenshots/${viewport.width}x${viewport.height}`;
    await page.screenshot({ path: `${shots}-closed.png` });
    await openWidget(page);
    // An agent is online, so the composer shows with both buttons, named as before.
    await expect(page.locator('kefu-widget .att[title="Send a file"] svg')).toBeVisible();
    await expect(page.locator('kefu-widget .emo[aria-label="Emoji"] svg')).toBeVisible();
    await page.screenshot({ path: `${shots}-open.png` });
    await context.close();
  }
  await ann.close();
});

test("reloading the page keeps the conversation and shows each message once", async ({ page, browser }) => {
  const ann = await agent(browser);
  await page.goto(hostUrl + "/");
  await openWidget(page);
  for (const text of ["first", "second", "third"]) {
    await send(page, text);
  }
  const message = await ann.message("third");
  await ann.reply(message.conversation_id, "an answer");
  await expect(page.locator("kefu-widget .m")).toHaveCount(4);
  await expect(page.locator("kefu-widget .m.v .mark", { hasText: "…" })).toHaveCount(0);

  await page.reload();
  await openWidget(page);
  await expect(page.locator("kefu-widget .m.a")).toContainText("an answer");
  await expect(page.locator("kefu-widget .m")).toHaveCount(4);
  const bodies = await page.locator("kefu-widget .m .b").allTextContents();
  expect(bodies).toEqual(["first", "second", "third", "an answer"]);
  // Replayed history is not a new reply: no badge, no title change.
  await expect(page.locator("kefu-widget .badge")).toBeHidden();

  // The same conversation continues after the reload.
  await send(page, "after reload");
  const later = await ann.message("after reload");
  expect(later.conversation_id).toBe(message.conversation_id);
  await ann.close();
});

test("a visitor sends a picture, the agent answers with a document, and a refused file says why", async ({ page, browser }) => {
  const ann = await agent(browser);
  await page.goto(hostUrl + "/");
  await openWidget(page);
  await expect(page.locator("kefu-widget")).toHaveAttribute("data-transport", "websocket");
  // A real 1×1 PNG, chosen in the widget's file input (the paperclip's).
  const png = Buffer.from(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
    "base64",
  );
  const fileInput = page.locator("kefu-widget input.file");
  await expect(fileInput).toHaveAttribute("accept", /image\/png/);
  // Files go into a conversation: before the first message the widget asks for one.
  await fileInput.setInputFiles({ name: "parcel.png", mimeType: "image/png", buffer: png });
  await expect(page.locator("kefu-widget .notice")).toHaveText("Send a message first, then your file.");
  await send(page, "Here is the parcel");
  await expect(page.locator("kefu-widget .m.v .mark")).toHaveText("✓");
  await fileInput.setInputFiles({ name: "parcel.png", mimeType: "image/png", buffer: png });
  const picture = page.locator("kefu-widget .m.v a.file img");
  await expect(picture).toHaveAttribute("src", new RegExp(`^${kefu}/attachments/[0-9a-f]{32}$`));
  await expect(picture).toHaveAttribute("alt", "parcel.png");
  // The browser fetched and decoded it across origins.
  await expect.poll(() => picture.evaluate((img: HTMLImageElement) => img.naturalWidth)).toBe(1);
  await expect(page.locator("kefu-widget .m.v .mark").last()).toHaveText("✓");

  const handle = await ann.page.waitForFunction(() =>
    (window as any).frames_.find((f: Frame) => f.type === "message" && f.attachment),
  );
  const message = (await handle.jsonValue()) as Frame;
  expect(message.body).toBe("");
  expect(message.attachment).toMatchObject({ name: "parcel.png", content_type: "image/png", size: png.length });

  // The agent uploads a PDF from the console's origin and sends it with a caption.
  await ann.page.evaluate(async (conversation_id) => {
    const upload = await fetch(`/http/agent/upload?conversation=${conversation_id}&name=terms.pdf`, {
      method: "POST",
      headers: { "content-type": "application/pdf" },
      body: "%PDF-1.4\n%%EOF\n",
    });
    const file = await upload.json();
    (window as any).ws_.send(
      JSON.stringify({ type: "send", conversation_id, client_id: crypto.randomUUID(), body: "Our terms", attachment: file.id }),
    );
  }, message.conversation_id);
  const document = page.locator("kefu-widget .m.a a.file");
  await expect(document).toHaveText("terms.pdf");
  await expect(document).toHaveAttribute("rel", "noopener noreferrer nofollow");
  await expect(page.locator("kefu-widget .m.a .b")).toHaveText("Our terms");
  const download = await page.request.get((await document.getAttribute("href")) ?? "");
  expect(download.headers()["content-disposition"]).toContain("attachment");

  // HTML is never accepted (it could run script on Kefu's origin): the server refuses it and
  // the widget says so, sending nothing.
  await fileInput.setInputFiles({ name: "evil.html", mimeType: "text/html", buffer: Buffer.from("<script>alert(1)</script>") });
  await expect(page.locator("kefu-widget .notice")).toHaveText("File type or size not accepted.");
  await expect(page.locator("kefu-widget .m.v")).toHaveCount(2);
  await ann.close();
});

test("after the agent resolves the chat the visitor rates it and starts a new one", async ({ page, browser }) => {
  const ann = await agent(browser);
  await page.goto(hostUrl + "/");
  await openWidget(page);
  await send(page, "That answers everything");
  const first = await ann.message("That answers everything");
  await expect(page.locator("kefu-widget .rate")).toBeHidden();
  await ann.page.evaluate(
    (conversation_id) =>
      (window as any).ws_.send(
        JSON.stringify({ type: "set_conversation_status", conversation_id, client_id: crypto.randomUUID(), status: "resolved" }),
      ),
    first.conversation_id,
  );
  // The status record is not shown as a message; the rating form is.
  const rate = page.locator("kefu-widget .rate");
  await expect(rate).toBeVisible();
  await expect(rate).toContainText("How was this chat?");
  await expect(page.locator("kefu-widget .m")).toHaveCount(1);
  await rate.locator("textarea").fill("Quick and kind");
  const rated = page.waitForRequest((r) => r.url().endsWith("/http/visitor/rating"));
  await rate.locator('button[value="4"]').click();
  // No SMTP relay on this server: the transcript field stays hidden and empty.
  await expect(rate.locator("input[name=email]")).toBeHidden();
  expect((await rated).postDataJSON()).toEqual({
    conversation_id: first.conversation_id,
    score: 4,
    comment: "Quick and kind",
    transcript_to: "",
  });
  await expect(page.locator("kefu-widget .rated")).toHaveText("Thanks for your feedback!");
  await expect(rate).toBeHidden();

  // A new conversation: the old transcript goes, the next message opens another conversation.
  await page.locator("kefu-widget .new").click();
  await expect(page.locator("kefu-widget .m")).toHaveCount(0);
  await expect(page.locator("kefu-widget .rated")).toBeHidden();
  await expect(page.locator("kefu-widget .greet")).toBeVisible();
  await send(page, "A different question");
  const second = await ann.message("A different question");
  expect(second.conversation_id).not.toBe(first.conversation_id);
  await expect(page.locator("kefu-widget .m.v .mark")).toHaveText("✓");
  await ann.close();
});

test("hostile text is shown as text and nothing runs", async ({ page, browser }) => {
  const dialogs: string[] = [];
  page.on("dialog", async (dialog) => {
    dialogs.push(dialog.message());
    await dialog.dismiss();
  });
  const ann = await agent(browser);
  await page.goto(hostUrl + "/");
  await openWidget(page);
  const evil = `<img src=x onerror=alert(1)> <script>window.pwned=1;alert(2)</script> javascript:alert(3)`;
  await send(page, evil);
  const message = await ann.message(evil);
  await ann.reply(message.conversation_id, `${evil} https://example.com/ok`);
  await expect(page.locator("kefu-widget .m.a .b")).toHaveText(`${evil} https://example.com/ok`);
  await expect(page.locator("kefu-widget .m.v .b")).toHaveText(evil);
  await expect(page.locator("kefu-widget img")).toHaveCount(0);
  await expect(page.locator("kefu-widget script")).toHaveCount(0);
  // Only the http(s) URL became a link, and an inert one.
  const links = page.locator("kefu-widget .m a");
  await expect(links).toHaveCount(1);
  await expect(links).toHaveAttribute("href", "https://example.com/ok");
  await expect(links).toHaveAttribute("rel", "noopener noreferrer nofollow");
  expect(await page.evaluate(() => (window as any).pwned)).toBeUndefined();
  expect(dialogs).toEqual([]);
  await ann.close();
});

test("the host page's aggressive CSS does not break the widget", async ({ page, browser }) => {
  const ann = await agent(browser);
  await page.goto(hostUrl + "/hostile");
  const launcher = page.locator("kefu-widget .launcher");
  await expect(launcher).toBeVisible();
  const box = await launcher.boundingBox();
  expect(box?.width).toBeGreaterThan(40);
  expect(box?.height).toBeGreaterThan(40);
  await openWidget(page);
  const panel = await page.locator("kefu-widget .panel").boundingBox();
  expect(panel?.width).toBeGreaterThan(250);
  expect(panel?.height).toBeGreaterThan(250);
  await expect(page.locator("kefu-widget .greet")).toBeVisible();
  await send(page, "Styles did not get in the way");
  await ann.message("Styles did not get in the way");
  await expect(page.locator("kefu-widget .m.v .b")).toHaveText("Styles did not get in the way");
  await ann.close();
});

test("the host page identifies its visitor through window.Kefu", async ({ page }) => {
  const saved = page.waitForResponse((r) => r.url().endsWith("/http/visitor/profile"));
  await page.goto(hostUrl + "/identify");
  expect((await saved).status()).toBe(204);
  // identify() loaded the widget without a click; the panel stays closed until asked.
  await expect(page.locator("kefu-widget[data-kefu-ready]")).toBeAttached();
  await expect(page.locator("kefu-widget .panel")).toBeHidden();
  await page.evaluate(() => (window as any).Kefu.open());
  await expect(page.locator("kefu-widget .panel")).toBeVisible();
});

test("the inbox lists the widget's conversations in its server-rendered HTML", async ({ browser }) => {
  // An agent's session, then the inbox page fetched as plain HTML, without running any script.
  const context = await browser.newContext({ baseURL: kefu });
  const page = await context.newPage();
  await page.goto("/login");
  await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
  await page.fill('input[name="email"]', "demo@kefu.local");
  await page.fill('input[name="password"]', demoPassword);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/inbox$/);
  const html = await (await page.request.get("/inbox")).text();
  expect(html).toContain("Styles did not get in the way");
  expect(html).toContain("&lt;img src=x onerror=alert(1)&gt;");
  expect(html).not.toContain("<img src=x");
  // …and the same page becomes interactive after hydration.
  await page.reload();
  await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
  await expect(page.locator("li.conversation").first()).toBeVisible();
  await context.close();
});

test("an admin adds a site and copies its snippet; the widget on a page with it chats; agents may not", async ({ browser }) => {
  const context = await browser.newContext({ baseURL: kefu });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: kefu });
  const admin = await context.newPage();
  await admin.goto("/login");
  await expect(admin.locator("main[data-hydrated=true]")).toBeVisible();
  await admin.fill('input[name="email"]', "demo@kefu.local");
  await admin.fill('input[name="password"]', demoPassword);
  await admin.getByRole("button", { name: "Sign in" }).click();
  await expect(admin).toHaveURL(/\/inbox$/);
  await admin.getByRole("link", { name: "Settings" }).click();
  await expect(admin).toHaveURL(/\/admin\/sites$/);
  await expect(admin.locator("main[data-hydrated=true]")).toBeVisible();

  const name = `Outlet ${Date.now() % 1_000_000}`;
  const form = admin.locator("form.new-site");
  await form.getByLabel("Name", { exact: true }).fill(name);
  await form.getByLabel("Allowed origins (one per line)").fill(hostUrl);
  await form.getByLabel("Greeting").fill("欢迎光临 Outlet");
  await form.getByLabel("Corner").selectOption("left");
  await form.getByRole("button", { name: "Create" }).click();
  const site = admin.locator("details.site-item", { hasText: name }).locator("section.site-form");
  await expect(site).toBeVisible();
  await site.getByRole("button", { name: "Copy" }).click();
  await expect(site.getByRole("button", { name: "Copied" })).toBeVisible();
  const copied = await admin.evaluate(() => navigator.clipboard.readText());
  expect(copied).toBe(await site.locator("textarea.snippet").inputValue());
  expect(copied).toMatch(/^<script src="http:\/\/127\.0\.0\.1:\d+\/widget\/widget\.js" data-site="\w{16}" async><\/script>$/);
  await context.close();

  // The admin answers the new site: an agent connection signed in after it was added sees its chats.
  const ann = await agent(browser);
  pages["/outlet"] = `<h1>Outlet</h1>${copied}`;
  const visitor = await browser.newPage();
  await visitor.goto(hostUrl + "/outlet");
  await openWidget(visitor);
  await expect(visitor.locator("kefu-widget .compose")).toBeVisible();
  // The look chosen in the form reached the widget.
  await expect(visitor.locator("kefu-widget li.greet")).toHaveText("欢迎光临 Outlet");
  await expect(visitor.locator("kefu-widget")).toHaveAttribute("data-position", "left");
  await send(visitor, "Hello from the new site");
  const message = await ann.message("Hello from the new site");
  expect(message.author).toBe("visitor");
  await ann.reply(message.conversation_id, "Welcome to the outlet!");
  await expect(visitor.locator("kefu-widget .m.a")).toContainText("Welcome to the outlet!");
  await ann.close();
  await visitor.close();

  // An agent without the admin role: the page says no, and so does the server function.
  const email = `agent${Date.now() % 1_000_000}@kefu.local`;
  const added = spawnSync(
    process.env.KEFU_BIN ?? path.join(os.homedir(), ".cache/kefu/target/release/kefu"),
    ["agent", "add", "--database-url", process.env.KEFU_E2E_DATABASE!, "--email", email, "--name", "Mei", "--site", "demo"],
    { cwd: "..", env: { ...process.env, KEFU_AGENT_PASSWORD: demoPassword }, encoding: "utf8" },
  );
  expect(added.status, added.stderr).toBe(0);
  const mei = await browser.newContext({ baseURL: kefu });
  const page = await mei.newPage();
  await page.goto("/login");
  await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
  await page.fill('input[name="email"]', email);
  await page.fill('input[name="password"]', demoPassword);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/inbox$/);
  await expect(page.getByRole("link", { name: "Settings" })).toHaveCount(0);
  await page.goto("/admin/sites");
  await expect(page.getByRole("alert")).toHaveText("Only administrators can do this.");
  await expect(page.locator("section.site-form")).toHaveCount(0);
  // From the console's own origin, so it is the role that refuses it.
  const refused = await page.request.post("/api/admin/sites/create", {
    headers: { origin: kefu },
    form: { name: "Sneaky", origins: "https://evil.example" },
  });
  expect(refused.status()).toBe(403);
  expect(await refused.text()).toContain("forbidden");
  await mei.close();
});
