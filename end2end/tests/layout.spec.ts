import { test, expect, Page } from "@playwright/test";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { demoPassword } from "../constants";

// The screens an agent works on all day, at 1366×768, 1280×720 and 390×844, in English and
// Chinese: screenshots go to end2end/screenshots/ on every run (look at them), and the checks a
// picture cannot make: at 1280 px every action of the conversation header is inside the window,
// and at 390 px no element reaches past the window's right edge. One tab, moved between pages
// through the header (the console's own navigation) and resized in place: no reloads.

const kefu = `http://127.0.0.1:${Number(process.env.KEFU_E2E_PORT ?? 3950)}`;
const shots = path.join(__dirname, "..", "screenshots");
const sizes = [
  { width: 1366, height: 768 },
  { width: 1280, height: 720 },
  { width: 390, height: 844 },
];

/** Elements whose right edge is past the window, unless an ancestor clips or scrolls them. */
async function overflowing(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const clipped = (element: Element) => {
      for (let up = element.parentElement; up; up = up.parentElement) {
        const overflow = getComputedStyle(up).overflowX;
        if (overflow !== "visible") return true;
      }
      return false;
    };
    const found: string[] = [];
    for (const element of Array.from(document.body.querySelectorAll("*"))) {
      const box = element.getBoundingClientRect();
      if (box.width === 0 || box.height === 0 || box.right <= width + 0.5) continue;
      if (clipped(element)) continue;
      found.push(`${element.tagName.toLowerCase()}.${element.className} right=${Math.round(box.right)}`);
    }
    if (document.documentElement.scrollWidth > width) found.push(`page scrolls to ${document.documentElement.scrollWidth}`);
    return found;
  });
}

test("the console fits 1366, 1280 and 390 px wide in both languages", async ({ browser, request }) => {
  test.setTimeout(240_000);
  const errors: string[] = [];
  fs.mkdirSync(shots, { recursive: true });

  // A colleague to transfer to, before the desk loads its colleagues.
  const run = Date.now() % 1_000_000;
  const added = spawnSync(
    process.env.KEFU_BIN ?? "",
    ["agent", "add", "--database-url", process.env.KEFU_E2E_DATABASE ?? "", "--email", `mei${run}@kefu.local`, "--name", "Mei Lin", "--site", "demo"],
    { cwd: "..", env: { ...process.env, KEFU_AGENT_PASSWORD: demoPassword }, encoding: "utf8" },
  );
  expect(added.status, added.stderr).toBe(0);

  // A visitor with a long question, over plain HTTP.
  const headers = { origin: "https://shop.example", "content-type": "application/json" };
  const hello = await request.post(`${kefu}/http/visitor/send`, {
    headers,
    data: JSON.stringify([
      { type: "hello", protocol_version: 1, site_key: "demo" },
      { type: "send", client_id: crypto.randomUUID(), body: `Hello! My order ${run} has not arrived yet, and the tracking page says it left the warehouse a week ago. Could you check?` },
    ]),
  });
  const frames = (await hello.json()) as { type: string; [key: string]: any }[];
  const conversation = frames.find((f) => f.type === "ack")!.conversation_id;

  const context = await browser.newContext({ baseURL: kefu, viewport: sizes[0] });
  const page = await context.newPage();
  page.on("pageerror", (error) => errors.push(`pageerror: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`console: ${message.text()}`);
  });
  await page.goto("/login");
  await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
  await page.fill('input[name="email"]', "demo@kefu.local");
  await page.fill('input[name="password"]', demoPassword);
  await page.locator('button[type="submit"]').first().click();
  await expect(page).toHaveURL(/\/inbox$/);
  await expect(page.locator("main[data-hydrated=true]")).toBeVisible();

  // Tags on the conversation, set from its menu.
  const row = page.locator(`li.conversation[data-conversation="${conversation}"]`);
  const head = page.locator(`.conversation-head[data-conversation="${conversation}"]`);
  await row.click();
  await expect(head).toBeVisible();
  await head.locator("details.more summary").click();
  await head.locator("form.tag-editor input").fill("vip, shipping");
  await head.locator("form.tag-editor button").click();
  await expect(head.locator(".tags .tag")).toHaveCount(2);
  await head.locator("details.more summary").click();

  const switchButton = page.locator("header.topbar form.language button");
  const go = async (href: string) => {
    await page.locator(`header.topbar a[href="${href}"]`).first().click();
    await expect(page).toHaveURL(new RegExp(`${href}$`));
    await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
  };
  try {
    for (const lang of ["en", "zh-CN"]) {
      if (lang === "zh-CN") {
        await switchButton.click();
        await expect(page.locator("html")).toHaveAttribute("lang", "zh-CN");
      }
      for (const size of sizes) {
        await page.setViewportSize(size);
        const shot = async (name: string) => {
          await page.screenshot({ path: path.join(shots, `${lang}-${size.width}-${name}.png`) });
          if (size.width === 390) expect(await overflowing(page), `${name} at 390 px, ${lang}`).toEqual([]);
        };
        await go("/inbox");
        // On a phone an open conversation takes the screen: back to the list first. Wait for
        // the inbox to show one or the other before looking which it is.
        const back = page.locator(".conversation-head .back");
        await expect(row.or(back).filter({ visible: true }).first()).toBeVisible();
        if (await back.isVisible()) await back.click();
        await expect(row).toBeVisible();
        await shot("inbox");
        await row.click();
        await expect(head).toBeVisible();
        await expect(head.locator(".tags .tag")).toHaveCount(2);
        await shot("conversation");
        if (size.width === 1280) {
          // Every action of the header is inside the window.
          const actions = head.locator(".head-actions > button:visible, .head-actions summary:visible");
          expect(await actions.count()).toBeGreaterThanOrEqual(4);
          for (const action of await actions.all()) {
            const box = (await action.boundingBox())!;
            expect(box.x, await action.innerText()).toBeGreaterThanOrEqual(0);
            expect(box.x + box.width, await action.innerText()).toBeLessThanOrEqual(size.width);
          }
        }
        for (const [href, name] of [
          ["/history", "history"],
          ["/reports", "reports"],
          ["/leave-messages", "leave-messages"],
          ["/admin/sites", "sites"],
        ]) {
          await go(href);
          await expect(page.locator("main h1").first()).toBeVisible();
          await shot(name);
        }
      }
    }
  } finally {
    if ((await page.locator("html").getAttribute("lang")) === "zh-CN") {
      await switchButton.click();
      await expect(page.locator("html")).toHaveAttribute("lang", "en");
    }
    await context.close();
  }
  expect(errors).toEqual([]);
});
