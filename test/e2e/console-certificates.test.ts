// The console's certificates, certificate and audit pages in a real headless Chromium set to
// a non-UTC time zone and a 12-hour locale, against the API on real PostgreSQL and SoftHSM:
// serials shortened on one line with a copy button, serial search in any case or with
// colons, fingerprints and extensions, expiry counts that lead to their certificates, audit
// details that open, and one time convention (UTC, ISO 8601, 24-hour) shown and typed.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestApi, type TestApi } from "../support/api.ts";
import { REPO_ROOT } from "../support/harness.ts";
import { opensslCsr } from "../support/tools.ts";

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const ARTIFACTS = path.join(REPO_ROOT, "test/artifacts/console");
/** What every time on the console reads as. */
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

let t: TestApi;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const pageErrors: string[] = [];
const issued: Array<{ serial: string; certificate: string }> = [];

async function issue(dns: string, ttlDays: number) {
  const res = await t.call("POST", "/v1/certificates", {
    token: t.ca.adminToken,
    body: { csr: opensslCsr({ subject: `/CN=${dns}`, sans: [`DNS:${dns}`, `DNS:www.${dns}`] }).csrPem, profile: "server", ttlSeconds: ttlDays * 86400 },
  });
  expect(res.status, res.text).toBe(201);
  issued.push(res.json);
  return res.json as { serial: string; certificate: string };
}

async function accessible(p: Page, name: string) {
  if (!(await p.evaluate(() => "axe" in window))) await p.evaluate(AXE);
  const violations = await p.evaluate(async () => {
    const axe = (window as unknown as { axe: { run: (ctx: Document, o: object) => Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> } }).axe;
    const result = await axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 3) }));
  });
  expect(
    violations.filter((v) => v.impact === "serious" || v.impact === "critical"),
    `${name}: ${JSON.stringify(violations)}`,
  ).toEqual([]);
}

/** The whole page, for a person to look at (test/artifacts/console/). */
async function screenshot(p: Page, name: string) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await p.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** At 200% zoom a 1280-pixel screen is 640 CSS pixels wide: nothing may need sideways scrolling. */
async function fitsAt200Percent(p: Page, name: string) {
  const size = p.viewportSize()!;
  await p.setViewportSize({ width: 640, height: 400 });
  const [scrollWidth, clientWidth] = await p.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
  await p.setViewportSize(size);
  expect(scrollWidth, name).toBeLessThanOrEqual(clientWidth!);
}

/** Texts of every <time> on the page. */
const times = (p: Page) => p.locator("main time").allTextContents();

beforeAll(async () => {
  if (!CHROMIUM) throw new Error("Chromium is not installed (apt-get install chromium)");
  t = await startTestApi({ database: "postgres" });
  for (let i = 0; i < 6; i++) await issue(`svc${i}.rows.example`, 2 + i);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  // A time zone far from UTC and a 12-hour locale: anything shown or read in local time shows.
  context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 }, timezoneId: "America/Los_Angeles", locale: "en-US" });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: t.api.url });
  page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(e.message));
  await page.goto(`${t.api.url}/console/`);
  await page.getByLabel("Admin token").fill(t.ca.adminToken);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.locator("#top:not([hidden])").waitFor();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await t?.stop();
});

describe("certificates in the console", () => {
  it("lists certificates one short row each: the serial shortened on one line, whole in its name, with a copy button", async () => {
    await page.goto(`${t.api.url}/console/#/certificates?q=rows.example`);
    await page.locator("#results table").waitFor();
    const rows = page.locator("#results tbody tr");
    expect(await rows.count()).toBe(6);
    for (const height of await rows.evaluateAll((trs) => trs.map((tr) => tr.getBoundingClientRect().height))) expect(height).toBeLessThan(110);
    const first = issued[0]!.serial;
    // The text stays whole (selecting or reading it gives the serial); CSS hides its middle.
    const link = page.getByRole("link", { name: first, exact: true });
    expect(await link.textContent()).toBe(first);
    const [shownWidth, fullWidth] = await link.evaluate((a) => [a.getBoundingClientRect().width, a.scrollWidth + (a.querySelector(".short-id-head") as HTMLElement).scrollWidth]);
    expect(shownWidth).toBeLessThan(fullWidth / 2);
    // One line: the serial, its copy button and the issuer ID are each no taller than a line of text.
    const lineHeights = await page.locator("#results tbody .short-id-cell").evaluateAll((cells) => cells.map((c) => c.getBoundingClientRect().height));
    for (const h of lineHeights) expect(h).toBeLessThan(36);
    await page.getByRole("button", { name: `Copy serial ${first}` }).click();
    // Its name changes with its text, so it is found again by where it is.
    const copy = page.locator(".short-id-cell", { has: link }).locator("button");
    await expect.poll(() => copy.textContent()).toBe(`Copied serial ${first}`);
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(first);
    await accessible(page, "certificates");
    await fitsAt200Percent(page, "certificates-rows");
    await screenshot(page, "certificates-rows");
  });

  it("finds a certificate by the start of its serial, typed in upper case with colons", async () => {
    const { serial } = issued[3]!;
    await page.goto(`${t.api.url}/console/#/certificates`);
    const typed = serial.slice(0, 12).toUpperCase().match(/../g)!.join(":");
    await page.getByLabel("Search").fill(typed);
    await page.getByRole("button", { name: "Search", exact: true }).click();
    await page.locator("#serial-matches table").waitFor();
    expect(await page.locator("#serial-matches tbody tr").count()).toBe(1);
    await page.locator("#serial-matches").getByRole("link", { name: serial, exact: true }).click();
    await page.locator("#serial").waitFor();
    expect(await page.locator("#serial").textContent()).toBe(serial);
  });

  it("opens a certificate from a deep link with the serial as openssl prints it, under its own serial", async () => {
    const { serial } = issued[1]!;
    await page.goto(`${t.api.url}/console/#/certificate/${serial.toUpperCase()}`);
    await page.locator("#serial").waitFor();
    expect(page.url()).toContain(`#/certificate/${serial}`);
  });

  it("shows the fingerprints openssl computes, the key usage, the purposes and every extension", async () => {
    const { serial, certificate } = issued[2]!;
    await page.goto(`${t.api.url}/console/#/certificate/${serial}`);
    await page.locator("#extensions table").waitFor();
    const openssl = (hash: string) =>
      execFileSync("openssl", ["x509", "-noout", "-fingerprint", `-${hash}`], { input: certificate })
        .toString()
        .trim()
        .split("=")[1];
    expect(await page.locator("#fingerprint-sha256").textContent()).toBe(openssl("sha256"));
    expect(await page.locator("#fingerprint-sha1").textContent()).toBe(openssl("sha1"));
    expect(await page.locator("#key-usage").textContent()).toContain("digitalSignature");
    expect(await page.locator("#extended-key-usage").textContent()).toBe("serverAuth");
    const extensions = await page.locator("#extensions tbody tr").allTextContents();
    expect(extensions.find((r) => r.startsWith("basicConstraints"))).toContain("critical");
    expect(extensions.find((r) => r.startsWith("subjectAltName"))).toContain(`DNS:svc2.rows.example`);
    expect(extensions.some((r) => r.startsWith("authorityInfoAccess") && r.includes("OCSP"))).toBe(true);
    await accessible(page, "certificate");
    await fitsAt200Percent(page, "certificate-extensions");
    await screenshot(page, "certificate-extensions");
  });

  it("the overview's expiry counts lead to the certificates they count", async () => {
    await page.goto(`${t.api.url}/console/#/overview`);
    const within7 = page.locator("#expiring").getByRole("link", { name: "next 7 days" });
    const count = Number(
      await page
        .locator("#expiring div", { has: page.getByRole("link", { name: "next 7 days" }) })
        .locator("dd")
        .textContent(),
    );
    // svc0..svc4 expire within 2 to 6 days, svc5 in 7 days plus the backdating: at least five.
    expect(count).toBeGreaterThanOrEqual(5);
    await within7.click();
    await page.locator("#results table").waitFor();
    const url = new URL(page.url().replace("#/", ""));
    expect(url.searchParams.get("status")).toBe("valid");
    expect(url.searchParams.get("internal")).toBe("false");
    expect(url.searchParams.get("expiresBefore")).toMatch(ISO_UTC);
    expect(await page.locator("#results tbody tr").count()).toBe(count);
  });
});

describe("one time convention: UTC, ISO 8601, 24-hour", () => {
  it("shows every time in tables, facts and the refresh line as YYYY-MM-DDTHH:MM:SSZ, not in the browser's zone", async () => {
    const { serial } = issued[0]!;
    const notAfter = (await t.call("GET", `/v1/certificates/${serial}`, { token: t.ca.adminToken })).json.notAfter as string;
    await page.goto(`${t.api.url}/console/#/certificate/${serial}`);
    await page.locator("#serial").waitFor();
    const shown = await times(page);
    expect(shown.length).toBeGreaterThan(1);
    for (const text of shown.filter((x) => x !== "—")) expect(text).toMatch(ISO_UTC);
    expect(shown).toContain(`${notAfter.slice(0, 19)}Z`);

    await page.goto(`${t.api.url}/console/#/overview`);
    await page.locator("#expiring").waitFor();
    const updated = (await page.locator("main .toolbar .hint").textContent())!;
    expect(updated).toMatch(/^Updated \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    expect(updated).not.toMatch(/AM|PM/);
  });

  it("time filters are typed and shown in UTC: a day means its first or last second, a bad time is said, not sent", async () => {
    await page.goto(`${t.api.url}/console/#/certificates`);
    await page.getByLabel("Search").fill("rows.example");
    const after = page.getByLabel("Expires after (UTC)");
    expect(await after.getAttribute("type")).toBe("text");
    await after.fill("2020-01-02");
    await page.getByLabel("Expires before (UTC)").fill("2099-12-31T23:00Z");
    await page.getByRole("button", { name: "Search", exact: true }).click();
    await page.locator("#results table").waitFor();
    const url = new URL(page.url().replace("#/", ""));
    expect(url.searchParams.get("expiresAfter")).toBe("2020-01-02T00:00:00Z");
    expect(url.searchParams.get("expiresBefore")).toBe("2099-12-31T23:00:00Z");
    expect(await page.getByLabel("Expires after (UTC)").inputValue()).toBe("2020-01-02T00:00:00Z");
    expect(await page.locator("#results tbody tr").count()).toBe(6);

    await page.getByLabel("Expires after (UTC)").fill("2020-02-31");
    await page.getByRole("button", { name: "Search", exact: true }).click();
    await page.getByText("Expires after: not a UTC time").waitFor();
    expect(new URL(page.url().replace("#/", "")).searchParams.get("expiresAfter")).toBe("2020-01-02T00:00:00Z");
    // A bare day as the upper bound takes in the whole day.
    await page.getByLabel("Expires after (UTC)").fill("2020-01-02");
    await page.getByLabel("Expires before (UTC)").fill("2099-12-31");
    await page.getByRole("button", { name: "Search", exact: true }).click();
    await page.waitForURL(/expiresBefore=2099-12-31T23%3A59%3A59Z/);

    await page.goto(`${t.api.url}/console/#/audit`);
    await page.getByLabel("From (UTC)").fill("2020-01-01T10:30:00Z");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.locator("#audit table").waitFor();
    expect(new URL(page.url().replace("#/", "")).searchParams.get("since")).toBe("2020-01-01T10:30:00Z");
    expect(await page.getByLabel("From (UTC)").inputValue()).toBe("2020-01-01T10:30:00Z");
    await page.getByLabel("To (UTC)").fill("2020-13-01");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.getByText("To: not a UTC time").waitFor();
  });
});

describe("the audit log in the console", () => {
  it("keeps each event on a short row with readable details: cut on one line, opened in full", async () => {
    // Long enough to need several lines, short enough to be stored whole (audit text is bounded).
    const reason = `the requested name is not allowed ${"because of a long explanation ".repeat(6)}end of reason`;
    for (let i = 0; i < 50; i++)
      await t.ca.inventory.audit.record({
        actor: "admin:bootstrap",
        action: "certificate.issue",
        target: `CN=row${i}.example`,
        outcome: "denied",
        sourceIp: "127.0.0.1",
        details: { status: 403, reason },
      });
    await page.goto(`${t.api.url}/console/#/audit?action=certificate.issue&outcome=denied`);
    await page.locator("#audit table").waitFor();
    expect(await page.locator("#audit tbody tr").count()).toBe(50);
    const detailsWidth = await page.locator("#audit tbody tr:first-child td:nth-child(7)").evaluate((td) => td.getBoundingClientRect().width);
    expect(detailsWidth).toBeGreaterThan(250);
    const pageHeight = await page.evaluate(() => document.documentElement.scrollHeight);
    expect(pageHeight).toBeLessThan(50 * 80);

    const first = page.locator("#audit tbody tr:first-child .audit-details");
    expect(await first.locator("dl").isVisible()).toBe(false);
    await first.locator("summary").click();
    await first.locator("dl").waitFor();
    expect((await first.locator("dd").allTextContents()).sort()).toEqual(["403", reason]);
    await accessible(page, "audit");
    await fitsAt200Percent(page, "audit-details");
    await screenshot(page, "audit-details");
    expect(pageErrors).toEqual([]);
  });
});
