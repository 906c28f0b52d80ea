import { test, expect } from "@playwright/test";
import { demoPassword } from "../constants";

test("the login page is server-rendered HTML", async ({ request }) => {
  const response = await request.get("/login");
  expect(response.status()).toBe(200);
  const html = await response.text();
  // The form is in the HTML itself, before any script runs.
  expect(html).toContain('name="email"');
  expect(html).toContain('name="password"');
  expect(html).toContain("HTTP only");
  // The form is in place (not streamed into a template that needs a script to show it).
  expect(html).toMatch(/<form[^>]*action="\/api\/login"[\s\S]*name="mode"[\s\S]*<\/form>/);
  expect(html).not.toContain("<template");
  // …and the hydration script is referenced, by its content-hashed name.
  expect(html).toMatch(/\/pkg\/kefu\.[\w-]{22}\.js/);
});

test("the console's files are content-hashed, sent compressed and cached for a year", async ({ request }) => {
  const html = await (await request.get("/login")).text();
  const files = [...html.matchAll(/\/pkg\/kefu\.[\w-]{22}\.(?:js|wasm|css)/g)].map((m) => m[0]);
  // The page preloads the glue and the wasm, and links the stylesheet.
  const [glue, wasm, css] = [".js", ".wasm", ".css"].map((ext) => files.find((f) => f.endsWith(ext))!);
  for (const file of [glue, wasm, css]) expect(file, html).toBeTruthy();
  for (const [file, encoding] of [
    [wasm, "br"],
    [glue, "br"],
    [css, "gzip"],
  ]) {
    const response = await request.get(file, { headers: { "accept-encoding": encoding } });
    expect(response.status(), file).toBe(200);
    expect(response.headers()["content-encoding"], file).toBe(encoding);
    expect(response.headers()["cache-control"], file).toBe("public, max-age=31536000, immutable");
  }
  // The same file uncompressed for a client that asks for nothing, and no lifetime for a miss.
  const plain = await request.get(css, { headers: { "accept-encoding": "identity" } });
  expect(plain.headers()["content-encoding"]).toBeUndefined();
  const missing = await request.get("/pkg/kefu.AAAAAAAAAAAAAAAAAAAAAA.wasm");
  expect(missing.status()).toBe(404);
  expect(missing.headers()["cache-control"]).toBeUndefined();
});

test("hydration makes the login page interactive", async ({ page }) => {
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (msg) => msg.type() === "error" && errors.push(msg.text()));
  await page.goto("/login");
  await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
  const password = page.locator('input[name="password"]');
  await expect(password).toHaveAttribute("type", "password");
  await page.getByRole("button", { name: "Show password" }).click();
  await expect(password).toHaveAttribute("type", "text");
  await expect(page.getByRole("button", { name: "Show password" })).toHaveText("Hide");
  expect(errors).toEqual([]);
});

test("an agent signs in, is remembered in HTTP-only mode, and signs out", async ({ page, context }) => {
  await page.goto("/login");
  await expect(page.locator("main[data-hydrated=true]")).toBeVisible();
  await page.fill('input[name="email"]', "demo@kefu.local");
  await page.fill('input[name="password"]', "wrong password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toHaveText("Wrong e-mail or password.");

  await page.fill('input[name="password"]', demoPassword);
  await page.getByLabel("HTTP only").check();
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page).toHaveURL(/\/inbox$/);
  await expect(page.getByText("Demo Admin")).toBeVisible();

  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "kefu_session");
  expect(session?.httpOnly).toBe(true);
  expect(cookies.find((c) => c.name === "kefu_mode")?.value).toBe("http");

  // The remembered mode is pre-selected on the next visit, straight from the server.
  const html = await (await page.request.get("/login")).text();
  expect(html).toMatch(/value="http"[^>]*checked|checked[^>]*value="http"/);

  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login$/);
  await page.goto("/inbox");
  await expect(page).toHaveURL(/\/login$/);
});

test("the demo page embeds the widget, which opens its panel", async ({ page }) => {
  await page.goto("/demo");
  const launcher = page.locator("kefu-widget .launcher");
  await expect(launcher).toBeVisible();
  await expect(page.locator("kefu-widget[data-kefu-ready]")).toBeAttached();
  await launcher.click();
  await expect(page.locator("kefu-widget .panel")).toBeVisible();
  await expect(page.locator("kefu-widget .panel")).toContainText("How can we help you today?");
});
