// The operator console in a real headless Chromium against the all-in-one server (what
// `npm start` runs), on real PostgreSQL and SoftHSM: log in, find a certificate by a SAN
// fragment, revoke it with a typed confirmation and watch OCSP say so, create a
// provisioner and enrol with its token through real curl, rotate the intermediate, read
// the audit log, run a scheduler job, publish CRLs, read the health checks, add and remove
// an operator, log out; CSRF, session expiry, hostile text, and an axe-core check of
// every page. Screenshots land in test/artifacts/console/.
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, testEnv, type TestEnv } from "../support/harness.ts";
import { callApi } from "../support/api.ts";
import { childEnv } from "../support/settings.ts";
import { freePort, opensslCsr, run, scratchDir, npmStartArgs } from "../support/tools.ts";

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const ARTIFACTS = path.join(REPO_ROOT, "test/artifacts/console");
const IDLE_SECONDS = 30;
const HOSTILE = "<img src=x onerror=alert(1)>";
// Markup, a right-to-left override and a bell, as an attacker could put in visible fields.
const HOSTILE_TEXT = `${HOSTILE}\u202Egnp.exe\u0007`;

let env: TestEnv;
let server: ChildProcess | undefined;
let output = "";
let api: string;
let publicUrl: string;
let rootPem: string;
let admin: string;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const dialogs: string[] = [];
const pageErrors: string[] = [];
let findMe: { serial: string };

const call = (method: string, urlPath: string, body?: unknown, token = admin) => callApi(api, rootPem, method, urlPath, { token, body });

async function waitFor(predicate: () => boolean, what: string, ms = 90_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; server said:\n${output}`);
    if (server?.exitCode !== null) throw new Error(`server exited (${server?.exitCode}) while waiting for ${what}:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function issue(subject: string, sans: string[]) {
  const csr = opensslCsr({ subject, sans });
  const res = await call("POST", "/v1/certificates", { csr: csr.csrPem, ttlSeconds: 3 * 86400 });
  expect(res.status, res.text).toBe(201);
  return res.json as { serial: string };
}

/** What the OCSP responder named in the certificate says, asked by openssl. */
function ocspStatus(leafFile: string): string {
  const url = run("openssl", ["x509", "-noout", "-ocsp_uri", "-in", leafFile]).stdout.trim();
  const serial = run("openssl", ["x509", "-noout", "-serial", "-in", leafFile]).stdout.trim().replace("serial=", "").toLowerCase();
  const chain = (lastChain.get(serial) ?? []).join("");
  const dir = scratchDir();
  writeFileSync(path.join(dir, "issuer.pem"), chain.slice(0, chain.indexOf("-----END CERTIFICATE-----") + 26));
  writeFileSync(path.join(dir, "root.pem"), rootPem);
  const out = run("openssl", ["ocsp", "-issuer", path.join(dir, "issuer.pem"), "-cert", leafFile, "-url", url, "-CAfile", path.join(dir, "root.pem"), "-no_nonce"]);
  return /: (good|revoked|unknown)/.exec(out.stdout)?.[1] ?? `no answer: ${out.stdout}${out.stderr}`;
}
const lastChain = new Map<string, string[]>();

async function newPage(ctx: BrowserContext): Promise<Page> {
  const p = await ctx.newPage();
  p.on("dialog", (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  p.on("pageerror", (e) => pageErrors.push(e.message));
  return p;
}

async function login(p: Page, token = admin) {
  await p.goto(`${api}/console/`);
  await p.getByLabel("Admin token").fill(token);
  await p.getByRole("button", { name: "Log in" }).click();
  await p.locator("#top:not([hidden])").waitFor();
}

/** axe-core on the page as it is: no serious or critical violation. */
async function accessible(p: Page, name: string) {
  // Evaluated rather than added as a <script>: the console's CSP (kept on in this browser)
  // refuses inline scripts, which is the point.
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

/** At 200% zoom a 1280-pixel laptop screen is 640 CSS pixels wide: nothing may need sideways scrolling. */
async function fitsAt200Percent(p: Page, name: string) {
  const size = p.viewportSize()!;
  await p.setViewportSize({ width: 640, height: 400 });
  const [scrollWidth, clientWidth] = await p.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
  await p.setViewportSize(size);
  expect(scrollWidth, name).toBeLessThanOrEqual(clientWidth!);
}

async function screenshot(p: Page, name: string) {
  await fitsAt200Percent(p, name);
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await p.screenshot({ path: file, fullPage: true });
  const png = readFileSync(file);
  expect(png.subarray(1, 4).toString()).toBe("PNG");
  expect(png.length).toBeGreaterThan(10_000);
  // The first screenful too, small enough for the README.
  await p.screenshot({ path: path.join(ARTIFACTS, `${name}.top.png`) });
}

beforeAll(async () => {
  if (!CHROMIUM) throw new Error("Chromium is not installed (apt-get install chromium)");
  env = await testEnv({ database: "postgres" });
  const httpPort = await freePort();
  const apiPort = await freePort();
  publicUrl = `http://127.0.0.1:${httpPort}`;
  const serverEnv = { ...env.env, PKI_HTTP_PORT: String(httpPort), PKI_API_PORT: String(apiPort), PKI_PUBLIC_URL: publicUrl, PKI_CONSOLE_IDLE_SECONDS: String(IDLE_SECONDS) };
  server = spawn(process.execPath, npmStartArgs(), { cwd: REPO_ROOT, env: childEnv(serverEnv), stdio: ["ignore", "pipe", "pipe"] });
  server.stdout!.on("data", (d) => (output += d));
  server.stderr!.on("data", (d) => (output += d));
  await waitFor(() => output.includes("operator console:"), "the server to listen");
  api = `https://127.0.0.1:${apiPort}`;
  rootPem = readFileSync(path.join(env.dataDir, "root.pem"), "utf8");
  admin = readFileSync(path.join(env.dataDir, "admin.token"), "utf8").trim();

  findMe = await issue("/CN=web.findme-alpha.example", ["DNS:web.findme-alpha.example", "DNS:www.findme-alpha.example"]);
  await issue("/CN=db.other.example", ["DNS:db.other.example"]);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  // The API's certificate is signed by this CA's root, which the browser does not know.
  context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  page = await newPage(context);
}, 180_000);

afterAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  writeFileSync(path.join(ARTIFACTS, "server.log"), output);
  await browser?.close();
  if (server && server.exitCode === null) {
    server.kill("SIGTERM");
    await new Promise((r) => server!.once("exit", r));
  }
  await env?.cleanup();
});

describe("operator console", () => {
  it("is served on the HTTPS API listener only, with a strict CSP, no-cache, its own assets only; /dashboard leads to it", async () => {
    const index = await call("GET", "/console/", undefined, "");
    expect(index.status).toBe(200);
    const csp = String(index.headers["content-security-policy"]);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    expect(index.headers["cache-control"]).toBe("no-cache");
    expect(index.text).not.toMatch(/<script>|<style>|\sstyle=|\son\w+=/);
    expect(index.text).not.toMatch(/https?:\/\//); // nothing from outside
    expect((await call("GET", "/console/app.js", undefined, "")).headers["content-type"]).toMatch(/^text\/javascript/);
    for (const name of ["__proto__", "constructor", "toString", "hasOwnProperty", "..%2fapp.ts"]) {
      const res = await call("GET", `/console/${name}`, undefined, "");
      expect(res.status, name).toBe(404);
      expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
    }
    for (const old of ["/dashboard", "/dashboard/", "/dashboard/app.js", "/dashboard/api/summary"]) {
      const res = await call("GET", old, undefined, "");
      expect(res.status, old).toBe(308);
      expect(res.headers.location).toBe("/console/");
    }
    expect((await fetch(`${publicUrl}/console/`)).status).toBe(404);
  });

  it("logs in with the admin token (nothing behind the login form) and shows the overview", async () => {
    await page.goto(`${api}/console/`);
    await page.getByLabel("Admin token").waitFor();
    expect(await page.locator("#top").isHidden()).toBe(true);
    expect(await page.locator(".card").count()).toBe(0);
    await accessible(page, "login");
    await screenshot(page, "login");
    await page.getByLabel("Admin token").fill("wrong-token");
    await page.getByRole("button", { name: "Log in" }).click();
    await page.getByText("That is not an admin token.").waitFor();
    await page.getByLabel("Admin token").fill(admin);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.locator("#expiring").waitFor();
    // the two issued above; the CA's own certificates are counted apart
    expect(await page.locator('section:has(h2:text-is("Services\' certificates")) [data-state=valid] dd').textContent()).toBe("2");
    expect(Number(await page.locator("section:has(h2:text-is('Internal (the CA\\'s own)')) [data-state=valid] dd").textContent())).toBeGreaterThan(0);
    const bars = await page.locator("#timeline li").evaluateAll((lis) => lis.map((li) => Number(li.getAttribute("data-count"))));
    expect(bars).toHaveLength(30);
    expect(bars.reduce((a, b) => a + b, 0)).toBe(2);
    expect(await page.locator("#timeline li[data-count='2'] .bar-count").textContent()).toBe("2");
    await accessible(page, "overview");
    await screenshot(page, "overview");
  });

  it("refuses a state change without the CSRF header (403), with the session cookie alone", async () => {
    const statuses = await page.evaluate(async () => {
      const post = await fetch("/v1/provisioners", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ name: "csrf-probe", profiles: ["mtls"], names: ["DNS:x.example"], maxTtlSeconds: 3600 }),
      });
      const logout = await fetch("/v1/console/session", { method: "DELETE" });
      const read = await fetch("/v1/provisioners");
      return [post.status, logout.status, read.status];
    });
    expect(statuses).toEqual([403, 403, 200]);
    expect((await call("GET", "/v1/provisioners")).json.map((p: { name: string }) => p.name)).not.toContain("csrf-probe");
  });

  it("finds a certificate by a SAN fragment, opens it, downloads it, revokes it with the typed serial, and OCSP flips to revoked", async () => {
    await page.getByRole("link", { name: "Certificates" }).click();
    await page.getByLabel("Search").fill("findme-alp");
    await page.getByRole("button", { name: "Search", exact: true }).click();
    await page.waitForURL(/#\/certificates\?q=findme-alp/);
    await page.locator("#result-count:has-text('1 certificate')").waitFor();
    await accessible(page, "certificates");
    await screenshot(page, "certificates");
    // Keyset pages, one certificate each: Next pushes the cursor into the URL, Previous and
    // the browser's back button return to the same page.
    await page.goto(`${api}/console/#/certificates?internal=false&order=desc&limit=1`);
    await page.locator("#result-count:has-text('Page 1: 1 certificate (more on the next page)')").waitFor();
    const first = await page.locator("#results tbody td:first-child a").textContent();
    await page.getByRole("button", { name: "Next" }).click();
    await page.locator("#result-count:has-text('Page 2: 1 certificate')").waitFor();
    expect(page.url()).toMatch(/[?&]c=/);
    const second = await page.locator("#results tbody td:first-child a").textContent();
    expect(second).not.toBe(first);
    const notAfter = async (serial: string | null) => Date.parse((await call("GET", `/v1/certificates/${serial}`)).json.notAfter);
    expect(await notAfter(first)).toBeGreaterThanOrEqual(await notAfter(second)); // latest first
    await page.getByRole("button", { name: "Previous" }).click();
    await page.locator("#result-count:has-text('Page 1:')").waitFor();
    expect(await page.locator("#results tbody td:first-child a").textContent()).toBe(first);
    await page.goBack();
    await page.locator("#result-count:has-text('Page 2:')").waitFor();
    expect(await page.locator("#results tbody td:first-child a").textContent()).toBe(second);

    await page.goto(`${api}/console/#/certificates?q=findme-alp`);
    await page.locator("#result-count:has-text('1 certificate')").waitFor();
    await page.getByRole("link", { name: findMe.serial }).click();
    await page.locator("h1:text-is('CN=web.findme-alpha.example')").waitFor();
    expect(await page.locator(".facts").first().textContent()).toContain("www.findme-alpha.example");
    // What a relying party sees, asked by the API (and by openssl below).
    await page.locator("#ocsp-status:has-text('good')").waitFor();
    expect(await page.locator("#crl-listed").textContent()).toBe("no");
    expect(await page.locator("#countdown").textContent()).toMatch(/^expires in 2 d 23 h$/);

    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download PEM" }).click()]);
    const pemFile = await download.path();
    lastChain.set(findMe.serial, (await call("GET", `/v1/certificates/${findMe.serial}`)).json.chain);
    expect(ocspStatus(pemFile)).toBe("good");
    expect(run("openssl", ["x509", "-noout", "-serial", "-in", pemFile]).stdout.trim().toLowerCase()).toBe(`serial=${findMe.serial}`);
    await accessible(page, "certificate");
    await screenshot(page, "certificate");

    await page.getByRole("button", { name: "Revoke…" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByLabel("Reason").selectOption("keyCompromise");
    const confirm = dialog.getByRole("button", { name: "Revoke", exact: true });
    await dialog.getByLabel("Type the serial to confirm").fill("00");
    expect(await confirm.isDisabled()).toBe(true);
    await dialog.getByLabel("Type the serial to confirm").fill(findMe.serial);
    await accessible(page, "revoke dialog");
    await confirm.click();
    await page.locator("#ocsp-status:has-text('revoked')").waitFor({ timeout: 20_000 });
    await page.locator(".facts .badge-revoked").first().waitFor();
    expect(ocspStatus(pemFile)).toBe("revoked");
    expect((await call("GET", `/v1/certificates/${findMe.serial}`)).json).toMatchObject({ status: "revoked", revocationReason: "keyCompromise" });
    expect(await page.locator(".facts").first().textContent()).toContain("keyCompromise");
  });

  it("issues a certificate from a CSR pasted into the certificates page, as `pki issue` does", async () => {
    await page.goto(`${api}/console/#/certificates`);
    await page.getByText("Issue a certificate from a CSR").click();
    const csr = opensslCsr({ subject: "/CN=pasted.console.example", sans: ["DNS:pasted.console.example"] });
    await page.getByLabel("CSR (PEM)").fill(csr.csrPem);
    await page.locator("#issue-form").getByLabel("Profile").selectOption("server");
    await page.getByLabel("Lifetime (seconds)").fill("3600");
    await accessible(page, "issue form");
    await page.getByRole("button", { name: "Issue", exact: true }).click();
    await page.locator("h1:text-is('CN=pasted.console.example')").waitFor();
    const serial = /#\/certificate\/([0-9a-f]+)/.exec(page.url())![1]!;
    const issued = (await call("GET", `/v1/certificates/${serial}`)).json;
    expect(issued).toMatchObject({ status: "valid", profile: "server", requester: expect.stringMatching(/^admin:/) });
    // signed for the key in the CSR: openssl matches the certificate's key with the CSR's
    const certKey = run("openssl", ["x509", "-noout", "-pubkey"], { input: issued.pem }).stdout;
    expect(run("openssl", ["req", "-noout", "-pubkey"], { input: csr.csrPem }).stdout).toBe(certKey);
    // a refused CSR is named on the form, nothing issued
    await page.goto(`${api}/console/#/certificates`);
    await page.getByText("Issue a certificate from a CSR").click();
    await page.getByLabel("CSR (PEM)").fill("not a csr");
    await page.getByRole("button", { name: "Issue", exact: true }).click();
    await page.locator("#issue-form .message:has-text('Not issued')").waitFor();
  });

  it("creates a provisioner, shows its token once with a curl command that enrols for real", async () => {
    await page.getByRole("link", { name: "Provisioners" }).click();
    const form = page.locator("#create-provisioner");
    await form.getByLabel("Name", { exact: true }).fill("console-team");
    await form.getByLabel("Names it may enrol").fill("DNS:.console.example");
    await form.getByLabel("Maximum lifetime (seconds)").fill("86400");
    await form.getByRole("button", { name: "Create" }).click();
    const token = await page.locator("#new-token").inputValue();
    expect(token).toMatch(/^pkp_/);
    await accessible(page, "provisioners");
    await screenshot(page, "provisioners");
    const command = (await page.locator("#enrol-command").textContent())!;
    expect(command).toContain(token);
    const dir = scratchDir();
    writeFileSync(path.join(dir, "root.pem"), rootPem);
    const enrol = run("bash", ["-euo", "pipefail", "-c", command], { cwd: dir });
    expect(enrol.status, enrol.stderr).toBe(0);
    const issued = JSON.parse(readFileSync(path.join(dir, "issued.json"), "utf8"));
    expect(issued.sans).toEqual(["DNS:svc.console.example"]);
    expect((await call("GET", `/v1/certificates/${issued.serial}`)).json.provisioner).toBe("console-team");

    // Scope, disable/enable and removal go through dialogs.
    await page.getByRole("button", { name: "Edit scope of console-team" }).click();
    await page.getByRole("dialog").getByLabel("Names it may enrol").fill("DNS:.console.example\nDNS:.more.example");
    await page.getByRole("dialog").getByRole("button", { name: "Save" }).click();
    await page.locator("#provisioners tr:has-text('console-team'):has-text('DNS:.more.example')").waitFor();
    expect((await call("GET", "/v1/provisioners")).json.find((p: { name: string }) => p.name === "console-team").names).toEqual(["DNS:.console.example", "DNS:.more.example"]);
    await page.getByRole("button", { name: "Done (hide the token)" }).click();
    expect(await page.locator("#new-token").count()).toBe(0);
    await page.getByRole("button", { name: "Disable console-team" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Disable" }).click();
    await page.locator("#provisioners tr:has-text('console-team') .badge-disabled").waitFor();
    const refused = run("bash", ["-euo", "pipefail", "-c", command], { cwd: dir });
    expect(refused.status).not.toBe(0);
    await page.getByRole("button", { name: "Enable console-team" }).click();
    await page.locator("#provisioners tr:has-text('console-team') .badge-enabled").waitFor();
    // a second one, removed after its confirmation
    await form.getByLabel("Name", { exact: true }).fill("short-lived");
    await form.getByLabel("Names it may enrol").fill("DNS:.short.example");
    await form.getByRole("button", { name: "Create" }).click();
    await page.locator("#new-token").waitFor();
    await page.getByRole("button", { name: "Remove short-lived" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Remove" }).click();
    await page.locator("#provisioners tr:has-text('short-lived')").waitFor({ state: "detached" });
    // removed ones stay listed on request, as with pki provisioner list --all
    await page.getByLabel("Show removed provisioners").check();
    await page.waitForURL(/#\/provisioners\?all=1$/);
    await page.locator("#provisioners tr:has-text('short-lived') .badge-removed").waitFor();
    expect(await page.getByRole("button", { name: "Remove short-lived" }).count()).toBe(0);
    await page.getByLabel("Show removed provisioners").uncheck();
    await page.locator("#provisioners tr:has-text('short-lived')").waitFor({ state: "detached" });
    expect((await call("GET", "/v1/provisioners")).json.map((p: { name: string }) => p.name)).not.toContain("short-lived");
    await page.getByRole("button", { name: "Disable console-team" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Disable" }).click();
    await page.locator("#provisioners tr:has-text('console-team') .badge-disabled").waitFor();
  });

  it("creates an ACME provisioner with EAB: the list tells it from token ones, with its directory URL; an EAB key made here registers a certbot account", async () => {
    await page.goto(`${api}/console/#/provisioners`);
    const form = page.locator("#create-provisioner");
    await form.locator("input[name=name]").waitFor();
    expect(await form.getByLabel("ACME accounts need an external account binding (EAB) key").isDisabled()).toBe(true);
    await form.getByLabel("Name", { exact: true }).fill("web-acme");
    await form.getByLabel("Type").selectOption("acme");
    await form.getByLabel("ACME accounts need an external account binding (EAB) key").check();
    await form.getByLabel("Names it may enrol").fill("DNS:.acme.console.example");
    await form.getByRole("button", { name: "Create" }).click();
    const directory = `${api}/acme/web-acme/directory`;
    expect(await page.locator("#new-acme-directory").inputValue()).toBe(directory);
    expect(await page.locator("#acme-command").textContent()).toContain("--eab-kid=");
    const row = page.locator("#provisioners tr:has-text('web-acme')");
    await row.locator(".prov-eab").waitFor();
    expect(await row.locator(".prov-type").textContent()).toBe("ACME");
    expect(await row.locator(".acme-directory").textContent()).toBe(directory);
    expect(await row.locator(".prov-eab").textContent()).toBe("EAB required, 0 unused keys");
    expect(await page.locator("#provisioners tr:has-text('console-team') .prov-type").textContent()).toBe("token");
    expect(await page.getByRole("button", { name: "New EAB key for console-team" }).count()).toBe(0);

    await page.getByRole("button", { name: "New EAB key for web-acme" }).click();
    const kid = await page.locator("#eab-kid").inputValue();
    const hmac = await page.locator("#eab-hmac").inputValue();
    expect(kid).toMatch(/^kid_/);
    expect(Buffer.from(hmac, "base64url")).toHaveLength(32);
    await expect.poll(() => row.locator(".prov-eab").textContent()).toBe("EAB required, 1 unused key");
    await accessible(page, "provisioners with an EAB key");
    await screenshot(page, "provisioners-acme");
    await page.getByRole("button", { name: "Done (hide the key)" }).click();
    expect(await page.locator("#eab-hmac").count()).toBe(0);

    // The key works with a real ACME client, once.
    const dir = scratchDir();
    writeFileSync(path.join(dir, "root.pem"), rootPem);
    const certbot = (name: string, args: string[]) =>
      run(
        "certbot",
        [
          "register",
          "--server",
          directory,
          "--config-dir",
          path.join(dir, name),
          "--work-dir",
          path.join(dir, `${name}-work`),
          "--logs-dir",
          path.join(dir, `${name}-logs`),
          "--non-interactive",
          "--agree-tos",
          "--register-unsafely-without-email",
          ...args,
        ],
        { env: { REQUESTS_CA_BUNDLE: path.join(dir, "root.pem") } },
      );
    const without = certbot("no-eab", []);
    expect(without.status).not.toBe(0);
    const registered = certbot("with-eab", [`--eab-kid=${kid}`, `--eab-hmac-key=${hmac}`]);
    expect(registered.status, registered.stdout + registered.stderr).toBe(0);
    await page.reload();
    await expect.poll(() => row.locator(".prov-eab").textContent()).toBe("EAB required, 0 unused keys");
  });

  it("rotates the intermediate from the issuer tree, and the tree shows the new one active and the old one retired", async () => {
    await page.getByRole("link", { name: "Issuers" }).click();
    await page.locator(".issuer").first().waitFor();
    const before = await page.locator(".issuer[data-role=intermediate]").count();
    const oldActive = await page.locator(".issuer[data-role=intermediate][data-status=active] .issuer-id").textContent();
    await accessible(page, "issuers");
    await page.getByRole("button", { name: "Rotate intermediate…" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Rotate" }).click();
    await page.getByRole("dialog").waitFor({ state: "detached", timeout: 60_000 });
    await expect.poll(() => page.locator(".issuer[data-role=intermediate]").count()).toBe(before + 1);
    expect(await page.locator(`#issuer-${oldActive}`).getAttribute("data-status")).toBe("retired");
    const active = await page.locator(".issuer[data-role=intermediate][data-status=active] .issuer-id").allTextContents();
    expect(active).toHaveLength(1);
    expect(active[0]).not.toBe(oldActive);
    // The outcome stays on the page after the dialog closes.
    expect(await page.locator("#issuer-notice").textContent()).toContain(`Rotated: new intermediate ${active[0]} is active`);
    expect(await page.locator("#issuer-notice").textContent()).toContain(`retired ${oldActive}`);
    // The new intermediate's first CRL and OCSP responder show up without pressing Refresh.
    await expect.poll(() => page.locator(`#issuer-${active[0]} .crl-health`).textContent(), { timeout: 60_000 }).toMatch(/^#\d+, published/);
    await expect.poll(() => page.locator(`#issuer-${active[0]} .ocsp-health`).textContent(), { timeout: 60_000 }).toMatch(/responder [0-9a-f]+/);
    // every intermediate sits under the root, with unique IDs
    expect(await page.locator("ul.tree ul.tree .issuer").count()).toBe(before + 1);
    const ids = await page.locator(".issuer-id").allTextContents();
    expect(new Set(ids).size).toBe(ids.length);
    await screenshot(page, "issuers");

    // Rotation at a date stages the new intermediate; Activate… brings it in now. The time is UTC, 24-hour, greyed out for "Now".
    await page.getByRole("button", { name: "Rotate intermediate…" }).click();
    const rotateLater = page.getByRole("dialog");
    const takeOver = rotateLater.getByLabel("Take over at (UTC");
    expect(await takeOver.isDisabled()).toBe(true);
    await rotateLater.getByLabel("At a date and time (staged until then)").check();
    expect(await takeOver.isDisabled()).toBe(false);
    expect(await takeOver.inputValue()).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/);
    await takeOver.fill("2099-01-01T25:00");
    await rotateLater.getByRole("button", { name: "Rotate" }).click();
    await rotateLater.getByText("in UTC as YYYY-MM-DDTHH:MM").waitFor();
    await rotateLater.getByLabel("Now").check();
    expect(await takeOver.isDisabled()).toBe(true);
    await rotateLater.getByLabel("At a date and time (staged until then)").check();
    await takeOver.fill("2099-01-01T13:30");
    await rotateLater.getByRole("button", { name: "Rotate" }).click();
    await rotateLater.waitFor({ state: "detached", timeout: 60_000 });
    const staged = (await page.locator(".issuer[data-status=staged] .issuer-id").textContent())!;
    expect(await page.locator("#issuer-notice").textContent()).toMatch(new RegExp(`${staged} is staged and takes over at 2099-01-01.13:30`));
    // A staged intermediate publishes nothing yet, and the card says so rather than "none published".
    expect(await page.locator(`#issuer-${staged} .crl-health`).textContent()).toBe("none until it takes over");
    const activeBefore = (await page.locator(".issuer[data-role=intermediate][data-status=active] .issuer-id").textContent())!;
    await page.locator(`#issuer-${staged}`).getByRole("button", { name: "Activate…" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Activate" }).click();
    const stagedState = async () => `${await page.locator(`#issuer-${staged}`).getAttribute("data-status")} ${await page.locator("#issuer-notice").textContent()}`;
    await expect.poll(stagedState, { timeout: 15_000 }).toMatch(new RegExp(`^active Activated ${staged}; retired ${activeBefore}`));
    expect(await page.locator(`#issuer-${activeBefore}`).getAttribute("data-status")).toBe("retired");
    // Once active it publishes, and the page shows it without a Refresh.
    await expect.poll(() => page.locator(`#issuer-${staged} .crl-health`).textContent(), { timeout: 60_000 }).toMatch(/^#\d+, published/);
  });

  it("shows a root's blast radius as its hierarchy's, and downloads root and intermediate certificates as PEM and DER", async () => {
    const root = page.locator(".issuer[data-role=root]").first();
    const number = async (card: typeof root) => Number(/(\d+) live certificate/.exec((await card.locator(".blast-radius").textContent())!)![1]);
    let sum = 0;
    for (const card of await page.locator(".issuer[data-role=intermediate]").all()) sum += await number(card);
    expect(sum).toBeGreaterThan(0);
    expect(await number(root)).toBe(sum);

    const [pemDownload] = await Promise.all([page.waitForEvent("download"), root.getByRole("button", { name: /^Download PEM/ }).click()]);
    const pemFile = path.join(scratchDir(), "root.pem");
    await pemDownload.saveAs(pemFile);
    expect(readFileSync(pemFile, "utf8")).toBe(rootPem);
    const intermediate = page.locator(".issuer[data-role=intermediate][data-status=active]");
    const intermediateId = (await intermediate.locator(".issuer-id").textContent())!;
    const [derDownload] = await Promise.all([page.waitForEvent("download"), intermediate.getByRole("button", { name: /^Download DER/ }).click()]);
    expect(derDownload.suggestedFilename()).toBe(`intermediate-${intermediateId}.crt`);
    const derFile = path.join(scratchDir(), "intermediate.crt");
    await derDownload.saveAs(derFile);
    const served = Buffer.from(await (await fetch(`${publicUrl}/ca/${intermediateId}.crt`)).arrayBuffer());
    expect(readFileSync(derFile).equals(served)).toBe(true);
  });

  it("revokes the retired intermediate with re-issue: dry run first, typed ID, then progress to done", async () => {
    const retired = (await page.locator(".issuer[data-status=retired] .issuer-id").first().textContent())!;
    const active = (await page.locator(".issuer[data-role=intermediate][data-status=active] .issuer-id").textContent())!;
    const live = Number((await page.locator(`#issuer-${retired} a[href*='status=valid']`).textContent())!.match(/\d+/)![0]);
    expect(live).toBeGreaterThan(0);
    await page.locator(`#issuer-${retired}`).getByRole("button", { name: "Revoke and re-issue…" }).click();
    const dialog = page.getByRole("dialog");
    await dialog.getByText("Dry run: nothing has changed yet.").waitFor();
    // A retired one is replaced by the active intermediate already in place, and the plan says so consistently.
    expect(await dialog.textContent()).toContain(`leave the active intermediate ${active} signing new certificates`);
    expect(await dialog.textContent()).toContain(`re-issue ${live} live certificate${live === 1 ? "" : "s"} under the active intermediate ${active}`);
    expect(await dialog.textContent()).not.toContain("no active intermediate");
    expect((await call("GET", "/v1/issuers")).json.find((i: { id: string }) => i.id === retired).status).toBe("retired");
    await accessible(page, "issuer revoke dialog");
    const go = dialog.getByRole("button", { name: "Revoke and re-issue" });
    expect(await go.isDisabled()).toBe(true);
    await dialog.getByLabel("Type the issuer ID to confirm").fill(retired);
    await go.click();
    // Every affected certificate is accounted for: re-issued, or listed as failed with its reason
    // (one was enrolled by the provisioner disabled above).
    await expect.poll(() => dialog.textContent(), { timeout: 25_000 }).toMatch(/Done\./);
    const [, reissued, total, failed] = /Re-issued (\d+) of (\d+); (\d+) failed/.exec((await dialog.textContent())!)!.map(Number);
    expect([total, reissued! + failed!]).toEqual([live, live]);
    expect(await dialog.locator("li").count()).toBeGreaterThanOrEqual(3 + failed!);
    await page.keyboard.press("Escape");
    await page.getByRole("dialog").waitFor({ state: "detached" });
    await page.locator(`#issuer-${retired}[data-status=revoked]`).waitFor();
    // The outcome stays on the page once the dialog is gone.
    const notice = (await page.locator("#issuer-notice").textContent())!;
    expect(notice).toContain(`Revoked ${retired} (keyCompromise); ${active} signs new certificates`);
    expect(notice).toContain(`Re-issued ${reissued} of ${total} certificates; ${failed} failed`);
  });

  it("renders hostile text from a provisioner pattern and the audit log as inert text", async () => {
    // A refused request is audited with its reason, which quotes the caller's input.
    const refused = await call("POST", "/v1/provisioners", { name: HOSTILE_TEXT, profiles: ["mtls"], names: [`DNS:${HOSTILE_TEXT}`], maxTtlSeconds: 3600 });
    expect(refused.status).toBe(400);
    // A certificate whose subject carries markup and a right-to-left override.
    const hostileCsr = opensslCsr({ subject: `/CN=${HOSTILE}\u202Egnp.exe`, sans: ["DNS:hostile.example"] });
    const hostileCert = await call("POST", "/v1/certificates", { csr: hostileCsr.csrPem });
    if (hostileCert.status === 201) {
      await page.goto(`${api}/console/#/certificates?q=hostile.example`);
      await page.locator("#result-count:has-text('1 certificate')").waitFor();
      await page.goto(`${api}/console/#/certificate/${hostileCert.json.serial}`);
      const title = (await page.locator("h1").textContent())!;
      expect(title).toContain(HOSTILE);
      expect(title).toContain("\\u{202e}");
    } else expect(hostileCert.status, hostileCert.text).toBe(400); // refused: then its reason is in the audit log
    await page.goto(`${api}/console/#/audit`);
    await page.locator("#audit table").waitFor();
    await accessible(page, "audit");
    await screenshot(page, "audit");
    const text = (await page.locator("#audit").textContent())!;
    expect(text).toContain(HOSTILE.slice(0, 10));
    expect(text).not.toContain("\u202E");
    expect(await page.locator("main img").count()).toBe(0);
    expect(dialogs).toEqual([]);
  });

  it("filters the audit log by action", async () => {
    await page.goto(`${api}/console/#/audit`);
    await page.getByLabel("Action").fill("certificate.revoke");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/action=certificate.revoke/);
    await page.locator("#audit table").waitFor();
    const actions = await page.locator("#audit tbody td:nth-child(3)").allTextContents();
    expect(actions.length).toBeGreaterThan(0);
    expect(actions.every((a) => a.startsWith("certificate.revoke"))).toBe(true);
    expect(await page.locator("#audit tbody").textContent()).toContain(findMe.serial);
    // the refused provisioner above is a denied event
    await page.getByLabel("Action").fill("");
    await page.getByLabel("Outcome").selectOption("denied");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL(/#\/audit\?outcome=denied$/);
    await page.locator("#audit table").waitFor();
    const outcomes = await page.locator("#audit tbody td:nth-child(5)").allTextContents();
    expect(outcomes.length).toBeGreaterThan(0);
    expect(new Set(outcomes)).toEqual(new Set(["denied"]));
  });

  it("runs a scheduler job from the Scheduler page and its last run changes", async () => {
    await page.goto(`${api}/console/#/scheduler`);
    const last = page.locator('.last-run[data-job="issuer-health"]');
    await last.waitFor();
    const before = await last.getAttribute("data-run-id");
    await page.getByRole("button", { name: "Run now: issuer-health" }).click();
    await page.locator("#run-result .message:has-text('issuer-health: ok')").waitFor();
    await page.locator(`.last-run[data-job="issuer-health"][data-run-id]:not([data-run-id="${before}"])`).waitFor();
    expect(await page.locator("table:has(caption:text-is('Latest runs, newest first')) tbody tr").first().textContent()).toMatch(/issuer-health.*admin:bootstrap:/);
    await accessible(page, "scheduler");
    await screenshot(page, "scheduler");
    const unknown = await page.evaluate(async () => (await fetch("/v1/scheduler/jobs/no-such-job/run", { method: "POST" })).status);
    expect(unknown).toBe(403); // no CSRF header: refused before the job name is even looked at
  });

  it("auto refresh shows a run started elsewhere without reloading the page", async () => {
    await page.goto(`${api}/console/#/scheduler?refresh=1`);
    const last = page.locator('.last-run[data-job="expiry-alerts"]');
    await last.waitFor();
    const before = await last.getAttribute("data-run-id");
    await page.evaluate(() => Object.assign(window, { sameDocument: true }));
    const ran = await call("POST", "/v1/scheduler/jobs/expiry-alerts/run");
    expect(ran.status, ran.text).toBe(200);
    await page.locator(`.last-run[data-job="expiry-alerts"][data-run-id]:not([data-run-id="${before}"])`).waitFor({ timeout: 60_000 });
    expect(await page.evaluate(() => (window as unknown as { sameDocument?: boolean }).sameDocument)).toBe(true);
  }, 90_000);

  it("publishes CRLs from the CRLs page and sees the CRL number increase; the root's CRL is left to the CLI ceremony", async () => {
    const active = ((await call("GET", "/v1/issuers")).json as { id: string; role: string; status: string }[]).find((i) => i.role === "intermediate" && i.status === "active")!;
    await page.goto(`${api}/console/#/crls`);
    const number = page.locator(`.crl-number[data-issuer="${active.id}"]`);
    await number.waitFor();
    const numberNow = async () => BigInt((await number.textContent())!.replace("#", "").replace("none", "-1"));
    const before = await numberNow();
    await page.getByRole("button", { name: `Publish now: ${active.id}` }).click();
    await page.locator("#publish-result .message:has-text('Published:')").waitFor();
    await page.waitForFunction(([id, n]) => BigInt(document.querySelector(`.crl-number[data-issuer="${id}"]`)?.textContent?.replace("#", "") ?? "-1") > BigInt(n), [
      active.id,
      String(before),
    ] as const);
    const single = await numberNow();
    expect(single).toBeGreaterThan(before);
    await page.getByRole("button", { name: "Publish all now" }).click();
    await page.waitForFunction(([id, n]) => BigInt(document.querySelector(`.crl-number[data-issuer="${id}"]`)?.textContent?.replace("#", "") ?? "-1") > BigInt(n), [
      active.id,
      String(single),
    ] as const);
    expect(await page.locator("main").textContent()).toContain("pki crl sign-root");
    // npm start's API has the root PIN (the quickstart's pin file): the page must not claim otherwise.
    expect(await page.locator("main").textContent()).not.toContain("never holds");
    expect(await page.locator("main").textContent()).toContain(".pki/pki-root.pin");
    await accessible(page, "crls");
    await screenshot(page, "crls");
  });

  it("shows the health checks of pki doctor on the Health page", async () => {
    await page.getByRole("link", { name: "Health" }).click();
    await page.locator("table:has(caption:text-is('Checks'))").waitFor();
    const names = await page.locator(".check-name").allTextContents();
    expect(names).toEqual(expect.arrayContaining(["database", "CRLs", "scheduler", "active intermediate (default)"]));
    expect(names.some((n) => n.startsWith("token key of "))).toBe(true);
    expect(await page.locator("tr:has(.check-name:text-is('database')) .badge").textContent()).toBe("ok");
    await accessible(page, "health");
    await screenshot(page, "health");
  });

  it("adds an operator: the token is shown once and copies to the clipboard; they log in with it; removed, they are refused", async () => {
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: api });
    await page.getByRole("link", { name: "Operators" }).click();
    const form = page.locator("#add-operator");
    await form.getByLabel("Name").fill("dana");
    await form.getByRole("button", { name: "Add" }).click();
    const token = await page.locator("#new-admin-token").inputValue();
    expect(token).toMatch(/^pki_admin_/);
    await page.getByRole("button", { name: "Copy token" }).click();
    await page.getByRole("button", { name: "Copied" }).waitFor();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(token);
    await accessible(page, "operators");
    await page.getByRole("button", { name: "Done (hide the token)" }).click();
    expect(await page.locator("#new-admin-token").count()).toBe(0);
    await page.reload();
    await page.locator("#operators tr:has-text('dana') .badge-active").waitFor();
    expect(await page.locator("body").textContent()).not.toContain(token);
    await screenshot(page, "operators");

    const other = await browser.newContext({ ignoreHTTPSErrors: true });
    const p = await newPage(other);
    await login(p, token);
    expect(await p.locator("#who").textContent()).toBe("dana");

    await page.getByRole("button", { name: "Remove dana" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Remove" }).click();
    await page.locator("#operators tr:has-text('dana') .badge-revoked").waitFor();
    await p.getByRole("link", { name: "Provisioners" }).click();
    await p.getByLabel("Admin token").waitFor();
    expect(await p.locator("main").textContent()).toMatch(/Your session has ended/);
    await p.getByLabel("Admin token").fill(token);
    await p.getByRole("button", { name: "Log in" }).click();
    await p.getByText("That is not an admin token.").waitFor();
    await other.close();
    const audited = await call("GET", "/v1/audit?target=dana&action=admin.");
    expect(audited.json.items.map((e: { action: string; actor: string }) => [e.action, e.actor])).toEqual([
      ["admin.remove", "admin:bootstrap"],
      ["admin.create", "admin:bootstrap"],
    ]);
  });

  it("logs out; the API then refuses the browser", async () => {
    await page.getByRole("button", { name: "Log out" }).click();
    await page.getByText("You have logged out.").waitFor();
    const status = await page.evaluate(async () => (await fetch("/v1/overview")).status);
    expect(status).toBe(401);
    await page.goto(`${api}/console/#/provisioners`);
    await page.getByLabel("Admin token").waitFor();
    expect(await page.locator("#provisioners").count()).toBe(0);
  });

  it("an idle session ends: the next action goes back to the login page with a message", async () => {
    const other = await browser.newContext({ ignoreHTTPSErrors: true });
    const p = await newPage(other);
    await login(p);
    await p.locator("#expiring").waitFor();
    // Idle past the timeout (the server's clock decides; nothing here measures time).
    await new Promise((r) => setTimeout(r, (IDLE_SECONDS + 2) * 1000));
    // (not Issuers: the issuer list is public)
    await p.getByRole("link", { name: "Provisioners" }).click();
    await p.getByLabel("Admin token").waitFor();
    expect(await p.locator("main").textContent()).toMatch(/Your session has ended/);
    expect(await p.locator("#top").isHidden()).toBe(true);
    await other.close();
    expect(pageErrors).toEqual([]);
    expect(dialogs).toEqual([]);
  }, 120_000);
});

// Keeps the screenshots the README shows up to date when asked (PKI_CONSOLE_DOCS=1).
afterAll(() => {
  if (process.env.PKI_CONSOLE_DOCS !== "1") return;
  mkdirSync(path.join(REPO_ROOT, "docs/console"), { recursive: true });
  for (const name of ["overview", "certificates", "certificate", "issuers", "provisioners", "audit", "scheduler", "crls", "health", "operators"]) {
    const from = path.join(ARTIFACTS, `${name}.top.png`);
    if (existsSync(from)) copyFileSync(from, path.join(REPO_ROOT, "docs/console", `${name}.png`));
  }
});
