// OCSP end to end over real HTTP: pre-signed responses from a delegated responder whose
// key is on the SoftHSM token, judged by `openssl ocsp` and GnuTLS `ocsptool`.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { revokeCertificate } from "@pki/authority";
import { OcspResponder, ocspHttpHandler } from "@pki/ocsp-responder";
import { fetchBytes, runAsync, startRevocationCa, unusedPort, type IssuedLeaf, type RevocationCa } from "../support/revocation.ts";
import { REPO_ROOT } from "../support/harness.ts";
import { opensslCsr, opensslSelfSigned, pki, run, scratchDir } from "../support/tools.ts";
import { childEnv } from "../support/settings.ts";
import { TravelClock } from "../support/api.ts";

let rca: RevocationCa;
let good: IssuedLeaf;
let revoked: IssuedLeaf;
beforeAll(async () => {
  rca = await startRevocationCa();
  good = await rca.issue({ commonName: "good.ocsp.example" });
  revoked = await rca.issue({ commonName: "revoked.ocsp.example" });
  await revoke(revoked.serial, "keyCompromise");
  await rca.settle();
});
afterAll(async () => {
  await rca?.stop();
});

const revoke = (serial: string, reason?: string) => revokeCertificate({ inventory: rca.ca.inventory, events: rca.ca.runtime.events, clock: rca.ca.runtime.clock }, { serial, reason, actor: "test" });

/** `openssl ocsp` against the responder: verifies the signature and responder authorisation itself. */
async function opensslOcsp(args: string[], url = `${rca.baseUrl}/ocsp`) {
  const result = await runAsync("openssl", ["ocsp", "-issuer", rca.intermediatePath, "-CAfile", rca.rootPath, "-url", url, "-no_nonce", ...args]);
  return { ...result, all: result.stdout + result.stderr };
}

const NEVER_ISSUED = `0x01${"ab".repeat(16)}`;

describe("openssl ocsp", () => {
  it("verifies good, revoked (with reason) and unknown answers, signed by the delegated responder", async () => {
    const g = await opensslOcsp(["-cert", good.certPath]);
    expect(g.all).toMatch(/Response verify OK/);
    expect(g.stdout).toMatch(/: good/);
    const r = await opensslOcsp(["-cert", revoked.certPath]);
    expect(r.all).toMatch(/Response verify OK/);
    expect(r.stdout).toMatch(/: revoked/);
    expect(r.stdout).toMatch(/Reason: keyCompromise/);
    // A serial this issuer never issued: "unknown", never "good" (RFC 6960 §2.2).
    const u = await opensslOcsp(["-serial", NEVER_ISSUED]);
    expect(u.all).toMatch(/Response verify OK/);
    expect(u.stdout).toMatch(/: unknown/);
  });

  it("shows the responder certificate: EKU OCSPSigning, id-pkix-ocsp-nocheck, short-lived, issued by the intermediate", async () => {
    const out = (await runAsync("openssl", ["ocsp", "-issuer", rca.intermediatePath, "-cert", good.certPath, "-url", `${rca.baseUrl}/ocsp`, "-no_nonce", "-CAfile", rca.rootPath, "-resp_text"]))
      .stdout;
    expect(out).toMatch(/OCSP Signing/);
    expect(out).toMatch(/OCSP No Check/);
    expect(out).toMatch(/Issuer: CN ?= ?PKI Issuing CA/);
    const notBefore = new Date(/Not Before: (.*GMT)/.exec(out)![1]!);
    const notAfter = new Date(/Not After : (.*GMT)/.exec(out)![1]!);
    expect(notAfter.getTime() - notBefore.getTime()).toBeLessThanOrEqual(7 * 86_400_000 + 120_000);
    expect(out).toMatch(/Responder Id: [0-9A-F]{40}/); // by key hash (RFC 5019)
  });

  it("answers SHA-256 CertIDs, and several certificates in one request", async () => {
    const sha256 = await opensslOcsp(["-sha256", "-cert", good.certPath]);
    expect(sha256.all).toMatch(/Response verify OK/);
    expect(sha256.stdout).toMatch(/: good/);
    const both = await opensslOcsp(["-cert", good.certPath, "-cert", revoked.certPath]);
    expect(both.all).toMatch(/Response verify OK/);
    expect(both.stdout).toMatch(new RegExp(`${good.certPath.replace(/[/.]/g, "\\$&")}: good`));
    expect(both.stdout).toMatch(new RegExp(`${revoked.certPath.replace(/[/.]/g, "\\$&")}: revoked`));
  });

  it("ignores a nonce under the default policy: the pre-signed answer still verifies", async () => {
    const withNonce = await runAsync("openssl", ["ocsp", "-issuer", rca.intermediatePath, "-CAfile", rca.rootPath, "-url", `${rca.baseUrl}/ocsp`, "-cert", good.certPath]);
    expect(withNonce.stdout + withNonce.stderr).toMatch(/WARNING: no nonce in response/);
    expect(withNonce.stdout + withNonce.stderr).toMatch(/Response verify OK/);
    expect(withNonce.stdout).toMatch(/: good/);
  });
});

describe("GnuTLS ocsptool", () => {
  it("verifies good, revoked and unknown answers", async () => {
    const ask = (certPath: string) => runAsync("ocsptool", [`--ask=${rca.baseUrl}/ocsp`, "--load-cert", certPath, "--load-issuer", rca.intermediatePath, "--no-nonce"]);
    const g = await ask(good.certPath);
    expect(g.stdout + g.stderr).toMatch(/Verifying OCSP Response: Success/);
    expect(g.stdout).toMatch(/Certificate Status: good/);
    const r = await ask(revoked.certPath);
    expect(r.stdout + r.stderr).toMatch(/Verifying OCSP Response: Success/);
    expect(r.stdout).toMatch(/Certificate Status: revoked/);
    // ocsptool asks about a certificate; a never-issued serial needs a certificate for it,
    // so make one with the same issuer name but a key the CA never certified.
    const dir = scratchDir();
    const fakeKey = path.join(dir, "fake.key");
    run("openssl", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", fakeKey]);
    const subject = run("openssl", ["x509", "-in", rca.intermediatePath, "-noout", "-subject", "-nameopt", "compat"])
      .stdout.replace(/^subject=/, "")
      .trim();
    // Same subject and same public key as the intermediate is impossible without its key; a
    // self-signed stand-in with the intermediate's name signs a certificate we never issued.
    const fakeIssuer = opensslSelfSigned({ keyFile: fakeKey, subject, dir }).certPath;
    const strangerCsr = opensslCsr({ keyFile: fakeKey, subject: "/CN=stranger", dir }).csrPath;
    const stranger = path.join(dir, "stranger.pem");
    run("openssl", ["x509", "-req", "-in", strangerCsr, "-CA", fakeIssuer, "-CAkey", fakeKey, "-set_serial", NEVER_ISSUED, "-days", "1", "-out", stranger]);
    const u = await runAsync("ocsptool", [`--ask=${rca.baseUrl}/ocsp`, "--load-cert", stranger, "--load-issuer", rca.intermediatePath, "--no-nonce"]);
    expect(u.stdout).toMatch(/Certificate Status: unknown/);
    expect(u.stdout + u.stderr).toMatch(/Verifying OCSP Response: Success/);
  });
});

describe("HTTP forms, caching and refusals", () => {
  const requestFor = (certPath: string, extra: string[] = []) => {
    const reqPath = path.join(rca.dir, `req-${Math.random().toString(36).slice(2)}.der`);
    expect(run("openssl", ["ocsp", "-issuer", rca.intermediatePath, ...extra, "-cert", certPath, "-no_nonce", "-reqout", reqPath]).status).toBe(0);
    return readFileSync(reqPath);
  };
  const statusOf = (response: Buffer, certPath: string, extra: string[] = []) => {
    const respPath = path.join(rca.dir, `resp-${Math.random().toString(36).slice(2)}.der`);
    writeFileSync(respPath, response);
    const out = run("openssl", ["ocsp", "-respin", respPath, "-issuer", rca.intermediatePath, ...extra, "-cert", certPath, "-CAfile", rca.rootPath]);
    return out.stdout + out.stderr;
  };

  it("answers GET with standard and URL-safe base64, URL-encoded or not, with RFC 5019 caching headers", async () => {
    const der = requestFor(good.certPath);
    const standard = der.toString("base64");
    for (const form of [encodeURIComponent(standard), standard, der.toString("base64url")]) {
      const response = await fetchBytes(`${rca.baseUrl}/ocsp/${form}`);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("application/ocsp-response");
      const seen = statusOf(response.body, good.certPath);
      expect(seen).toMatch(/Response verify OK/);
      expect(seen).toMatch(/: good/);
      const thisUpdate = new Date(/This Update: (.*GMT)/.exec(seen)![1]!);
      const nextUpdate = new Date(/Next Update: (.*GMT)/.exec(seen)![1]!);
      expect(new Date(response.headers.get("last-modified")!).getTime()).toBe(thisUpdate.getTime());
      expect(new Date(response.headers.get("expires")!).getTime()).toBe(nextUpdate.getTime());
      const maxAge = Number(/max-age=(\d+)/.exec(response.headers.get("cache-control")!)![1]);
      expect(maxAge).toBeGreaterThan(0);
      expect(Date.now() + maxAge * 1000).toBeLessThanOrEqual(nextUpdate.getTime() + 1000);
      expect(response.headers.get("etag")).toMatch(/^".+"$/);
      const again = await fetchBytes(`${rca.baseUrl}/ocsp/${form}`, { headers: { "if-none-match": response.headers.get("etag")! } });
      expect(again.status).toBe(304);
    }
  });

  it("answers POST application/ocsp-request", async () => {
    const response = await fetchBytes(`${rca.baseUrl}/ocsp`, { method: "POST", headers: { "content-type": "application/ocsp-request" }, body: requestFor(revoked.certPath, ["-sha256"]) });
    expect(response.status).toBe(200);
    const seen = statusOf(response.body, revoked.certPath, ["-sha256"]);
    expect(seen).toMatch(/Response verify OK/);
    expect(seen).toMatch(/: revoked/);
  });

  it("answers garbage with malformedRequest (HTTP 400), an unknown issuer with unauthorized, an oversized request with 413", async () => {
    const garbage = await fetchBytes(`${rca.baseUrl}/ocsp`, { method: "POST", headers: { "content-type": "application/ocsp-request" }, body: Buffer.from("this is not DER") });
    expect(garbage.status).toBe(400);
    expect(garbage.body.toString("hex")).toBe("30030a0101");
    const truncated = requestFor(good.certPath).subarray(0, 20);
    expect((await fetchBytes(`${rca.baseUrl}/ocsp`, { method: "POST", body: truncated })).status).toBe(400);
    expect((await fetchBytes(`${rca.baseUrl}/ocsp/%%%not-base64`)).status).toBe(400);
    const respPath = path.join(rca.dir, "garbage-resp.der");
    writeFileSync(respPath, garbage.body);
    expect(run("openssl", ["ocsp", "-respin", respPath, "-resp_text", "-noverify"]).stdout).toMatch(/malformedrequest/i);

    // A certificate from some other CA: this responder is not authoritative for it.
    const otherCa = opensslSelfSigned({ subject: "/CN=Some Other CA" }).certPath;
    const other = await runAsync("openssl", ["ocsp", "-issuer", otherCa, "-serial", "0x1234", "-url", `${rca.baseUrl}/ocsp`, "-no_nonce"]);
    expect(other.stdout + other.stderr).toMatch(/Responder Error: unauthorized \(6\)/);

    const huge = await fetchBytes(`${rca.baseUrl}/ocsp`, { method: "POST", headers: { "content-type": "application/ocsp-request" }, body: Buffer.alloc(64 * 1024, 0x30) });
    expect(huge.status).toBe(413);
    expect((await fetchBytes(`${rca.baseUrl}/ocsp`, { method: "PUT", body: "x" })).status).toBe(405);
  });
});

describe("freshness", () => {
  it("has an answer for a certificate from the moment it is issued, never unknown", async () => {
    const fresh = await rca.issue({ commonName: "fresh.ocsp.example" });
    // No waiting for the signer: whatever the responder has right now must already be "good".
    const out = await opensslOcsp(["-cert", fresh.certPath]);
    expect(out.all).toMatch(/Response verify OK/);
    expect(out.stdout).toMatch(/: good/);
  });

  it("shows a revocation at once (in-process event) and after one poll when another process revoked", async () => {
    const leaf = await rca.issue({ commonName: "soon-revoked.ocsp.example" });
    await rca.settle();
    expect((await opensslOcsp(["-cert", leaf.certPath])).stdout).toMatch(/: good/);
    const reqPath = path.join(rca.dir, "soon-revoked-req.der");
    expect(run("openssl", ["ocsp", "-issuer", rca.intermediatePath, "-cert", leaf.certPath, "-no_nonce", "-reqout", reqPath]).status).toBe(0);
    const request = readFileSync(reqPath);
    expect((await rca.ocsp.responder.answer(request)).outcome).toBe("good");
    // No waiting for the signer: revoke returns once the response is re-signed and held,
    // so the very next answer, on the same tick, says revoked.
    await revoke(leaf.serial, "affiliationChanged");
    expect((await rca.ocsp.responder.answer(request)).outcome).toBe("revoked");
    const after = await opensslOcsp(["-cert", leaf.certPath]);
    expect(after.stdout).toMatch(/: revoked/);
    expect(after.stdout).toMatch(/Reason: affiliationChanged/);

    // The operator's CLI is another process: the signer finds it on its next poll.
    const other = await rca.issue({ commonName: "cli-revoked.ocsp.example" });
    await rca.settle();
    const cli = pki(["cert", "revoke", other.serial, "--reason", "cessationOfOperation"], rca.ca.env);
    expect(cli.stdout).toMatch(/^revoked /);
    await rca.roles.ocspSigner.sweep();
    const seen = await opensslOcsp(["-cert", other.certPath]);
    expect(seen.stdout).toMatch(/: revoked/);
  });
});

describe("nonce policy echo", () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    const config = { ...rca.ca.runtime.config, revocation: { ...rca.ca.runtime.config.revocation, ocspNonce: "echo" as const } };
    const responder = new OcspResponder({ inventory: rca.ca.inventory, config, clock: rca.ca.runtime.clock, live: rca.roles.ocspSigner });
    await responder.start();
    const port = await unusedPort();
    server = createServer(ocspHttpHandler(responder, (_req, res) => void res.writeHead(404).end()));
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${port}/ocsp`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it("signs live and echoes the nonce, which openssl and ocsptool check", async () => {
    const out = await runAsync("openssl", ["ocsp", "-issuer", rca.intermediatePath, "-CAfile", rca.rootPath, "-url", url, "-cert", good.certPath]);
    expect(out.stdout + out.stderr).not.toMatch(/no nonce/i);
    expect(out.stdout + out.stderr).toMatch(/Response verify OK/);
    expect(out.stdout).toMatch(/: good/);
    const gnutls = await runAsync("ocsptool", [`--ask=${url}`, "--load-cert", revoked.certPath, "--load-issuer", rca.intermediatePath, "--nonce"]);
    expect(gnutls.stdout + gnutls.stderr).toMatch(/Verifying OCSP Response: Success/);
    expect(gnutls.stdout).toMatch(/Certificate Status: revoked/);
  });
});

describe("a responder that loads its pre-signed responses in the background", () => {
  it("answers from the database before they are in memory, the same as after", async () => {
    const responder = new OcspResponder({ inventory: rca.ca.inventory, config: rca.ca.runtime.config, clock: rca.ca.runtime.clock });
    const request = (cert: string) => {
      const out = path.join(scratchDir(), "req.der");
      run("openssl", ["ocsp", "-issuer", rca.intermediatePath, "-cert", cert, "-no_nonce", "-reqout", out]);
      return readFileSync(out);
    };
    const [goodReq, revokedReq] = [request(good.certPath), request(revoked.certPath)];
    try {
      await responder.start(60_000, { preload: "background" });
      expect(responder.size).toBe(0); // the first page is still on its way
      // No live signer here: these can only be the pre-signed responses, read from the database.
      expect((await responder.answer(goodReq)).outcome).toBe("good");
      expect((await responder.answer(revokedReq)).outcome).toBe("revoked");
      await responder.preloaded;
      expect(responder.size).toBeGreaterThanOrEqual(2);
      expect((await responder.answer(goodReq)).outcome).toBe("good");
    } finally {
      responder.stop();
    }
  });
});

describe("a responder's caching headers", () => {
  it("keep the configured max-age until nextUpdate is nearer, then count down to it", async () => {
    const clock = new TravelClock();
    const responder = new OcspResponder({ inventory: rca.ca.inventory, config: rca.ca.runtime.config, clock });
    const out = path.join(scratchDir(), "req.der");
    run("openssl", ["ocsp", "-issuer", rca.intermediatePath, "-cert", good.certPath, "-no_nonce", "-reqout", out]);
    const request = readFileSync(out);
    const maxAgeOf = async () => {
      const answer = await responder.answer(request);
      expect(answer.outcome).toBe("good");
      return { maxAge: Number(/max-age=(\d+)/.exec(String(answer.headers["cache-control"]))![1]), expires: new Date(String(answer.headers.expires)).getTime() };
    };
    try {
      await responder.start(60_000);
      const configured = rca.ca.runtime.config.revocation.ocspMaxAgeSeconds;
      const first = await maxAgeOf();
      expect(first.maxAge).toBe(configured);
      expect((await maxAgeOf()).maxAge).toBe(configured);
      // 10 s before nextUpdate (Expires), the same answer may be cached for 10 s at most
      clock.advance((first.expires - clock.now().getTime()) / 1000 - 10);
      const near = await maxAgeOf();
      expect(near.maxAge).toBeLessThanOrEqual(10);
      expect(near.maxAge).toBeGreaterThanOrEqual(8);
      clock.advance(5);
      expect((await maxAgeOf()).maxAge).toBeLessThanOrEqual(5);
    } finally {
      responder.stop();
    }
  });
});

describe("a responder process of its own", () => {
  let child: ChildProcess;
  let url: string;
  beforeAll(async () => {
    const port = await unusedPort();
    url = `http://127.0.0.1:${port}`;
    // No PIN and no token configuration at all: it serves from the database alone.
    const env = childEnv({ PKI_DATA_DIR: scratchDir(), DATABASE_URL: rca.ca.env.DATABASE_URL!, PKI_HTTP_PORT: String(port), PKI_LOG_LEVEL: "warn", PKI_REVOCATION_POLL_MS: "200" }) as Record<
      string,
      string
    >;
    child = spawn(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, "apps/ocsp-responder/src/main.ts")], { env, stdio: "ignore" });
    for (let i = 0; i < 200; i++) {
      const up = await fetch(`${url}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (up) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("the standalone OCSP responder did not start");
  });
  afterAll(() => {
    child?.kill("SIGTERM");
  });

  it("holds no keys yet answers good and revoked from pre-signed responses, follows a revocation by polling, and refuses what it cannot sign", async () => {
    expect((await opensslOcsp(["-cert", good.certPath], `${url}/ocsp`)).stdout).toMatch(/: good/);
    expect((await opensslOcsp(["-cert", revoked.certPath], `${url}/ocsp`)).stdout).toMatch(/: revoked/);
    const leaf = await rca.issue({ commonName: "standalone.ocsp.example" });
    await rca.settle();
    expect((await opensslOcsp(["-cert", leaf.certPath], `${url}/ocsp`)).stdout).toMatch(/: good/);
    await revoke(leaf.serial);
    await rca.roles.ocspSigner.settled();
    let status = "";
    for (let i = 0; i < 100 && !/: revoked/.test(status); i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await opensslOcsp(["-cert", leaf.certPath], `${url}/ocsp`)).stdout;
    }
    expect(status).toMatch(/: revoked/);
    // Without the delegated keys it cannot sign "unknown": it says it is not authoritative.
    expect((await opensslOcsp(["-serial", NEVER_ISSUED], `${url}/ocsp`)).all).toMatch(/unauthorized/);
  });
});

describe("live signing budget", () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    // One live signature, then (at a thousandth of one per second) no refill within this test.
    const config = { ...rca.ca.runtime.config, revocation: { ...rca.ca.runtime.config.revocation, ocspLiveSignPerSecond: 0.001 } };
    const responder = new OcspResponder({ inventory: rca.ca.inventory, config, clock: rca.ca.runtime.clock, live: rca.roles.ocspSigner });
    await responder.start();
    const port = await unusedPort();
    server = createServer(ocspHttpHandler(responder, (_req, res) => void res.writeHead(404).end()));
    await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${port}/ocsp`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it("answers made-up serials with tryLater once the budget is spent, while pre-signed answers keep flowing", async () => {
    const requestDer = (args: string[]) => {
      const out = path.join(rca.dir, `budget-${Math.random().toString(36).slice(2)}.der`);
      expect(run("openssl", ["ocsp", "-issuer", rca.intermediatePath, ...args, "-no_nonce", "-reqout", out]).status).toBe(0);
      return readFileSync(out);
    };
    const post = (body: Buffer) => fetchBytes(url, { method: "POST", headers: { "content-type": "application/ocsp-request" }, body: new Uint8Array(body) });
    const first = await post(requestDer(["-serial", `0x01${"cd".repeat(16)}`]));
    expect(first.status).toBe(200);
    const second = await post(requestDer(["-serial", `0x01${"ef".repeat(16)}`]));
    expect(second.status).toBe(503);
    expect(second.headers.get("retry-after")).toBe("1");
    expect(second.body.toString("hex")).toBe("30030a0103"); // tryLater
    const presigned = await post(requestDer(["-cert", good.certPath]));
    expect(presigned.status).toBe(200);
    expect(presigned.headers.get("cache-control")).toMatch(/max-age=\d+/);
  });
});

describe("a sweep that read a certificate before its revocation", () => {
  it("stores its late 'good' neither in the database nor in the responder's memory", async () => {
    const leaf = await rca.issue({ commonName: "stale.ocsp.example" });
    await rca.settle();
    const readBeforeRevocation = await rca.ca.inventory.ocspResponses.statusRows([leaf.serial]);
    expect(readBeforeRevocation.map((r) => r.status)).toEqual(["valid"]);
    await revoke(leaf.serial, "keyCompromise");
    await rca.settle();
    const heard: string[] = [];
    rca.roles.ocspSigner.onSigned((records) => heard.push(...records.filter((r) => r.serial === leaf.serial).map((r) => r.certStatus)));
    // signed after the revocation's own re-sign, so its thisUpdate is the newer one
    await rca.roles.ocspSigner.presign(readBeforeRevocation);
    expect((await rca.ca.inventory.ocspResponses.get(leaf.serial))?.certStatus).toBe("revoked");
    expect(heard).toEqual([]);
    const answer = await opensslOcsp(["-cert", leaf.certPath]);
    expect(answer.all).toMatch(/Response verify OK/);
    expect(answer.stdout).toMatch(/: revoked/);
  });
});
