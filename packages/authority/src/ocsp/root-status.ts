// The status of intermediates over OCSP. An intermediate's AIA names our OCSP URL, and
// relying parties that check the whole path (Java PKIX, NSS) ask it about the
// intermediate with a CertID naming the root. The root key is only at hand in ceremonies,
// so the root signs these answers itself (no delegated responder: RFC 6960 §2.2 lets the
// CA sign directly) alongside its CRL, valid exactly as long as that CRL, and stores them
// with the other pre-signed responses for every responder to serve.
import type { Inventory, IssuerRecord, OcspResponseRecord } from "@pki/db";
import type { Signer } from "@pki/hsm";
import type { CaCertificateFacts } from "@pki/x509";
import { certIdFor, signOcspResponse } from "@pki/x509";
import type { CertIdHash } from "@pki/x509";

const wholeSeconds = (d: Date) => new Date(Math.floor(d.getTime() / 1000) * 1000);

/**
 * Signs and stores, with the root's own key, a response for each unexpired intermediate
 * the root certified: "good", or "revoked" with the time and reason on the root's record.
 */
export async function signIntermediateStatuses(
  inventory: Inventory,
  root: { record: IssuerRecord; facts: CaCertificateFacts; signer: Signer },
  intermediates: IssuerRecord[],
  validity: { thisUpdate: Date; nextUpdate: Date },
): Promise<OcspResponseRecord[]> {
  const identity = { certificateDer: root.record.certificateDer, signer: root.signer };
  const records: OcspResponseRecord[] = [];
  for (const intermediate of intermediates) {
    if (intermediate.parentId !== root.record.id || intermediate.notAfter <= validity.thisUpdate) continue;
    const revoked = intermediate.revokedAt !== null;
    const sign = (hash: CertIdHash) =>
      signOcspResponse(
        identity,
        [
          {
            certIdDer: certIdFor(hash, root.facts, intermediate.serial),
            status: revoked ? "revoked" : "good",
            revokedAt: intermediate.revokedAt ?? undefined,
            reason: intermediate.revocationReason ?? undefined,
            thisUpdate: validity.thisUpdate,
            nextUpdate: validity.nextUpdate,
          },
        ],
        { producedAt: validity.thisUpdate },
      );
    records.push({
      serial: intermediate.serial,
      issuerId: root.record.id,
      certStatus: revoked ? "revoked" : "good",
      derSha1: await sign("sha1"),
      derSha256: await sign("sha256"),
      thisUpdate: wholeSeconds(validity.thisUpdate),
      nextUpdate: wholeSeconds(validity.nextUpdate),
      // Signed by the root itself, not by a delegated responder certificate.
      responderId: root.record.id,
    });
  }
  await inventory.ocspResponses.upsert(records);
  return records;
}
