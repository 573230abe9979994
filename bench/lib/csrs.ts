// P-256 CSRs made by `openssl req` (one shell loop), as a service's deploy tooling makes
// them. The same set feeds cfssl and our API.
import { readFileSync } from "node:fs";
import path from "node:path";
import { run } from "./proc.ts";

export function makeCsrs(dir: string, count: number): string[] {
  const script = `set -e; cd "${dir}"; for i in $(seq 1 ${count}); do openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key-$i.pem -out csr-$i.pem -subj "/CN=svc-$i.bench.example.com" -addext "subjectAltName=DNS:svc-$i.bench.example.com" 2>/dev/null; done`;
  run("bash", ["-c", script], { timeoutMs: 120_000 });
  return Array.from({ length: count }, (_, i) => readFileSync(path.join(dir, `csr-${i + 1}.pem`), "utf8"));
}
