// The trust files in the data dir and on the public listener, as the README uses them:
// after a rotation (and a revocation) `openssl verify -CAfile root.pem -untrusted
// intermediates.pem` still verifies what was issued before it, as well as what is issued
// after it; /ca/ lists what the listener serves.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REPO_ROOT, testEnv, type TestEnv } from "../support/harness.ts";
import { freePort, opensslCsr, pki, run, npmStartArgs, scratchDir } from "../support/tools.ts";
import { callApi } from "../support/api.ts";
import { childEnv } from "../support/settings.ts";

let env: TestEnv;
let server: ChildProcess | undefined;
let output = "";
let serverEnv: Record<string, string>;
let publicUrl: string;
let apiUrl: string;

const dataFile = (name: string) => path.join(env.dataDir, name);
const pemCount = (pem: string) => pem.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;

/** The README's line: root.pem as the trust anchor, intermediates.pem as the untrusted pool. */
const verifyWithDataDir = (leafFile: string) => run("openssl", ["verify", "-CAfile", dataFile("root.pem"), "-untrusted", dataFile("intermediates.pem"), leafFile]);

function issue(name: string): string {
  const csr = opensslCsr({ subject: `/CN=${name}` });
  const out = path.join(path.dirname(csr.csrPath), `${name}.pem`);
  const issued = pki(["issue", "--csr", csr.csrPath, "--out", out], serverEnv);
  expect(issued.status, issued.stderr).toBe(0);
  return out;
}

async function waitFor(predicate: () => boolean, what: string, ms = 90_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; server said:\n${output}`);
    if (server?.exitCode !== null) throw new Error(`server exited (${server?.exitCode}) while waiting for ${what}:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  env = await testEnv();
  const httpPort = await freePort();
  const apiPort = await freePort();
  publicUrl = `http://127.0.0.1:${httpPort}`;
  apiUrl = `https://127.0.0.1:${apiPort}`;
  serverEnv = { ...env.env, PKI_HTTP_PORT: String(httpPort), PKI_API_PORT: String(apiPort), PKI_PUBLIC_URL: publicUrl };
  server = spawn(process.execPath, npmStartArgs(), { cwd: REPO_ROOT, env: childEnv(serverEnv), stdio: ["ignore", "pipe", "pipe"] });
  server.stdout!.on("data", (d) => (output += d));
  server.stderr!.on("data", (d) => (output += d));
  await waitFor(() => output.includes("issuing API:"), "the server to listen");
}, 120_000);

afterAll(async () => {
  if (server && server.exitCode === null) server.kill("SIGKILL");
  await env?.cleanup();
});

describe("trust files", () => {
  it("intermediates.pem keeps certificates issued before a rotation verifiable, with those issued after it", async () => {
    expect(pemCount(readFileSync(dataFile("intermediates.pem"), "utf8"))).toBe(1);
    const before = issue("before.rotation.test");
    expect(verifyWithDataDir(before).stdout).toMatch(/: OK/);

    const rotated = pki(["issuers", "rotate"], serverEnv);
    expect(rotated.status, rotated.stderr).toBe(0);
    const after = issue("after.rotation.test");

    // chain.pem follows the active intermediate only: what it verified before, it no longer can.
    expect(run("openssl", ["verify", "-CAfile", dataFile("root.pem"), "-untrusted", dataFile("chain.pem"), before]).status).not.toBe(0);
    const intermediates = readFileSync(dataFile("intermediates.pem"), "utf8");
    expect(pemCount(intermediates)).toBe(2);
    expect(statSync(dataFile("intermediates.pem")).mode & 0o777).toBe(0o644);
    expect(verifyWithDataDir(before).stdout).toMatch(/: OK/);
    expect(verifyWithDataDir(after).stdout).toMatch(/: OK/);
    // Written through a temporary file renamed into place: none is left behind.
    expect(readdirSync(env.dataDir).filter((f) => f.endsWith(".tmp"))).toEqual([]);

    // The public listener serves the same bundle.
    const served = await fetch(`${publicUrl}/ca/intermediates.pem`);
    expect(served.status).toBe(200);
    expect(served.headers.get("content-type")).toMatch(/application\/x-pem-file/);
    expect(await served.text()).toBe(intermediates);
    expect((await fetch(`${publicUrl}/ca/intermediates.pem?hierarchy=nowhere`)).status).toBe(404);
    const bad = await fetch(`${publicUrl}/ca/intermediates.pem?hierarchy=${encodeURIComponent("<x>")}`);
    expect(bad.status).toBe(400);
    expect(bad.headers.get("content-type")).toMatch(/problem\+json/);
  });

  it("a revoked intermediate stays in intermediates.pem: the path is found and refused for the revocation", async () => {
    const old = issue("under.revoked.test");
    const issuers = (await callApi(apiUrl, readFileSync(dataFile("root.pem"), "utf8"), "GET", "/v1/issuers")).json as Array<{ id: string; role: string; status: string }>;
    const active = issuers.find((i) => i.role === "intermediate" && i.status === "active")!;
    const root = issuers.find((i) => i.role === "root")!;
    const revoked = pki(["issuers", "revoke", active.id, "--reason", "keyCompromise"], serverEnv);
    expect(revoked.status, revoked.stderr).toBe(0);
    expect(pemCount(readFileSync(dataFile("intermediates.pem"), "utf8"))).toBe(3);
    expect(verifyWithDataDir(old).stdout).toMatch(/: OK/);
    // With the CRLs the same path is found and refused, for the right reason.
    const crlPem = async (issuerId: string) => {
      // A new intermediate's first CRL comes from the publisher shortly after it is made.
      let der = await fetch(`${publicUrl}/crl/${issuerId}.crl`);
      for (let tries = 0; der.status === 404 && tries < 300; tries++) {
        await new Promise((r) => setTimeout(r, 100));
        der = await fetch(`${publicUrl}/crl/${issuerId}.crl`);
      }
      expect(der.status).toBe(200);
      return run("openssl", ["crl", "-inform", "DER"], { input: Buffer.from(await der.arrayBuffer()) }).stdout;
    };
    const crls = path.join(scratchDir(), "crls.pem");
    writeFileSync(crls, (await crlPem(root.id)) + (await crlPem(active.id)));
    const checked = run("openssl", ["verify", "-crl_check_all", "-CRLfile", crls, "-CAfile", dataFile("root.pem"), "-untrusted", dataFile("intermediates.pem"), old]);
    expect(checked.status).not.toBe(0);
    expect(checked.stdout + checked.stderr).toMatch(/certificate revoked/);
  });

  it("the scheduler's issuer-lifecycle job brings intermediates.pem back in line (intermediates also leave it by expiring)", async () => {
    const expected = readFileSync(dataFile("intermediates.pem"), "utf8");
    writeFileSync(dataFile("intermediates.pem"), "stale\n");
    const ran = pki(["scheduler", "run-once", "issuer-lifecycle"], serverEnv);
    expect(ran.status, ran.stderr).toBe(0);
    expect(readFileSync(dataFile("intermediates.pem"), "utf8")).toBe(expected);
  });

  it("/ca/ lists the files it serves, as links, instead of a 404", async () => {
    const index = await fetch(`${publicUrl}/ca/`);
    expect(index.status).toBe(200);
    expect(index.headers.get("content-type")).toMatch(/text\/html/);
    const html = await index.text();
    for (const file of ["roots.pem", "chain.pem", "intermediates.pem"]) expect(html).toContain(`href="/ca/${file}"`);
    const ids = [...html.matchAll(/href="\/ca\/([^"]+)\.crt"/g)].map((m) => m[1]!);
    expect(ids.length).toBeGreaterThanOrEqual(4); // the root and three intermediates
    for (const id of ids) expect((await fetch(`${publicUrl}/ca/${id}.crt`)).status).toBe(200);
    expect((await fetch(`${publicUrl}/ca`)).status).toBe(200);
  });
});
