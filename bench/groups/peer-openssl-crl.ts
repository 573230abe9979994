// Peer: `openssl ca -gencrl` over an index.txt of 1,000,000 revoked (200,000 in --quick) certificates (serials
// like ours, revocation dates over the past 30 days, reasons as in our seed), signed by a
// software P-256 CA; wall time and peak RSS from /usr/bin/time -v. DER size from
// `openssl crl -outform DER`.
import { createWriteStream, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Group } from "../lib/types.ts";
import { createSoftCa } from "../lib/softca.ts";
import { timeV } from "../lib/time.ts";
import { run } from "../lib/proc.ts";

/** the same for both sides: 1M, or 200k in --quick */
export const crlEntries = (quick: boolean) => (quick ? 200_000 : 1_000_000);
const REASONS = ["unspecified", "keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation", "unspecified"];

function asn1Time(d: Date): string {
  return `${d.toISOString().replace(/[-:T]/g, "").slice(2, 14)}Z`;
}

async function writeIndex(file: string, n: number): Promise<void> {
  const out = createWriteStream(file);
  const now = Date.now();
  const expiry = asn1Time(new Date(now + 30 * 86_400_000));
  let chunk = "";
  for (let i = 1; i <= n; i++) {
    const revoked = asn1Time(new Date(now - (i % 2_592_000) * 1000));
    const reason = REASONS[i % 6]!;
    const serial = `01${((i * 2654435761) >>> 0).toString(16).padStart(8, "0")}${i.toString(16).padStart(24, "0")}`.toUpperCase();
    chunk += `R\t${expiry}\t${revoked}${reason === "unspecified" ? "" : `,${reason}`}\t${serial}\tunknown\t/CN=svc-${i}.example.com\n`;
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await new Promise<void>((r) => out.once("drain", () => r()));
      chunk = "";
    }
  }
  out.end(chunk);
  await new Promise<void>((r) => out.once("finish", () => r()));
}

const group: Group = async (ctx) => {
  const ca = createSoftCa(ctx.tmp);
  const n = crlEntries(ctx.quick);
  const t = performance.now();
  await writeIndex(path.join(ctx.tmp, "index.txt"), n);
  ctx.log(`index.txt with ${n} revoked entries written in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  writeFileSync(path.join(ctx.tmp, "crlnumber"), "1000\n");
  writeFileSync(path.join(ctx.tmp, "index.txt.attr"), "unique_subject = no\n");
  const cnf = path.join(ctx.tmp, "openssl.cnf");
  writeFileSync(
    cnf,
    `[ ca ]\ndefault_ca = CA_default\n[ CA_default ]\ndir = ${ctx.tmp}\ndatabase = $dir/index.txt\ncertificate = ${ca.certPath}\nprivate_key = ${ca.keyPath}\ncrlnumber = $dir/crlnumber\ndefault_md = sha256\ndefault_crl_days = 1\nunique_subject = no\ncrl_extensions = crl_ext\n[ crl_ext ]\nauthorityKeyIdentifier = keyid:always\n`,
  );
  const pemOut = path.join(ctx.tmp, "crl.pem");
  const r = timeV("openssl", ["ca", "-config", cnf, "-gencrl", "-out", pemOut], { timeoutMs: 170_000 });
  if (r.exit !== 0) throw new Error(`openssl ca -gencrl failed: ${r.stderr.slice(-800)}`);
  const derOut = path.join(ctx.tmp, "crl.der");
  run("openssl", ["crl", "-in", pemOut, "-outform", "DER", "-out", derOut], { timeoutMs: 120_000 });
  const derMB = statSync(derOut).size / 1e6;
  return [
    {
      id: "peer.openssl.crl",
      label: `openssl ca -gencrl, ${n.toLocaleString("en-US")} revoked`,
      value: r.seconds,
      unit: "s",
      details: { rssMB: r.rssMB, derMB, entries: n, note: `${derMB.toFixed(1)} MB DER` },
    },
  ];
};
export default group;
