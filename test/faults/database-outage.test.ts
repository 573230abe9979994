// PostgreSQL stopped in the middle of an issuance load: requests fail fast and clearly,
// nothing is signed without its intent row, issuance recovers by itself when the server is
// back, and reconciliation closes what the outage left pending.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { loadConfig } from "@pki/config";
import { CaError, parseCsr, toPem } from "@pki/x509";
import { initCa, openCa, openInventory, reconcilePendingIntents, type CaRuntime } from "@pki/authority";
import { registry } from "@pki/metrics";
import { migrateDatabase, type Inventory } from "@pki/db";
import { ownPostgres, type OwnPostgres } from "../support/postgres.ts";
import { opensslCsr, opensslVerify } from "../support/tools.ts";

let pg: OwnPostgres;
let dataDir: string;
let inventory: Inventory;
let ca: CaRuntime;

beforeAll(async () => {
  pg = await ownPostgres();
  dataDir = mkdtempSync(path.join(tmpdir(), "pki-fault-"));
  const config = loadConfig({ PKI_DATA_DIR: dataDir, DATABASE_URL: pg.url, PKI_BOOTSTRAP_ADMIN_TOKEN: randomBytes(32).toString("base64url") });
  await migrateDatabase({ url: pg.url, embeddedDir: config.embeddedDatabaseDir });
  inventory = await openInventory(config, "server");
  await initCa(config, inventory, { now: () => new Date() });
  ca = await openCa(config, { now: () => new Date() }, inventory);
});

afterAll(async () => {
  await ca?.close();
  await inventory?.close().catch(() => {});
  pg?.destroy();
  rmSync(dataDir, { recursive: true, force: true });
});

async function tokenSignatures(): Promise<number> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === "pki_token_sign_seconds");
  return (metric?.values ?? []).filter((v) => (v as { metricName?: string }).metricName === "pki_token_sign_seconds_count").reduce((sum, v) => sum + v.value, 0);
}

describe("database outage", () => {
  it("fails fast with 'unavailable', signs nothing unrecorded, and recovers by itself", async () => {
    const csr = parseCsr(opensslCsr({ subject: "/CN=outage.example.com" }).csrPem);
    const requester = { kind: "operator" as const, actor: "test:fault" };
    const before = await tokenSignatures();
    const outcomes = { issued: [] as string[], unavailable: 0, other: [] as string[] };
    const stopAt = Date.now() + 1500;
    let stopped = false;
    const workers = Array.from({ length: 8 }, async () => {
      while (Date.now() < stopAt + 4000) {
        if (!stopped && Date.now() > stopAt) {
          stopped = true;
          pg.stop(); // immediate shutdown, in the middle of the load
        }
        const started = Date.now();
        try {
          outcomes.issued.push((await ca.authority.issue({ csr, profile: "mtls", requester })).serial);
        } catch (error) {
          if (error instanceof CaError && error.kind === "unavailable") {
            outcomes.unavailable++;
            expect(Date.now() - started).toBeLessThan(15_000); // the pool's connect timeout, not a hang
          } else outcomes.other.push(String(error));
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    });
    await Promise.all(workers);
    expect(stopped).toBe(true);
    expect(outcomes.other).toEqual([]);
    expect(outcomes.unavailable).toBeGreaterThan(0);
    expect(outcomes.issued.length).toBeGreaterThan(0);

    pg.start();
    // Recovery without a restart: the pool reconnects on the next request.
    let recovered: string | undefined;
    for (let i = 0; i < 50 && !recovered; i++) {
      recovered = await ca.authority.issue({ csr, profile: "mtls", requester }).then(
        (c) => c.serial,
        () => undefined,
      );
      if (!recovered) await new Promise((r) => setTimeout(r, 200));
    }
    expect(recovered).toBeDefined();

    // Every signature the token made has an intent row; nothing signed is unknown.
    const signed = (await tokenSignatures()) - before;
    const rows = await inventory.sql.query<{ status: string; n: string }>("SELECT status, count(*) AS n FROM certificates GROUP BY status");
    const byStatus = Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
    const recorded = (byStatus.valid ?? 0) + (byStatus.pending ?? 0) + (byStatus.failed ?? 0);
    expect(signed).toBeLessThanOrEqual(recorded);
    // Every certificate we answered with is stored, valid and verifies.
    for (const serial of [...outcomes.issued, recovered!]) expect((await inventory.certificates.get(serial))?.status).toBe("valid");

    // What the outage left pending (signed, never stored, never released) is closed.
    const closed = await reconcilePendingIntents(inventory, { now: () => new Date(Date.now() + 120_000) });
    expect(closed.length).toBe(byStatus.pending ?? 0);
    const after = await inventory.sql.query<{ n: string }>("SELECT count(*) AS n FROM certificates WHERE status = 'pending'");
    expect(Number(after[0]!.n)).toBe(0);
    const last = await inventory.certificates.get(recovered!);
    const root = ca.keyring.active().chain.at(-1)!;
    expect(
      opensslVerify(
        toPem(last!.der!),
        toPem(root),
        ca.keyring
          .active()
          .chain.slice(0, -1)
          .map((c) => toPem(c))
          .join(""),
      ).status,
    ).toBe(0);
  });
});
