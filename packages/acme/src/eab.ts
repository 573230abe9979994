import { randomBytes } from "node:crypto";
import { CaError } from "@pki/x509";
import type { Inventory } from "@pki/db";

/**
 * A new external account binding key for an ACME provisioner: the kid and the HMAC key
 * (base64url) are returned once; the key is stored for verifying the binding and is bound
 * to the first account that uses it.
 */
export async function createEabKey(inventory: Inventory, provisionerName: string, audit: { actor: string; sourceIp?: string | undefined }): Promise<{ kid: string; hmacKey: string }> {
  const provisioner = await inventory.provisioners.byName(provisionerName);
  if (!provisioner || provisioner.deletedAt) throw new CaError("not_found", `no provisioner named '${provisionerName}'`);
  if (!(await inventory.acme.provisionerSettings(provisioner.id)))
    throw new CaError("bad_request", `provisioner '${provisionerName}' is not an ACME provisioner (pki provisioner add NAME --type acme)`);
  const kid = `kid_${randomBytes(12).toString("base64url")}`;
  const key = randomBytes(32);
  await inventory.acme.createEabKey(provisioner.id, kid, key, { actor: audit.actor, action: "acme.eab.create", sourceIp: audit.sourceIp, details: { provisioner: provisionerName } });
  return { kid, hmacKey: key.toString("base64url") };
}
