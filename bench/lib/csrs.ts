// P-256 CSRs made by `openssl req` (one shell loop), as a service's deploy tooling makes
// them. The same set feeds cfssl and our API.
import { readFileSync } from "node:fs";
import path from "node:path";
import { run } from "./proc.ts";

/** `count` CSRs in `dir`, or in the run's shared BENCH_CSR_DIR (made once, reused by every group). */
export function makeCsrs(dir: string, count: number): string[] {
  dir = process.env.BENCH_CSR_DIR ?? dir;
  const script = `set -e; cd "${dir}"; for i in $(seq 1 ${count}); do [ -f csr-$i.pem ] || openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key-$i.pem -out csr-$i.pem -subj "/CN=svc-$i.bench.example.com" -addext "subjectAltName=DNS:svc-$i.bench.example.com" 2>/dev/null; done`;
  run("bash", ["-c", script], { timeoutMs: 120_000 });
  return Array.from({ length: count }, (_, i) => readFileSync(path.join(dir, `csr-${i + 1}.pem`), "utf8"));
}
