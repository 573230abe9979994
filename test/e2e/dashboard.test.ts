// The operator dashboard in a real headless Chromium, served (like in `npm start`) by the
// HTTPS issuing API listener: it refuses without the admin token, with the API's failure
// limiter, then shows the issuer hierarchy, counts by status, the 30-day expiry timeline
// and audit.
import { createHash, X509Certificate } from "node:crypto";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCsr, revokeCertificate } from "@pki/ca-core";
import { dashboardRouter } from "../../apps/server/src/dashboard/router.ts";
import { startTestApi, type TestApi } from "../support/api.ts";
import { opensslCsr, run } from "../support/tools.ts";

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));

const FAILURE_LIMIT = 3;
let t: TestApi;
let base: string;
let browser: Browser;

beforeAll(async () => {
  if (!CHROMIUM) throw new Error("Chromium is not installed (apt-get install chromium)");
  t = await startTestApi({ database: "postgres", authFailureLimit: FAILURE_LIMIT, extraRoutes: ({ runtime, requireAdmin }) => dashboardRouter(runtime, requireAdmin) });
  const ca = t.ca;
  const requester = { actor: "test:dashboard" };
  const csr = parseCsr(opensslCsr({ subject: "/CN=dash.example.com" }).csrPem);
  for (const ttlSeconds of [2 * 86400, 2 * 86400, 5 * 86400]) await ca.runtime.authority.issue({ csr, profile: "mtls", ttlSeconds, requester });
  const doomed = await ca.runtime.authority.issue({ csr, profile: "mtls", requester });
  await revokeCertificate(ca.runtime, { serial: doomed.serial, reason: "keyCompromise", actor: "test:dashboard" });
  base = t.api.url;
  // Chromium trusts exactly this listener's key, as a browser with the CA root installed would.
  const spki = new X509Certificate(t.api.certificate().pem).publicKey.export({ type: "spki", format: "der" });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      `--ignore-certificate-errors-spki-list=${createHash("sha256").update(spki).digest("base64")}`,
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

afterAll(async () => {
  await browser?.close();
  await t?.stop();
});

describe("dashboard", () => {
  it("refuses its data without an admin token; the page itself carries no data", async () => {
    expect((await t.call("GET", "/dashboard/api/summary")).status).toBe(401);
    const page = await t.call("GET", "/dashboard");
    expect(page.status).toBe(200);
    expect(page.text).not.toContain("dash.example.com");
  });

  it("serves only its own assets: /dashboard/__proto__ and friends are 404, not 500", async () => {
    expect((await t.call("GET", "/dashboard/app.js")).status).toBe(200);
    for (const name of ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf"]) {
      const res = await t.call("GET", `/dashboard/${name}`);
      expect(res.status, `${name}: ${res.text}`).toBe(404);
      expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
    }
  });

  it("limits failing tokens like the API (429 + Retry-After past the limit), yet the admin token always passes", async () => {
    const statuses: number[] = [];
    let last;
    // from an address of its own, so the browser test's wrong token does not count here
    const localAddress = "127.0.0.2";
    for (let i = 0; i < FAILURE_LIMIT + 2; i++) {
      last = await t.call("GET", "/dashboard/api/summary", { token: `wrong-token-${i}`, localAddress });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([...Array(FAILURE_LIMIT).fill(401), 429, 429]);
    expect(Number(last!.headers["retry-after"])).toBeGreaterThan(0);
    const admin = await t.call("GET", "/dashboard/api/summary", { token: t.ca.adminToken, localAddress });
    expect(admin.status, admin.text).toBe(200);
    expect(admin.json.counts).toBeDefined();
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
    await page.fill("#token", t.ca.adminToken);
    await page.click("button[type=submit]");
    await page.waitForSelector("#content:not([hidden])");

    const issuers = await page.locator("#issuers li").allTextContents();
    expect(issuers.some((t) => t.includes("PKI Root CA") && t.includes("root"))).toBe(true);
    expect(await page.locator("#issuers > li > ul > li").count()).toBe(1); // the intermediate sits under its root
    // the three above and the listener's own certificate (one day)
    expect(await page.textContent("[data-state=valid] dd")).toBe("4");
    expect(await page.textContent("[data-state=revoked] dd")).toBe("1");
    const bars = await page.locator("#timeline rect").evaluateAll((rects) => rects.map((r) => Number(r.getAttribute("data-count"))));
    expect(bars).toHaveLength(30);
    expect(bars.reduce((a, b) => a + b, 0)).toBe(4);
    expect(bars.filter((n) => n > 0)).toEqual([1, 2, 1]);
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
