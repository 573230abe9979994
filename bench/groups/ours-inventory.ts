// Ours, with 1,000,000 certificates in PostgreSQL (200,000 in --quick; 2% revoked, 10%
// expired, the rest expiring over the next 90 days; seeded with generate_series, indexes
// rebuilt after the load as a bulk load does):
//  - inventory queries through inventory.certificates.list (what GET /v1/certificates
//    runs), first page of 100: valid certificates expiring within 7 days; and text search
//    (`q`) over subject and SANs with a mix of rare and common terms. p95 of 300 queries
//    each (bounded to 60 s).
//  - cold start of the all-in-one server (apps/server, `npm start`'s entry point) on that
//    database: from spawn to GET /readyz answering 200; median of 3 starts. The seeded rows
//    have no pre-signed OCSP responses (pre-signing a million takes too long for a
//    benchmark run), so loading those is not part of this figure.
import path from "node:path";
import { mkdtempSync } from "node:fs";
import type { Group, Result } from "../lib/types.ts";
import { createCa, childEnv } from "../lib/ca.ts";
import { seedCertificates } from "../lib/seed.ts";
import { attempt, percentile } from "../lib/measure.ts";
import { freePort, start, waitForHttp } from "../lib/proc.ts";
import { REPO_ROOT, npmStartArgs } from "../lib/repo.ts";

const group: Group = async (ctx) => {
  const n = ctx.quick ? 200_000 : 1_000_000;
  const scale = n.toLocaleString("en-US");
  const ca = await createCa(ctx.pgUrl, ctx.tmp);
  const results: Result[] = [];
  try {
    const seeded = await seedCertificates(ca.dbUrl, { issuerId: ca.issuerId, count: n, revokedFraction: 0.02, expiredFraction: 0.1, prefix: "8d", rebuildIndexes: true });
    ctx.log(`${n} certificates seeded in ${seeded.seconds.toFixed(1)} s`);
    const inventory = ca.runtime.inventory;
    const queries = ctx.quick ? 150 : 300;

    const timeQueries = async (make: (i: number) => Parameters<typeof inventory.certificates.list>[0], kindOf: (i: number) => string = () => "all") => {
      for (let i = 0; i < 20; i++) await inventory.certificates.list(make(i)); // warm-up
      const times: number[] = [];
      const byKind = new Map<string, number[]>();
      let rows = 0;
      const deadline = performance.now() + 60_000;
      for (let i = 0; i < queries && performance.now() < deadline; i++) {
        const t = performance.now();
        const page = await inventory.certificates.list(make(i));
        const ms = performance.now() - t;
        times.push(ms);
        byKind.set(kindOf(i), [...(byKind.get(kindOf(i)) ?? []), ms]);
        rows += page.items.length;
      }
      times.sort((a, b) => a - b);
      const kinds = Object.fromEntries(
        [...byKind].map(([k, v]) => [
          k,
          Number(
            percentile(
              v.sort((a, b) => a - b),
              95,
            ).toFixed(1),
          ),
        ]),
      );
      return {
        p50: percentile(times, 50),
        p95: percentile(times, 95),
        p99: percentile(times, 99),
        max: times[times.length - 1]!,
        queries: times.length,
        meanRows: rows / times.length,
        p95ByKind: kinds,
      };
    };

    results.push(
      await attempt("ours.inventory.expiring", "inventory: expiring in 7 days", ctx.log, async () => {
        const r = await timeQueries(() => ({ status: "valid", expiresBefore: new Date(Date.now() + 7 * 86_400_000), limit: 100 }));
        return {
          id: "ours.inventory.expiring",
          label: `inventory: valid and expiring within 7 days, ${scale} certificates, first page of 100, p95`,
          value: r.p95,
          unit: "ms",
          details: { ...r, note: `${r.queries} queries, ${r.meanRows.toFixed(0)} rows each` },
        };
      }),
    );
    results.push(
      await attempt("ours.inventory.search", "inventory: text search", ctx.log, async () => {
        // rare (one certificate), medium (a team: ~n/997) and SAN-suffix terms, in turn
        const terms = (i: number) => [`svc-${(i * 7919) % n}.team`, `team-${i % 997}.example`, `svc-${(i * 104729) % n}.`, "cluster.local"][i % 4]!;
        const kinds = ["one host", "one team (~0.1%)", "host prefix", "every row"];
        const r = await timeQueries(
          (i) => ({ q: terms(i), limit: 100 }),
          (i) => kinds[i % 4]!,
        );
        const byKind = Object.entries(r.p95ByKind)
          .map(([k, v]) => `${k} ${v} ms`)
          .join(", ");
        return {
          id: "ours.inventory.search",
          label: `inventory: text search (q) over subject and SANs, ${scale} certificates, first page of 100, p95`,
          value: r.p95,
          unit: "ms",
          details: { ...r, note: `${r.queries} queries, ${r.meanRows.toFixed(0)} rows each on average; p95 by term: ${byKind}` },
        };
      }),
    );

    await ca.runtime.close();
    results.push(
      await attempt("ours.coldstart", "cold start", ctx.log, async () => {
        const times: number[] = [];
        let lastOutput = "";
        for (let i = 0; i < 3; i++) {
          const port = await freePort();
          const t0 = performance.now();
          const server = start(process.execPath, npmStartArgs(), { cwd: REPO_ROOT, env: childEnv(ca, { PKI_HTTP_PORT: String(port), PKI_API_PORT: String(await freePort()) }) });
          try {
            await waitForHttp(`http://127.0.0.1:${port}/readyz`, { timeoutMs: 90_000, intervalMs: 10, alive: () => server.child.exitCode === null });
            times.push((performance.now() - t0) / 1000);
          } catch (error) {
            lastOutput = server.output().slice(-400);
            throw new Error(`${(error as Error).message}; server said: ${lastOutput}`);
          } finally {
            await server.stop();
          }
        }
        times.sort((a, b) => a - b);
        return {
          id: "ours.coldstart",
          label: `cold start of the all-in-one server (spawn → /readyz 200), ${scale} certificates, median of 3`,
          value: times[1]!,
          unit: "s",
          details: { runs: times, note: `runs: ${times.map((t) => t.toFixed(2)).join(", ")} s; as npm start runs it (its flags and bundle)` },
        };
      }),
    );
    results.push(
      await attempt("ours.firststart", "first start", ctx.log, async () => {
        // What a new user's first `npm start` does: empty data dir, embedded database (from
        // the template npm install built), new tokens and keys, then every listener.
        const times: number[] = [];
        for (let i = 0; i < 3; i++) {
          const port = await freePort();
          const env: NodeJS.ProcessEnv = {
            ...process.env,
            PKI_DATA_DIR: mkdtempSync(path.join(ctx.tmp, "first-")),
            PKI_LOG_LEVEL: "error",
            PKI_BIND: "127.0.0.1",
            PKI_HTTP_PORT: String(port),
            PKI_API_PORT: String(await freePort()),
          };
          for (const inherited of ["DATABASE_URL", "SOFTHSM2_CONF", "PKI_BOOTSTRAP_ADMIN_TOKEN"]) delete env[inherited];
          const t0 = performance.now();
          const server = start(process.execPath, npmStartArgs(), { cwd: REPO_ROOT, env });
          try {
            await waitForHttp(`http://127.0.0.1:${port}/readyz`, { timeoutMs: 90_000, intervalMs: 10, alive: () => server.child.exitCode === null });
            times.push((performance.now() - t0) / 1000);
          } catch (error) {
            throw new Error(`${(error as Error).message}; server said: ${server.output().slice(-400)}`);
          } finally {
            await server.stop();
          }
        }
        times.sort((a, b) => a - b);
        return {
          id: "ours.firststart",
          label: "first start of the all-in-one server on an empty data dir (spawn → /readyz 200), embedded database, median of 3",
          value: times[1]!,
          unit: "s",
          details: { runs: times, note: `runs: ${times.map((t) => t.toFixed(2)).join(", ")} s; tokens, keys and the database created; as npm start runs it (its flags and bundle)` },
        };
      }),
    );
  } finally {
    await ca.cleanup();
  }
  return results;
};
export default group;
