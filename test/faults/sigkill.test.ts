// A process killed with SIGKILL in the middle of issuing: after restart the inventory is
// consistent. Every certificate the process reported is stored and valid, every stored
// certificate is exactly its recorded TBS plus a signature that verifies, and the intents
// the kill interrupted are closed by reconciliation.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { X509Certificate } from "node:crypto";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openCa, reconcilePendingIntents } from "@pki/authority";
import { REPO_ROOT, testEnv, type TestEnv } from "../support/harness.ts";
import { opensslCsr, pki } from "../support/tools.ts";
import { childEnv } from "../support/settings.ts";

let env: TestEnv;
beforeAll(async () => {
  env = await testEnv({ database: "postgres" });
  expect(pki(["init"], env.env).status).toBe(0);
});
afterAll(async () => {
  await env?.cleanup();
});

describe("SIGKILL during issuance", () => {
  it("leaves a consistent inventory", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, "test/faults/fixtures/issue-loop.ts"), opensslCsr({ subject: "/CN=killed.example.com" }).csrPath], {
      cwd: REPO_ROOT,
      env: childEnv(env.env),
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exited = once(child, "exit"); // listened for now: a child that ends early has no later exit event
    const reported: string[] = [];
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    child.stdout!.on("data", (d: Buffer) => reported.push(...d.toString().split("\n").filter(Boolean)));
    const deadline = Date.now() + 60_000;
    while (reported.length < 300 && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
    expect(stderr).toBe("");
    expect(reported.length).toBeGreaterThanOrEqual(300);
    child.kill("SIGKILL");
    await exited;

    const ca = await openCa(env.config()); // restart: start-up checks pass on the same token
    try {
      // The killed process's last statements may still be running in PostgreSQL (a backend
      // only notices its client is gone later); reconciliation is about what they leave.
      for (let i = 0; i < 100; i++) {
        const [busy] = await ca.inventory.sql.query<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'");
        if (Number(busy!.n) === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      await reconcilePendingIntents(ca.inventory, { now: () => new Date(Date.now() + 120_000) });
      const rows = await ca.inventory.sql.query<{ serial: string; status: string; der: Buffer | null; tbs_der: Buffer }>("SELECT serial, status, der, tbs_der FROM certificates");
      expect(rows.filter((r) => r.status === "pending")).toEqual([]);
      const bySerial = new Map(rows.map((r) => [r.serial, r]));
      for (const serial of reported) expect(bySerial.get(serial)?.status).toBe("valid");
      const issuer = new X509Certificate(ca.keyring.active().record.certificateDer);
      for (const row of rows.filter((r) => r.status === "valid")) {
        expect(row.der!.includes(row.tbs_der)).toBe(true);
        expect(new X509Certificate(row.der!).verify(issuer.publicKey)).toBe(true);
      }
      for (const row of rows.filter((r) => r.status === "failed")) expect(row.der).toBeNull();
      // And the CA issues again after the restart.
      expect(pki(["issue", "--csr", opensslCsr({ subject: "/CN=after.example.com" }).csrPath], env.env).status).toBe(0);
    } finally {
      await ca.close();
    }
  });
});
