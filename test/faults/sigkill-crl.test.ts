// A CRL publisher killed with SIGKILL while it builds and signs CRLs over 20,000 revoked
// entries: afterwards the published CRLs are whole and verify, the CRL number never went
// backwards, and the next publication continues above every number seen.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CrlPublisher } from "@pki/revocation";
import { openCa } from "@pki/authority";
import { toPem } from "@pki/x509";
import { REPO_ROOT, testEnv, type TestEnv } from "../support/harness.ts";
import { pki, run, scratchDir, writeTemp } from "../support/tools.ts";
import { childEnv } from "../support/settings.ts";

const ENTRIES = 20_000;
let env: TestEnv;

beforeAll(async () => {
  env = await testEnv({ database: "postgres" });
  expect(pki(["init"], env.env).status).toBe(0);
  const ca = await openCa(env.config());
  try {
    // Revoked rows made in SQL: the CRL needs serials, dates and reasons, not real DER.
    const issuerId = ca.keyring.active().record.id;
    await ca.inventory.sql.query(
      `INSERT INTO certificates (serial, issuer_id, status, profile, subject, sans, search_text, key_algorithm, public_key_spki, not_before, not_after, tbs_der, requester, revoked_at, revocation_reason)
       SELECT '01' || md5(g::text || $2), $1, 'revoked', 'mtls', '', '{}', '', 'ECDSA-P256', '\\x00', now() - interval '1 day', now() + interval '1 day', '\\x00', 'test', now() - (g || ' seconds')::interval, g % 6
       FROM generate_series(1, $3) AS g`,
      [issuerId, randomBytes(4).toString("hex"), ENTRIES],
    );
  } finally {
    await ca.close();
  }
});
afterAll(async () => {
  await env?.cleanup();
});

describe("SIGKILL during CRL publication", () => {
  it("leaves whole CRLs and numbers that only grow", async () => {
    const seen: number[] = [];
    for (let round = 0; round < 3; round++) {
      const child = spawn(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, "test/faults/fixtures/crl-loop.ts")], {
        cwd: REPO_ROOT,
        env: childEnv(env.env),
        stdio: ["ignore", "pipe", "pipe"],
      });
      const exited = once(child, "exit"); // listened for now: a child that ends early has no later exit event
      let out = "";
      child.stdout!.on("data", (d) => (out += d));
      child.stderr!.on("data", (d) => (out += d));
      const deadline = Date.now() + 60_000;
      // Kill at a different point of the cycle each round.
      const target = 2 + round;
      while ((out.match(/\n/g)?.length ?? 0) < target && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 37 * (round + 1)));
      child.kill("SIGKILL");
      await exited;
      expect(out).toMatch(/^(full|delta) \d+\n/);
      seen.push(...[...out.matchAll(/(?:full|delta) (\d+)/g)].map((m) => Number(m[1])));
    }
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]!);

    const ca = await openCa(env.config());
    try {
      const issuer = ca.keyring.active();
      const issuerId = issuer.record.id;
      const dir = scratchDir();
      const issuerPem = writeTemp("issuer.pem", toPem(issuer.record.certificateDer), dir);
      for (const kind of ["full", "delta"] as const) {
        const stored = await ca.inventory.crls.read(issuerId, kind);
        expect(stored).toBeDefined();
        const verified = run("openssl", ["crl", "-inform", "DER", "-CAfile", issuerPem, "-noout"], { input: stored!.der });
        expect(verified.stderr).toMatch(/verify OK/);
        expect(Number(stored!.meta.number)).toBeLessThanOrEqual(Math.max(...seen) + 1);
      }
      const full = await ca.inventory.crls.read(issuerId, "full");
      const text = run("openssl", ["crl", "-inform", "DER", "-noout", "-text"], { input: full!.der }).stdout;
      expect(text.match(/Serial Number:/g)?.length).toBe(ENTRIES);
      const publisher = new CrlPublisher({ inventory: ca.inventory, keyring: ca.keyring, config: ca.config, clock: ca.clock });
      const next = await publisher.publishFull(issuerId);
      expect(Number(next.number)).toBeGreaterThan(Math.max(...seen));
    } finally {
      await ca.close();
    }
  });
});
