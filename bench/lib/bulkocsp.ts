// Pre-signed OCSP responses for many seeded certificates, fast: a response our CA signed
// (through its own OcspSigner) is the template; for every other certificate its
// to-be-signed data gets that certificate's serial and is signed again on the token with
// the same delegated responder key (raw C_Sign, P-256), and the row is stored as
// OcspResponseStore.upsert stores it. Real, verifiable responses from the real key, made at
// the token's raw rate, so the serving benchmarks can have 100k certificates without
// waiting minutes for the (separately measured) pre-signing path.
import { createHash } from "node:crypto";
import pkcs11js from "pkcs11js";
import pg from "pg";
import { Pkcs11Module, parseKeyUri } from "@pki/hsm";
import type { BenchCa } from "./ca.ts";
import { ecdsaRawToDer, ocspResponseParts } from "./der.ts";

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

    const module = Pkcs11Module.load(ca.config.hsm.modulePath!);
    const slot = module.findToken(ca.config.hsm.issuing.label)!.slotId;
    const api = module.api;
    const session = api.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    try {
      try {
        api.C_Login(session, pkcs11js.CKU_USER, ca.config.hsm.issuing.pin!);
      } catch (error) {
        if (!/ALREADY_LOGGED_IN/.test(String(error))) throw error;
      }
      const address = parseKeyUri(keyUri);
      const template: pkcs11js.Template = [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
        { type: pkcs11js.CKA_LABEL, value: address.object },
      ];
      if (address.id) template.push({ type: pkcs11js.CKA_ID, value: address.id });
      api.C_FindObjectsInit(session, template);
      const [key] = api.C_FindObjects(session, 1);
      api.C_FindObjectsFinal(session);
      if (key === undefined) throw new Error(`responder key ${keyUri} not found on the token`);
      const out = Buffer.alloc(64);
      const sign = (data: Buffer) => {
        api.C_SignInit(session, { mechanism: pkcs11js.CKM_ECDSA }, key);
        return ecdsaRawToDer(Buffer.from(api.C_Sign(session, createHash("sha256").update(data).digest(), out)));
      };
      const batch = 5000;
      for (let i = 0; i < serials.length; i += batch) {
        const part = serials.slice(i, i + batch);
        const ders = templates.map((t, k) =>
          part.map((s) => {
            const tbs = Buffer.from(t.tbs);
            Buffer.from(s, "hex").copy(tbs, at[k]!);
            return t.rebuild(tbs, sign(tbs));
          }),
        );
        await client.query(
          `INSERT INTO ocsp_responses (serial, issuer_id, cert_status, der_sha1, der_sha256, this_update, next_update, responder_id, updated_at)
           SELECT s, $2, 'good', d1, d2, $3, $4, $5, clock_timestamp() FROM unnest($1::text[], $6::bytea[], $7::bytea[]) AS t(s, d1, d2)
           ON CONFLICT (serial) DO NOTHING`,
          [part, ca.issuerId, tpl.this_update, tpl.next_update, tpl.responder_id, ders[0], ders[1]],
        );
      }
    } finally {
      api.C_CloseSession(session);
    }
  } finally {
    await client.end();
  }
  return { seconds: (performance.now() - t0) / 1000, responses: serials.length * 2 };
}
