// A relying party as deployed: a Node TLS server (OpenSSL underneath) that requires client
// certificates and checks them against the CRLs it fetches from the CA's public listener.
import { readFileSync } from "node:fs";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseCsr } from "@pki/x509";
import { revokeCertificate } from "@pki/authority";
import { registry } from "@pki/http-kit";
import { derToPem, fetchBytes, startRevocationCa, type RevocationCa } from "../support/revocation.ts";
import { opensslCsr } from "../support/tools.ts";

let rca: RevocationCa;
beforeAll(async () => {
  rca = await startRevocationCa({ PKI_CRL_DEBOUNCE_MS: "200" });
  await rca.settle();
});
afterAll(async () => {
  await rca?.stop();
});

/** The CRLs a relying party downloads: the intermediate's (for leaves) and the root's (for the intermediate). */
async function downloadCrls(): Promise<string[]> {
  const crls = [];
  for (const file of [`${rca.issuerId}.crl`, `${rca.rootId}.crl`]) {
    const response = await fetchBytes(`${rca.baseUrl}/crl/${file}`);
    expect(response.status).toBe(200);
    crls.push(derToPem(response.body, "X509 CRL"));
  }
  return crls;
}

function connect(port: number, client: { cert: string; key: string; chain: string[] }, ca: string): Promise<{ ok: true; data: string } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername: "rp.test.example", ca, cert: client.cert + client.chain[0], key: client.key });
    let data = "";
    socket.on("data", (chunk) => (data += chunk.toString()));
    socket.on("end", () => resolve(data ? { ok: true, data } : { ok: false, error: "closed without a greeting" }));
    socket.on("error", (error) => resolve({ ok: false, error: error.message }));
  });
}

describe("a TLS server checking client certificates against the CA's CRLs", () => {
  it("accepts a client before its certificate is revoked and refuses it right after", async () => {
    const serverCsr = opensslCsr({ subject: "/CN=rp.test.example", sans: ["DNS:rp.test.example", "IP:127.0.0.1"] });
    const serverCert = await rca.ca.runtime.authority.issue({ csr: parseCsr(Buffer.from(serverCsr.csrPem)), profile: "server", requester: { kind: "operator", actor: "test" } });
    const clientCsr = opensslCsr({ subject: "/CN=payments-client", sans: ["URI:spiffe://prod.example/ns/payments/sa/client"] });
    const clientCert = await rca.ca.runtime.authority.issue({ csr: parseCsr(Buffer.from(clientCsr.csrPem)), profile: "client", requester: { kind: "operator", actor: "test" } });
    await rca.settle();
    const root = readFileSync(rca.rootPath, "utf8");
    const trust = root + readFileSync(rca.intermediatePath, "utf8");
    const client = { cert: clientCert.pem, key: clientCsr.keyPem, chain: clientCert.chain };

    const context = async () => ({ key: serverCsr.keyPem, cert: serverCert.pem + serverCert.chain[0], ca: trust, crl: await downloadCrls() });
    const server = tls.createServer({ ...(await context()), requestCert: true, rejectUnauthorized: true }, (socket) => socket.end("welcome\n"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const before = await connect(port, client, root);
      expect(before).toEqual({ ok: true, data: "welcome\n" });

      await revokeCertificate({ inventory: rca.ca.inventory, events: rca.ca.runtime.events, clock: rca.ca.runtime.clock }, { serial: clientCert.serial, reason: "keyCompromise", actor: "test" });
      await rca.settle();
      // The relying party refreshes its CRLs, as it would on the CRL's max-age.
      server.setSecureContext(await context());
      const after = await connect(port, client, root);
      expect(after.ok).toBe(false);
      if (!after.ok) expect(after.error).toMatch(/revoked|alert|closed|ECONNRESET|socket hang up/i);

      // Another, unrevoked client still gets in: the refusal is about that certificate.
      const otherCsr = opensslCsr({ subject: "/CN=other-client", sans: ["DNS:other-client.example"] });
      const other = await rca.ca.runtime.authority.issue({ csr: parseCsr(Buffer.from(otherCsr.csrPem)), profile: "client", requester: { kind: "operator", actor: "test" } });
      await rca.settle();
      server.setSecureContext(await context());
      expect(await connect(port, { cert: other.pem, key: otherCsr.keyPem, chain: other.chain }, root)).toEqual({ ok: true, data: "welcome\n" });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe("metrics", () => {
  it("exports CRL size, number, age and time to nextUpdate per issuer, and OCSP requests by outcome with a latency histogram", async () => {
    await fetchBytes(`${rca.baseUrl}/ocsp`, { method: "POST", body: Buffer.from("garbage") });
    const text = await registry.metrics();
    expect(text).toMatch(new RegExp(`pki_crl_bytes\\{issuer="${rca.issuerId}",kind="full"\\} \\d+`));
    expect(text).toMatch(new RegExp(`pki_crl_number\\{issuer="${rca.issuerId}",kind="delta"\\} \\d+`));
    expect(text).toMatch(new RegExp(`pki_crl_age_seconds\\{issuer="${rca.issuerId}",kind="full"\\} [\\d.]+`));
    expect(text).toMatch(new RegExp(`pki_crl_seconds_until_next_update\\{issuer="${rca.rootId}",kind="full"\\} [\\d.]+`));
    expect(text).toMatch(/pki_ocsp_requests_total\{method="POST",outcome="malformed"\} \d+/);
    expect(text).toMatch(/pki_ocsp_request_duration_seconds_bucket\{le="0.001",method="POST"\} \d+/);
  });
});
