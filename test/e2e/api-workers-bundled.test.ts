// The issuing API on two node:cluster workers as the image runs it: compiled by
// apps/server/build-dist.mjs and started with plain Node (`node dist/api/main.js`). Its
// workers must run the bundle's own worker entry, not the TypeScript through tsx (which
// the primary does not have: forking worker.ts would fail to load).
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callApi } from "../support/api.ts";
import { type ApiOnWorkers, startApiOnWorkers } from "../support/api-workers.ts";
import { buildDist, opensslCsr, pki, run } from "../support/tools.ts";

let dist: ReturnType<typeof buildDist>;
let t: ApiOnWorkers;

beforeAll(async () => {
  dist = buildDist(["api"]);
  t = await startApiOnWorkers({}, { bundle: path.join(dist.dir, "api/main.js") });
}, 120_000);

afterAll(async () => {
  await t?.stop();
  dist?.remove();
});

describe("apps/api bundled, PKI_API_WORKERS=2", () => {
  it("forks its workers from the bundle's worker entry with plain Node, and runs no esbuild or tsx", async () => {
    await t.until("two workers", () => (t.workerPids().length === 2 ? true : undefined), 60_000);
    const commands = t.workerCommands();
    expect(commands).toHaveLength(2);
    for (const command of commands) {
      expect(command.at(-1)).toBe(path.join(dist.dir, "api/api-worker.js"));
      expect(command.join(" ")).not.toMatch(/tsx/);
    }
    // nothing but the two workers under the primary: no esbuild service anywhere in the tree
    const children = run("ps", ["--ppid", String(t.primary.pid), "-o", "args="])
      .stdout.trim()
      .split("\n");
    expect(children).toHaveLength(2);
    for (const pid of t.workerPids()) expect(run("ps", ["--ppid", String(pid), "-o", "args="]).stdout.trim()).toBe("");
  });

  it("issues certificates from the bundled workers", async () => {
    const added = pki(["provisioner", "add", "fleet", "--names", "DNS:.fleet.example"], t.env);
    expect(added.status, added.stderr).toBe(0);
    const token = added.stdout.trim();
    const answers = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        callApi(t.apiUrl, t.rootPem, "POST", "/v1/certificates", { token, body: { csr: opensslCsr({ sans: [`DNS:svc-${i}.fleet.example`] }).csrPem, ttlSeconds: 3600 } }),
      ),
    );
    expect(answers.map((a) => a.status)).toEqual([201, 201, 201, 201]);
  });
});
