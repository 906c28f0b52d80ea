import {
  test,
  expect,
  Page,
  Browser,
  BrowserContext,
  APIRequestContext,
  request as playwrightRequest,
} from "@playwright/test";
import { spawn, spawnSync, ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { demoPassword } from "../constants";

// The agent's desk in the console, driven in Chromium: its own live connection (WebSocket, or
// HTTP when chosen or when WebSockets fail), the inbox, a conversation, the visitors online.
// Visitors here speak the protocol over plain HTTP from the test, like any third-party client.

const kefu = `http://127.0.0.1:${Number(process.env.KEFU_E2E_PORT ?? 3950)}`;

type Frame = { type: string; [key: string]: any };

/** A visitor of the demo site speaking the HTTP fallback. */
class Visitor {
  token?: string;
  conversation?: number;
  constructor(
    private api: APIRequestContext,
    private base: string,
  ) {}

  private async post(frames: object[]): Promise<Frame[]> {
    const headers: Record<string, string> = { origin: "https://shop.example", "content-type": "application/json" };
    if (this.token) headers["x-kefu-visitor-token"] = this.token;
    const response = await this.api.post(`${this.base}/http/visitor/send`, { headers, data: JSON.stringify(frames) });
    expect(response.status()).toBe(200);
    return response.json();
  }

  async hello(): Promise<Frame[]> {
    const frames = await this.post([
      { type: "hello", protocol_version: 1, site_key: "demo", ...(this.token ? { visitor_token: this.token } : {}) },
    ]);
    this.token = frames.find((f) => f.type === "welcome")?.visitor_token ?? this.token;
    return frames;
  }

  /** Where this visitor's conversation waits, as a fresh hello is told (none: not waiting). */
  async place(): Promise<number | undefined> {
    return (await this.hello()).find((f) => f.type === "queue")?.position;
  }

  async say(body: string) {
    const send: Frame = { type: "send", client_id: crypto.randomUUID(), body };
    if (this.conversation) send.conversation_id = this.conversation;
    const frames = await this.post([send]);
    const ack = frames.find((f) => f.type === "ack");
    expect(ack, JSON.stringify(frames)).toBeTruthy();
    this.conversation = ack!.conversation_id;
  }
}

/** Contexts a test opened; closed after it even when it fails, so no agent stays online. */
const opened: BrowserContext[] = [];
test.afterEach(async () => {
  for (const context of opened.splice(0)) await context.close().catch(() => {});
});

async function newContext(browser: Browser, base: string) {
  const context = await browser.newContext({ baseURL: base });
  opened.push(context);
  return context;
}

async function signIn(browser: Browser, base: string, mode: "auto" | "http", init?: string, email = "demo@kefu.local") {
  const context = await newContext(browser, base);
  if (init) await context.addInitScript(init);
  const page = await context.newPage();
  await page.goto("/login");
  await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
  await page.fill('input[name="email"]', email);
  await page.fill('input[name="password"]', demoPassword);
  await page.locator(`input[name="mode"][value="${mode}"]`).check();
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/inbox$/);
  await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
  return { context, page };
}

async function openConversation(page: Page, id: number) {
  await page.locator(`li.conversation[data-conversation="${id}"]`).click();
  await expect(page.locator(`.conversation-head[data-conversation="${id}"]`)).toBeVisible();
}

async function signOut(page: Page) {
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login$/);
}

test("in HTTP-only mode, with WebSockets failing in the page, an agent receives and answers live", async ({ browser, request }) => {
  // Any WebSocket the page opens fails at once.
  const broken = `window.WebSocket = class { constructor() { throw new Error("blocked by proxy"); } };`;
  const { context, page } = await signIn(browser, kefu, "http", broken);
  await expect(page.locator("[data-connection]")).toHaveAttribute("data-connection", "http");
  // A shortcut of this run's own: the shared server keeps the replies of earlier runs.
  const shortcut = `clear${Date.now() % 1_000_000}`;
  const added = await page.request.post("/api/canned_replies/add", {
    headers: { origin: kefu },
    form: { site_id: "1", shortcut, body: "Yes, loud and clear." },
  });
  expect(added.status()).toBe(200);

  const visitor = new Visitor(request, kefu);
  await visitor.hello();
  await visitor.say("Hello over plain HTTP?");
  // The new conversation appears live, with its unread count and the tab title.
  const row = page.locator(`li.conversation[data-conversation="${visitor.conversation}"]`);
  await expect(row).toContainText("Hello over plain HTTP?");
  await expect(row.locator(".unread")).toHaveText("1");
  await expect(page).toHaveTitle(/^\(\d+\) Kefu$/);

  await openConversation(page, visitor.conversation!);
  await expect(page.locator(".transcript .message.visitor .body")).toHaveText(["Hello over plain HTTP?"]);
  await expect(row.locator(".unread")).toHaveCount(0);
  // A canned reply completes from its `/shortcut`, then Enter sends it.
  const reply = page.getByLabel("Reply");
  await reply.pressSequentially(`/${shortcut.slice(0, -2)}`);
  await expect(page.locator(".suggestions li")).toHaveText([`/${shortcut} Yes, loud and clear.`]);
  await reply.press("Enter");
  await expect(reply).toHaveValue("Yes, loud and clear.");
  await reply.press("Enter");
  await expect(page.locator(".transcript .message.agent:not(.pending)")).toContainText(["Yes, loud and clear."]);
  await expect(reply).toHaveValue("");

  // The visitor gets the reply from the server.
  const events = await request.get(
    `${kefu}/http/visitor/events?cursors=${visitor.conversation}:1&wait=0`,
    { headers: { origin: "https://shop.example", "x-kefu-visitor-token": visitor.token! } },
  );
  const frames: Frame[] = await events.json();
  expect(frames.filter((f) => f.type === "message").map((f) => f.body)).toEqual(["Yes, loud and clear."]);

  // Emoji go into the reply; files go up and out as messages, refused ones say why.
  await page.getByRole("button", { name: "Emoji" }).click();
  await page.getByRole("option", { name: "👍" }).click();
  await expect(reply).toHaveValue("👍");
  await reply.fill("");
  const png = Buffer.from(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
    "base64",
  );
  await page.getByLabel("Send a file").setInputFiles({ name: "dot.png", mimeType: "image/png", buffer: png });
  await expect(page.locator('.transcript .message.agent img[alt="dot.png"]')).toBeVisible();
  await page.getByLabel("Send a file").setInputFiles({ name: "x.svg", mimeType: "image/svg+xml", buffer: Buffer.from("<svg/>") });
  await expect(page.locator(".composer [role=alert]")).toContainText("not accepted");

  // An internal note shows among the messages for agents only.
  await page.getByLabel("Internal note").check();
  await reply.fill("Checked the order: it shipped Monday.");
  await reply.press("Enter");
  await expect(page.locator(".transcript .message.note")).toContainText("Checked the order: it shipped Monday.");
  await page.getByLabel("Internal note").uncheck();
  const after = await request.get(`${kefu}/http/visitor/events?cursors=${visitor.conversation}:0&wait=0`, {
    headers: { origin: "https://shop.example", "x-kefu-visitor-token": visitor.token! },
  });
  expect(await after.text()).not.toContain("shipped Monday");

  // Tags: set in the header's "More" menu, shown in the list, filterable.
  await page.locator(".conversation-head details.more summary").click();
  await page.getByLabel("Tags, comma-separated").fill("Refund, VIP");
  await page.getByRole("button", { name: "Save tags" }).click();
  await expect(row.locator(".tag")).toHaveText(["refund", "vip"]);
  await page.getByLabel("Filter by tag").fill("vip");
  await expect(row).toBeVisible();
  await page.getByLabel("Filter by tag").fill("other");
  await expect(row).toHaveCount(0);
  await page.getByLabel("Filter by tag").fill("");

  // Resolving moves it out of the open list, live.
  await page.getByRole("button", { name: "Resolve", exact: true }).click();
  await expect(page.locator(`.conversation-head`)).toHaveAttribute("data-status", "resolved");
  await expect(row).toHaveCount(0);
  await signOut(page);
  await context.close();
});

test("the visitor list shows a visitor's page change within 2 s", async ({ browser }) => {
  const { context, page } = await signIn(browser, kefu, "auto");
  await expect(page.locator("[data-connection]")).toHaveAttribute("data-connection", "websocket");
  const visitorContext = await newContext(browser, kefu);
  const visitorPage = await visitorContext.newPage();
  await visitorPage.goto("/demo");
  // Welcomed (the widget reports its transport then): page changes are reported from now on.
  await expect(visitorPage.locator("kefu-widget[data-transport]")).toBeAttached();
  const visitors = page.locator("ul.visitors li.visitor");
  await expect(visitors.filter({ hasText: "/demo" })).toHaveCount(1);
  await visitorPage.evaluate(() => history.pushState({}, "", "/demo?step=pricing"));
  await expect(visitors.filter({ hasText: "step=pricing" })).toHaveCount(1, { timeout: 2_000 });
  await expect(visitors.filter({ hasText: "step=pricing" }).locator(".pages")).toHaveText("2");
  // The browser is named from its user agent on the server.
  await expect(visitors.filter({ hasText: "step=pricing" }).locator(".browser")).toContainText(/Chrom\w* \d+ · Linux/);

  // Invite to chat: the visitor's widget opens with the agent's words.
  const row = visitors.filter({ hasText: "step=pricing" });
  await row.getByLabel("Say hello…").fill("Hi! Questions about pricing?");
  await row.getByRole("button", { name: "Invite to chat" }).click();
  await expect(visitorPage.locator("kefu-widget .panel")).toBeVisible();
  await expect(visitorPage.locator("kefu-widget .m")).toContainText(["Hi! Questions about pricing?"]);
  await expect(row).toHaveAttribute("data-chatting", "true");
  await visitorContext.close();
  await expect(visitors.filter({ hasText: "step=pricing" })).toHaveCount(0);
  await signOut(page);
  await context.close();
});

/** A second kefu server of our own, on its own port and database, that the test can kill. */
class OwnServer {
  process?: ChildProcess;
  readonly base: string;
  private dir = fs.mkdtempSync(path.join(os.tmpdir(), "kefu-e2e-own-"));
  private bin = process.env.KEFU_BIN ?? path.join(os.homedir(), ".cache/kefu/target/release/kefu");

  constructor(private port: number) {
    this.base = `http://127.0.0.1:${port}`;
  }

  private get database() {
    return `sqlite://${this.dir}/kefu.db`;
  }

  async start() {
    this.process = spawn(
      this.bin,
      ["serve", "--demo", "--bind", `127.0.0.1:${this.port}`, "--database-url", this.database],
      { cwd: "..", env: { ...process.env, KEFU_DEMO_PASSWORD: demoPassword, KEFU_LOG_LEVEL: "warn" }, stdio: "ignore" },
    );
    await expect
      .poll(async () => (await fetch(`${this.base}/readyz`).catch(() => null))?.status ?? 0, { timeout: 20_000 })
      .toBe(200);
  }

  /** `kefu agent add` on this server's database, for the demo site. */
  addAgent(email: string, name: string, maxChats: number) {
    const result = spawnSync(
      this.bin,
      ["agent", "add", "--database-url", this.database, "--email", email, "--name", name, "--site", "demo", "--max-chats", String(maxChats)],
      { cwd: "..", env: { ...process.env, KEFU_AGENT_PASSWORD: demoPassword }, encoding: "utf8" },
    );
    expect(result.status, result.stderr).toBe(0);
  }

  /** `kefu team add` on this server's database, for the demo site. */
  addTeam(name: string, members: string[]) {
    const args = ["team", "add", "--database-url", this.database, "--site", "demo", "--name", name];
    for (const member of members) args.push("--member", member);
    const result = spawnSync(this.bin, args, { cwd: "..", env: process.env, encoding: "utf8" });
    expect(result.status, result.stderr).toBe(0);
  }

  async kill() {
    const exited = new Promise((resolve) => this.process?.once("exit", resolve));
    this.process?.kill("SIGKILL");
    await exited;
  }
}

test("after the server is killed and restarted, the console reconnects by itself and shows every message once", async ({ browser }) => {
  test.setTimeout(60_000);
  const server = new OwnServer(Number(process.env.KEFU_E2E_PORT ?? 3950) + 7);
  await server.start();
  const api = await playwrightRequest.newContext();
  try {
    const { context, page } = await signIn(browser, server.base, "auto");
    const indicator = page.locator("[data-connection]");
    await expect(indicator).toHaveAttribute("data-connection", "websocket");
    const visitor = new Visitor(api, server.base);
    await visitor.hello();
    await visitor.say("before the crash");
    await openConversation(page, visitor.conversation!);
    await expect(page.locator(".transcript .message.visitor .body")).toHaveText(["before the crash"]);

    await server.kill();
    await expect(indicator).toHaveAttribute("data-connection", "connecting");
    await server.start();
    // Written while the console is still away.
    for (const body of ["while you were away 1", "while you were away 2", "while you were away 3"]) {
      await visitor.say(body);
    }
    await expect(indicator).toHaveAttribute("data-connection", "websocket", { timeout: 20_000 });
    await expect(page.locator(".transcript .message.visitor .body")).toHaveText([
      "before the crash",
      "while you were away 1",
      "while you were away 2",
      "while you were away 3",
    ]);
    // And live again afterwards.
    await visitor.say("back to normal");
    await expect(page.locator(".transcript .message.visitor")).toHaveCount(5);
    await context.close();
  } finally {
    await api.dispose();
    await server.kill();
  }
});

test("two agents with two chats each: round-robin, a queue whose place the visitor sees, and a live transfer", async ({ browser }) => {
  test.setTimeout(90_000);
  const server = new OwnServer(Number(process.env.KEFU_E2E_PORT ?? 3950) + 8);
  await server.start();
  server.addAgent("ann@shop.example", "Ann", 2);
  server.addAgent("bo@shop.example", "Bo", 2);
  server.addTeam("Billing", ["bo@shop.example"]);
  const api = await playwrightRequest.newContext();
  try {
    const ann = await signIn(browser, server.base, "auto", undefined, "ann@shop.example");
    const bo = await signIn(browser, server.base, "auto", undefined, "bo@shop.example");
    for (const agent of [ann, bo]) {
      await expect(agent.page.locator("[data-connection]")).toHaveAttribute("data-connection", "websocket");
      await agent.page.getByRole("button", { name: "Mine" }).click();
    }
    const mine = (agent: { page: Page }) => agent.page.locator("ul.inbox li.conversation");

    // Four visitors: handed out in turn, two each.
    const visitors: Visitor[] = [];
    for (let i = 1; i <= 4; i++) {
      const visitor = new Visitor(api, server.base);
      await visitor.hello();
      await visitor.say(`visitor ${i} here`);
      visitors.push(visitor);
      await expect.poll(async () => (await mine(ann).count()) + (await mine(bo).count())).toBe(i);
    }
    await expect(mine(ann)).toHaveCount(2);
    await expect(mine(bo)).toHaveCount(2);

    // The fifth, in the widget, waits first in the queue and is told so.
    const page = await (await newContext(browser, server.base)).newPage();
    await page.goto("/demo");
    await page.locator("kefu-widget .launcher").click();
    const input = page.locator("kefu-widget .compose textarea");
    await input.fill("visitor 5, anyone there?");
    await input.press("Enter");
    const line = page.locator("kefu-widget .typing");
    await expect(line).toHaveText("#1 in the queue…");
    // A sixth waits behind.
    const sixth = new Visitor(api, server.base);
    await sixth.hello();
    await sixth.say("visitor 6 here");
    expect(await sixth.place()).toBe(2);
    await ann.page.getByRole("button", { name: "Unassigned" }).click();
    await expect(mine(ann)).toHaveCount(2);
    await ann.page.getByRole("button", { name: "Mine" }).click();

    // The agent of the first chat resolves it: the fifth visitor gets them, the sixth moves up.
    const first = visitors[0].conversation!;
    const resolver = (await mine(ann).and(ann.page.locator(`[data-conversation="${first}"]`)).count()) ? ann : bo;
    await resolver.page.locator(`li.conversation[data-conversation="${first}"]`).click();
    await resolver.page.getByRole("button", { name: "Resolve", exact: true }).click();
    await expect(line).toBeHidden();
    await expect(page.locator("kefu-widget .name")).toHaveText(resolver === ann ? "Ann" : "Bo");
    await expect(mine(resolver)).toHaveCount(2);
    expect(await sixth.place()).toBe(1);

    // A transfer moves a conversation live on both screens.
    const moving = visitors[1].conversation!;
    const owner = (await mine(ann).and(ann.page.locator(`[data-conversation="${moving}"]`)).count()) ? ann : bo;
    const target = owner === ann ? bo : ann;
    const targetName = target === ann ? "Ann" : "Bo";
    const before = { target: await mine(target).count() };
    await owner.page.locator(`li.conversation[data-conversation="${moving}"]`).click();
    // Transfer is in the conversation's "More" menu; teams of the site are offered too.
    await owner.page.locator(".conversation-head details.more summary").click();
    await expect(owner.page.getByLabel("Transfer to").locator("option", { hasText: "Team: Billing" })).toHaveCount(1);
    await owner.page.getByLabel("Transfer to").selectOption({ label: `${targetName} (Online)` });
    await owner.page.getByLabel("Note for your colleague (optional)").fill("Asked about a refund.");
    await owner.page.getByRole("button", { name: "Transfer", exact: true }).click();
    // It leaves the owner's list and joins the target's, live on both screens. (The slot it
    // frees may go straight to the sixth visitor, who was waiting: the owner's count can stay.)
    const listed = (agent: { page: Page }) => mine(agent).and(agent.page.locator(`[data-conversation="${moving}"]`));
    await expect(listed(owner)).toHaveCount(0);
    await expect(listed(target)).toHaveCount(1);
    await expect(mine(target)).toHaveCount(before.target + 1);
    await expect(owner.page.locator(".conversation-head .assignee")).toContainText(targetName);
    await target.page.locator(`li.conversation[data-conversation="${moving}"]`).click();
    await expect(target.page.locator(".handover")).toContainText("Asked about a refund.");
    await ann.context.close();
    await bo.context.close();
    await page.context().close();
  } finally {
    await api.dispose();
    await server.kill();
  }
});

test("an agent searches history in Chinese, opens the transcript and exports what was found", async ({ browser, request }) => {
  // A word of this run's own: the shared server keeps the conversations of earlier tests.
  const run = `zq${Date.now() % 1_000_000}`;
  const visitor = new Visitor(request, kefu);
  await visitor.hello();
  await visitor.say(`您好，订单 ${run} 什么时候发货？`);
  await visitor.say(`<img src=x onerror=alert(1)> 我想申请退款 ${run}`);
  const { page } = await signIn(browser, kefu, "auto");
  let dialogs = 0;
  page.on("dialog", (dialog) => {
    dialogs += 1;
    dialog.dismiss().catch(() => {});
  });

  await page.getByRole("link", { name: "History" }).click();
  await expect(page).toHaveURL(/\/history$/);
  const search = page.getByRole("searchbox", { name: "Search messages and leave-messages" });
  await search.fill(`退款 ${run}`);
  await search.press("Enter");
  await expect(page).toHaveURL(/\/history\?.*q=/);
  // One message holds both terms; both are marked, and the visitor's markup is only text.
  const hits = page.locator("ul.hits:not(.leave-hits) li.hit");
  await expect(hits).toHaveCount(1);
  await expect(hits.locator("mark")).toHaveText(["退款", run]);
  await expect(hits).toContainText("<img src=x onerror=alert(1)>");
  await expect(page.locator(".hits img")).toHaveCount(0);

  // The hit opens the conversation's whole transcript beside the list.
  await hits.getByRole("link").click();
  await expect(page).toHaveURL(new RegExp(`c=${visitor.conversation}`));
  const transcript = page.getByRole("region", { name: "Transcript" });
  await expect(transcript.locator(".line.visitor p")).toHaveText([
    `您好，订单 ${run} 什么时候发货？`,
    `<img src=x onerror=alert(1)> 我想申请退款 ${run}`,
  ]);

  // The CSV link exports exactly what is listed.
  const csv = await page.request.get((await page.getByRole("link", { name: "CSV" }).getAttribute("href"))!);
  expect(csv.status()).toBe(200);
  const lines = (await csv.text()).trim().split("\r\n");
  expect(lines).toHaveLength(2);
  expect(lines[1]).toContain(`我想申请退款 ${run}`);
  expect(dialogs).toBe(0);
});

test("an agent takes a leave-message, notes what was done, and is told when mail is not set up", async ({ browser, request }) => {
  const run = `lm${Date.now() % 1_000_000}`;
  const visitor = new Visitor(request, kefu);
  await visitor.hello();
  const left = await request.post(`${kefu}/http/visitor/leave-message`, {
    headers: { origin: "https://shop.example", "content-type": "application/json", "x-kefu-visitor-token": visitor.token! },
    data: JSON.stringify({ name: "Wang", contact: `${run}@example.com`, body: `请回电 ${run}` }),
  });
  expect(left.status()).toBe(201);
  const { page } = await signIn(browser, kefu, "auto");

  await page.getByRole("link", { name: "Leave-messages" }).click();
  await expect(page).toHaveURL(/\/leave-messages$/);
  await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
  const item = page.locator("article.leave", { hasText: run });
  await expect(item).toHaveAttribute("data-status", "new");
  await item.getByRole("button", { name: "Take" }).click();
  await expect(item).toHaveAttribute("data-status", "in_progress");
  await expect(item.locator(".assignee")).toHaveText("Demo Admin");
  await item.getByLabel("Internal note").fill("Called back, no answer");
  await item.getByRole("button", { name: "Add" }).click();
  await expect(item.locator(".notes p")).toHaveText(["Called back, no answer"]);

  // This server has no SMTP relay: the reply is refused with a sentence that says why.
  await item.getByLabel("Reply by e-mail", { exact: true }).first().fill("We will call you tomorrow.");
  await item.getByRole("button", { name: "Reply by e-mail" }).click();
  await expect(page.getByRole("alert")).toContainText("E-mail is not set up on this server");
  await expect(item).toHaveAttribute("data-status", "in_progress");

  // Search finds it by the visitor's words.
  await page.getByRole("searchbox", { name: "Search leave-messages" }).fill(run);
  await page.getByRole("searchbox", { name: "Search leave-messages" }).press("Enter");
  await expect(page.locator("article.leave")).toHaveCount(1);
  await expect(page.locator("article.leave mark")).toHaveText([run]);
});

test("an admin makes an API key in the console; an integration searches and answers with it, live in the console", async ({ browser, request }) => {
  const run = `api${Date.now() % 1_000_000}`;
  const visitor = new Visitor(request, kefu);
  await visitor.hello();
  await visitor.say(`退款进度 ${run}`);
  const { page } = await signIn(browser, kefu, "auto");

  await page.getByRole("link", { name: "Settings" }).click();
  await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
  await page.getByRole("link", { name: "API keys" }).click();
  await expect(page).toHaveURL(/\/admin\/api$/);
  await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
  await page.locator("form.new-token").getByLabel("Name").fill(`CRM ${run}`);
  await page.locator("form.new-token").getByRole("button", { name: "Create" }).click();
  const token = (await page.locator("code.token").textContent())!;
  expect(token).toMatch(/^kefu_[0-9a-f]{64}$/);
  const row = page.locator("table.tokens tr", { hasText: `CRM ${run}` });
  await expect(row).toContainText(token.slice(0, 13));
  const auth = { authorization: `Bearer ${token}` };

  // The integration finds the visitor's message, then answers in that conversation.
  const found = await request.get(`${kefu}/api/v1/messages`, { headers: auth, params: { q: run } });
  expect(found.status()).toBe(200);
  const hit = (await found.json()).items[0];
  expect(hit.body).toBe(`退款进度 ${run}`);
  expect(hit.conversation_id).toBe(visitor.conversation);

  // The agent's console has the conversation open and sees the answer arrive live.
  await page.goto("/inbox");
  await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
  await openConversation(page, visitor.conversation!);
  const sent = await request.post(`${kefu}/api/v1/conversations/${visitor.conversation}/messages`, {
    headers: auth,
    data: { body: `已为您加急处理 ${run}`, client_id: `crm-${run}` },
  });
  expect(sent.status()).toBe(201);
  await expect(page.locator("p.body", { hasText: `已为您加急处理 ${run}` })).toBeVisible();

  // Revoked in the console, the key stops working at once.
  await page.goto("/admin/api");
  await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
  // Destructive buttons ask first: Revoke, then "Yes, Revoke".
  const keyRow = page.locator("table.tokens tr", { hasText: `CRM ${run}` });
  await keyRow.getByRole("button", { name: "Revoke" }).click();
  await keyRow.getByRole("button", { name: "Yes, Revoke" }).click();
  await expect(page.locator("table.tokens tr", { hasText: `CRM ${run}` })).toHaveCount(0);
  const refused = await request.get(`${kefu}/api/v1/sites`, { headers: auth });
  expect(refused.status()).toBe(401);
});

test("the reports page draws today's conversations as SVG charts", async ({ browser, request }) => {
  const visitor = new Visitor(request, kefu);
  await visitor.hello();
  await visitor.say(`report ${Date.now()}`);
  const { page } = await signIn(browser, kefu, "auto");
  await page.getByRole("link", { name: "Reports" }).click();
  await expect(page).toHaveURL(/\/reports$/);
  const today = new Date().toISOString().slice(0, 10);
  const bar = page.getByRole("img", { name: "Conversations per day" }).locator(`rect[data-day="${today}"]`);
  await expect(bar).toHaveCount(1);
  expect(Number(await bar.getAttribute("data-count"))).toBeGreaterThan(0);
  await expect(page.getByRole("img", { name: "Busiest hours (UTC)" })).toBeVisible();
});
