// The operator dashboard in a real headless Chromium: it refuses without the admin token,
// then shows the issuer hierarchy, counts by status, the 30-day expiry timeline and audit.
import { createServer, type Server } from "node:http";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import express from "express";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCsr, revokeCertificate } from "@pki/ca-core";
import { listen, problemHandler } from "@pki/http-kit";
import { dashboardRouter } from "../../apps/server/src/dashboard/router.ts";
import { startTestCa, type TestCa } from "../support/harness.ts";
import { opensslCsr, run } from "../support/tools.ts";

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));

let ca: TestCa;
let server: Server;
let base: string;
let browser: Browser;

beforeAll(async () => {
  if (!CHROMIUM) throw new Error("Chromium is not installed (apt-get install chromium)");
  ca = await startTestCa({ database: "postgres" });
  const requester = { actor: "test:dashboard" };
  const csr = parseCsr(opensslCsr({ subject: "/CN=dash.example.com" }).csrPem);
  for (const ttlSeconds of [2 * 86400, 2 * 86400, 5 * 86400]) await ca.runtime.authority.issue({ csr, profile: "mtls", ttlSeconds, requester });
  const doomed = await ca.runtime.authority.issue({ csr, profile: "mtls", requester });
  await revokeCertificate(ca.runtime, { serial: doomed.serial, reason: "keyCompromise", actor: "test:dashboard" });
  const app = express();
  app.use(dashboardRouter(ca.runtime));
  app.use(problemHandler);
  server = createServer(app);
  base = `http://127.0.0.1:${await listen(server, 0, "127.0.0.1")}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

afterAll(async () => {
  await browser?.close();
  server?.close();
  await ca?.cleanup();
});

describe("dashboard", () => {
  it("refuses its data without an admin token", async () => {
    expect((await fetch(`${base}/dashboard/api/summary`)).status).toBe(401);
    expect((await fetch(`${base}/dashboard/api/summary`, { headers: { authorization: "Bearer nope" } })).status).toBe(401);
    const page = await (await fetch(`${base}/dashboard`)).text();
    expect(page).not.toContain("dash.example.com"); // the page itself carries no data
  });

  it("renders hierarchy, counts, timeline and audit in Chromium", async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    // The refused login attempt logs "Failed to load resource: 401", which is expected.
    page.on("console", (m) => m.type() === "error" && !m.text().startsWith("Failed to load resource") && errors.push(m.text()));
    await page.goto(`${base}/dashboard`);
    await page.fill("#token", "wrong-token");
    await page.click("button[type=submit]");
    await page.waitForSelector("#error:has-text('not an admin token')");
    await page.fill("#token", ca.adminToken);
    await page.click("button[type=submit]");
    await page.waitForSelector("#content:not([hidden])");

    const issuers = await page.locator("#issuers li").allTextContents();
    expect(issuers.some((t) => t.includes("PKI Root CA") && t.includes("root"))).toBe(true);
    expect(await page.locator("#issuers > li > ul > li").count()).toBe(1); // the intermediate sits under its root
    expect(await page.textContent("[data-state=valid] dd")).toBe("3");
    expect(await page.textContent("[data-state=revoked] dd")).toBe("1");
    const bars = await page.locator("#timeline rect").evaluateAll((rects) => rects.map((r) => Number(r.getAttribute("data-count"))));
    expect(bars).toHaveLength(30);
    expect(bars.reduce((a, b) => a + b, 0)).toBe(3);
    expect(bars.filter((n) => n > 0)).toEqual([2, 1]);
    const actions = await page.locator("#audit tbody td:nth-child(3)").allTextContents();
    expect(actions).toEqual(expect.arrayContaining(["certificate.issue", "certificate.revoke", "issuer.create"]));

    const shot = path.join(mkdtempSync(path.join(tmpdir(), "pki-shot-")), "dashboard.png");
    await page.screenshot({ path: shot, fullPage: true });
    // The screenshot is a real PNG of a rendered page: check its size and that it is not blank.
    const info = run("python3", ["-c", "import sys,struct; d=open(sys.argv[1],'rb').read(); print(d[:8]==b'\\x89PNG\\r\\n\\x1a\\n', struct.unpack('>II', d[16:24]), len(d))", shot]).stdout.trim();
    expect(info).toMatch(/^True \(1200, \d+\) \d+$/);
    expect(Number(info.split(" ").at(-1))).toBeGreaterThan(20_000);
    expect(errors).toEqual([]);
    await page.close();
  });
});
