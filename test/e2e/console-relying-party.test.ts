// GET /v1/certificates/{serial}/relying-party against the real public listener (CRL
// publisher, OCSP pre-signer and responder): what a relying party sees flips to revoked
// after a revoke. Its own file: SoftHSM is loaded once per process, so one CA per file.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { startApi } from "@pki/api";
import { createLogger } from "@pki/logger";
import { callApi } from "../support/api.ts";
import { startRevocationCa } from "../support/revocation.ts";

describe("what a relying party sees", () => {
  it("asks the OCSP responder and reads the CRL from the certificate's URLs; both flip to revoked after a revoke", async () => {
    const rca = await startRevocationCa();
    const api = await startApi(rca.ca.runtime, createLogger("silent"), { port: 0, host: "127.0.0.1" });
    try {
      const root = readFileSync(rca.rootPath, "utf8");
      const call = (method: string, url: string, body?: unknown) => callApi(api.url, root, method, url, { token: rca.ca.adminToken, ...(body ? { body } : {}) });
      const leaf = await rca.issue({ commonName: "rp.console.example" });
      await rca.settle();
      const before = await call("GET", `/v1/certificates/${leaf.serial}/relying-party`);
      expect(before.status, before.text).toBe(200);
      expect(before.json.ocsp).toMatchObject({ url: `${rca.baseUrl}/ocsp`, status: "good", thisUpdate: expect.any(String), nextUpdate: expect.any(String) });
      expect(before.json.ocsp.error).toBeUndefined();
      expect(before.json.crl).toMatchObject({ url: `${rca.baseUrl}/crl/${rca.issuerId}.crl`, listed: false, number: expect.stringMatching(/^\d+$/) });
      expect(before.json.crl.error).toBeUndefined();

      const issuer = (await call("GET", "/v1/issuers")).json.find((i: { id: string }) => i.id === rca.issuerId);
      expect(issuer.crl).toEqual({ number: before.json.crl.number, thisUpdate: expect.any(String), nextUpdate: expect.any(String), ageSeconds: expect.any(Number) });
      expect(issuer.ocsp).toEqual({ responderSerial: expect.stringMatching(/^[0-9a-f]+$/), responderNotAfter: expect.any(String) });
      expect(issuer.liveCertificates).toBeGreaterThanOrEqual(1);

      expect((await call("POST", `/v1/certificates/${leaf.serial}/revoke`, { reason: "keyCompromise" })).status).toBe(200);
      await rca.settle();
      const after = await call("GET", `/v1/certificates/${leaf.serial}/relying-party`);
      expect(after.json.ocsp).toMatchObject({ status: "revoked", reason: "keyCompromise", revokedAt: expect.any(String) });
      expect(after.json.crl).toMatchObject({ listed: true });
      expect(BigInt(after.json.crl.number)).toBeGreaterThan(BigInt(before.json.crl.number));

      // A certificate naming URLs outside this CA's public URL (say, after PKI_PUBLIC_URL
      // changed) is not fetched: the CA never sends requests where a certificate points.
      const publicUrl = rca.ca.runtime.config.publicUrl;
      rca.ca.runtime.config.publicUrl = "http://elsewhere.invalid";
      const elsewhere = await call("GET", `/v1/certificates/${leaf.serial}/relying-party`);
      rca.ca.runtime.config.publicUrl = publicUrl;
      expect(elsewhere.json.ocsp).toMatchObject({ status: "error", error: expect.stringMatching(/not under this CA's public URL http:\/\/elsewhere.invalid; not fetched/) });
      expect(elsewhere.json.crl).toMatchObject({ listed: false, error: expect.stringMatching(/not under this CA's public URL/) });

      // With the public listener gone, each half reports its error instead of failing the request.
      await new Promise<void>((resolve) => rca.server.close(() => resolve()));
      rca.server.closeAllConnections();
      const down = await call("GET", `/v1/certificates/${leaf.serial}/relying-party`);
      expect(down.status).toBe(200);
      expect(down.json.ocsp).toMatchObject({ status: "error", error: expect.any(String) });
      expect(down.json.crl).toMatchObject({ listed: false, error: expect.any(String) });
    } finally {
      await api.stop();
      await rca.stop().catch(() => {});
    }
  }, 120_000);
});
