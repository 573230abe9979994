// Pre-signed OCSP responses for many seeded certificates, fast: a response our CA signed
// (through its own OcspSigner) is the template; for every other certificate its
// to-be-signed data gets that certificate's serial and is signed again on the token with
// the same delegated responder key (through packages/hsm), and the row is stored as
// OcspResponseStore.upsert stores it. Real, verifiable responses from the real key, made at
// the token's raw rate, so the serving benchmarks can have 100k certificates without
// waiting minutes for the (separately measured) pre-signing path.
import pg from "pg";
import { Token } from "@pki/hsm";
import type { BenchCa } from "./ca.ts";
import { ocspResponseParts } from "./der.ts";

const ECDSA_SHA256 = Buffer.from("300a06082a8648ce3d040302", "hex");

export async function bulkPresign(ca: BenchCa, serials: string[]): Promise<{ seconds: number; responses: number }> {
  const t0 = performance.now();
  const client = new pg.Client({ connectionString: ca.dbUrl });
  await client.connect();
  try {
    const tpl = (await client.query("SELECT * FROM ocsp_responses WHERE cert_status = 'good' AND issuer_id = $1 ORDER BY updated_at DESC LIMIT 1", [ca.issuerId])).rows[0];
    if (!tpl) throw new Error("no pre-signed response to use as a template");
    const keyUri = (await client.query("SELECT key_uri FROM ocsp_responders WHERE id = $1", [tpl.responder_id])).rows[0]?.key_uri as string | undefined;
    if (!keyUri) throw new Error(`responder ${tpl.responder_id} not found`);
    const templates = [ocspResponseParts(tpl.der_sha1), ocspResponseParts(tpl.der_sha256)];
    for (const t of templates) if (!t.sigAlg.equals(ECDSA_SHA256)) throw new Error("the template is not signed with ecdsa-with-SHA256");
    const serial0 = Buffer.from(tpl.serial as string, "hex");
    const at = templates.map((t) => t.tbs.indexOf(serial0));
    if (at.some((i) => i < 0)) throw new Error("the template's serial is not in its to-be-signed data");

    const token = Token.open({ modulePath: ca.config.hsm.modulePath!, softhsmConf: ca.config.hsm.softhsmConf, label: ca.config.hsm.issuing.label, pin: ca.config.hsm.issuing.pin!, sessions: 4 });
    try {
      const signer = await token.signer(keyUri);
      const batch = 5000;
      for (let i = 0; i < serials.length; i += batch) {
        const part = serials.slice(i, i + batch);
        const ders = await Promise.all(
          templates.map((t, k) =>
            Promise.all(
              part.map(async (s) => {
                const tbs = Buffer.from(t.tbs);
                Buffer.from(s, "hex").copy(tbs, at[k]!);
                return t.rebuild(tbs, await signer.sign(tbs));
              }),
            ),
          ),
        );
        await client.query(
          `INSERT INTO ocsp_responses (serial, issuer_id, cert_status, der_sha1, der_sha256, this_update, next_update, responder_id, updated_at)
           SELECT s, $2, 'good', d1, d2, $3, $4, $5, clock_timestamp() FROM unnest($1::text[], $6::bytea[], $7::bytea[]) AS t(s, d1, d2)
           ON CONFLICT (serial) DO NOTHING`,
          [part, ca.issuerId, tpl.this_update, tpl.next_update, tpl.responder_id, ders[0], ders[1]],
        );
      }
    } finally {
      token.close();
    }
  } finally {
    await client.end();
  }
  return { seconds: (performance.now() - t0) / 1000, responses: serials.length * 2 };
}
