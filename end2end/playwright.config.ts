import { defineConfig } from "@playwright/test";
import * as os from "node:os";
import * as path from "node:path";
import * as fs from "node:fs";

// One kefu server for the whole run, on a fresh SQLite database in a temp dir, started from the
// release binary `make build` produced (KEFU_BIN). Playwright waits for /readyz before testing.
const port = Number(process.env.KEFU_E2E_PORT ?? 3950);
// Workers load this file again and inherit the runner's environment: they must reuse the
// runner's database, not make one of their own.
const database =
  process.env.KEFU_E2E_DATABASE ?? `sqlite://${fs.mkdtempSync(path.join(os.tmpdir(), "kefu-e2e-"))}/kefu.db`;
const kefu = process.env.KEFU_BIN ?? path.join(os.homedir(), ".cache/kefu/target/release/kefu");
import { demoPassword } from "./constants";

// Tests that add accounts with `kefu agent add` find the shared server's database here.
process.env.KEFU_E2E_DATABASE = database;

export default defineConfig({
  testDir: "./tests",
  timeout: 30_000,
  fullyParallel: false,
  workers: 1,
  reporter: [["list"]],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    launchOptions: {
      executablePath: "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
  webServer: {
    command: `${kefu} serve --demo --bind 127.0.0.1:${port} --database-url ${database}`,
    cwd: "..",
    url: `http://127.0.0.1:${port}/readyz`,
    reuseExistingServer: false,
    stdout: "pipe",
    stderr: "pipe",
    timeout: 60_000,
    env: { KEFU_DEMO_PASSWORD: demoPassword, KEFU_LOG_LEVEL: "warn" },
  },
});
