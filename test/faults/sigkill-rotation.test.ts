// `pki issuers rotate` killed with SIGKILL at different points of the ceremony: afterwards
// each hierarchy still has exactly one active intermediate whose key matches its
// certificate, serving processes start and issue, and the next rotation completes.
import { spawn } from "node:child_process";
import { once } from "node:events";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openCa } from "@pki/authority";
import { parseCsr } from "@pki/x509";
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

describe("SIGKILL during rotation", () => {
  it("never leaves a hierarchy without exactly one usable active intermediate", async () => {
    const csr = parseCsr(opensslCsr({ subject: "/CN=rotate-kill.example.com" }).csrPem);
    for (const delayMs of [150, 400, 700, 1000, 1400]) {
      const child = spawn(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, "apps/cli/src/main.ts"), "issuers", "rotate"], { cwd: REPO_ROOT, env: childEnv(env.env), stdio: "ignore" });
      // Listen before waiting: a rotation that finishes before the kill has already exited.
      const exited = once(child, "exit");
      await new Promise((r) => setTimeout(r, delayMs));
      child.kill("SIGKILL");
      await exited;

      const ca = await openCa(env.config()); // the start-up checks: keys match, active in date
      try {
        const rows = await ca.inventory.sql.query<{ status: string; n: string }>("SELECT status, count(*) AS n FROM issuers WHERE role = 'intermediate' GROUP BY status");
        const byStatus = Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
        expect(byStatus.active, `after a kill at ${delayMs} ms: ${JSON.stringify(byStatus)}`).toBe(1);
        const issued = await ca.authority.issue({ csr, profile: "mtls", requester: { kind: "operator", actor: "test:rotate-kill" } });
        expect(issued.issuerId).toBe(ca.keyring.active().record.id);
      } finally {
        await ca.close();
      }
    }
    // A rotation that is left alone completes, whatever the earlier ones left behind.
    const rotated = pki(["issuers", "rotate"], env.env);
    expect(rotated.stderr).toBe("");
    expect(rotated.status).toBe(0);
    expect(rotated.stdout).toMatch(/activated /);
  });
});
