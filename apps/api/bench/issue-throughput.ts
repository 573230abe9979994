// Issuance and renewal throughput of the issuing API over real HTTPS: a real SoftHSM token,
// a real PostgreSQL (scripts/with-postgres.sh), keep-alive connections. Run:
//   bash scripts/with-postgres.sh npx tsx apps/api/bench/issue-throughput.ts [requests] [concurrency]
import { Agent, request } from "node:https";
import { addProvisioner, startTestApi } from "../../../test/support/api.ts";
import { opensslCsr } from "../../../test/support/tools.ts";

const REQUESTS = Number(process.argv[2] ?? 2000);
const CONCURRENCY = Number(process.argv[3] ?? 16);

function post(agent: Agent, url: string, body: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "POST", agent, headers: { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)), ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function load(label: string, send: (i: number) => Promise<{ status: number; body: string }>): Promise<void> {
  const latencies: number[] = [];
  let next = 0;
  let failures = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < REQUESTS) {
        const i = next++;
        const t0 = process.hrtime.bigint();
        const res = await send(i);
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (res.status !== 201) failures++;
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!.toFixed(1);
  console.log(`${label}: ${REQUESTS} requests, ${CONCURRENCY} concurrent: ${(REQUESTS / seconds).toFixed(0)}/s, p50 ${pct(50)} ms, p95 ${pct(95)} ms, p99 ${pct(99)} ms, failures ${failures}`);
}

const t = await startTestApi({ database: "postgres" });
try {
  const token = await addProvisioner(t, { name: "bench", names: ["DNS:.bench.example"] });
  const csrs = Array.from({ length: 32 }, (_, i) => opensslCsr({ sans: [`DNS:svc-${i}.bench.example`] }));
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY, ca: t.rootPem });
  const url = `${t.api.url}/v1/certificates`;
  await load("warm-up", (i) => post(agent, url, JSON.stringify({ csr: csrs[i % csrs.length]!.csrPem }), { authorization: `Bearer ${token}` }));
  await load("issue (provisioner token, PEM CSR)", (i) => post(agent, url, JSON.stringify({ csr: csrs[i % csrs.length]!.csrPem }), { authorization: `Bearer ${token}` }));

  // renewal: one client certificate per connection slot
  const holders = await Promise.all(
    csrs.slice(0, CONCURRENCY).map(async (csr) => {
      const res = await post(agent, url, JSON.stringify({ csr: csr.csrPem }), { authorization: `Bearer ${token}` });
      const issued = JSON.parse(res.body) as { certificate: string; chain: string[] };
      return new Agent({ keepAlive: true, maxSockets: 1, ca: t.rootPem, cert: [issued.certificate, ...issued.chain.slice(0, -1)].join(""), key: csr.keyPem });
    }),
  );
  await load("renew (mTLS, same key)", (i) => post(holders[i % holders.length]!, `${t.api.url}/v1/certificates/renew`, "{}", {}));
  agent.destroy();
  for (const h of holders) h.destroy();
} finally {
  await t.stop();
}
