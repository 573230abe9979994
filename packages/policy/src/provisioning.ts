import { randomBytes } from "node:crypto";
import type { Config } from "@pki/config";
import { CaError } from "@pki/x509";
import { ProvisionerNameTakenError, type Inventory, type ProvisionerRecord } from "@pki/db";
import { ProvisionerPolicy } from "./provisioner.ts";

/** 256 random bits; the prefix lets secret scanners and people recognise what leaked. */
export const newProvisionerToken = () => `pkp_${randomBytes(32).toString("base64url")}`;

export interface NewProvisionerRequest {
  name: string;
  profiles: string[];
  names: string[];
  maxTtlSeconds: number;
  hierarchy?: string | undefined;
  /** "acme" serves ACME at /acme/NAME/directory instead of taking a bearer token */
  type?: "token" | "acme" | undefined;
  /** ACME only: accounts need an external account binding key (pki provisioner eab NAME) */
  eab?: boolean | undefined;
}

/**
 * Checks the policy, stores the provisioner with its audit event and returns the token,
 * which exists nowhere else afterwards. The API and the CLI both create provisioners here.
 */
export async function createProvisioner(
  deps: { inventory: Inventory; config: Config },
  input: NewProvisionerRequest,
  audit: { actor: string; sourceIp?: string | undefined },
): Promise<{ record: ProvisionerRecord; token: string }> {
  const policy = ProvisionerPolicy.create(input);
  if (input.eab && input.type !== "acme") throw new CaError("bad_request", "eab applies only to ACME provisioners (type acme)");
  const hierarchy = input.hierarchy ?? "default";
  if (input.maxTtlSeconds > deps.config.ca.maxTtlSeconds) {
    throw new CaError("bad_request", `maxTtlSeconds ${input.maxTtlSeconds} is more than the CA's maximum lifetime (${deps.config.ca.maxTtlSeconds} s, PKI_MAX_TTL_SECONDS)`);
  }
  const unavailable = () => new CaError("unavailable", "the inventory database is unavailable; no provisioner was created");
  const issuers = await deps.inventory.issuers.list().catch(() => {
    throw unavailable();
  });
  if (!issuers.some((i) => i.hierarchy === hierarchy && i.role === "intermediate" && i.status === "active")) {
    throw new CaError("bad_request", `hierarchy '${hierarchy}' has no active intermediate to issue from`);
  }
  const token = newProvisionerToken();
  try {
    const record = await deps.inventory.provisioners.create({ name: policy.name, profiles: [...policy.profiles], names: policy.names, maxTtlSeconds: policy.maxTtlSeconds, hierarchy }, token, {
      actor: audit.actor,
      action: "provisioner.create",
      sourceIp: audit.sourceIp,
      details: input.type === "acme" ? { type: "acme", eab: input.eab === true } : undefined,
    });
    // An ACME provisioner's bearer token is never shown, so it cannot enrol over REST.
    if (input.type === "acme") await deps.inventory.acme.enableProvisioner(record.id, input.eab === true);
    return { record, token };
  } catch (error) {
    if (error instanceof ProvisionerNameTakenError) throw new CaError("conflict", error.message);
    throw unavailable();
  }
}

export interface ProvisionerChanges {
  profiles?: string[] | undefined;
  names?: string[] | undefined;
  maxTtlSeconds?: number | undefined;
  disabled?: boolean | undefined;
}

/**
 * Changes a provisioner's scope or state, checking the resulting policy as creation does.
 * A narrower policy applies to the next enrolment and to the next renewal of every
 * certificate it enrolled.
 */
export async function updateProvisioner(
  deps: { inventory: Inventory; config: Config },
  name: string,
  changes: ProvisionerChanges,
  audit: { actor: string; sourceIp?: string | undefined },
): Promise<ProvisionerRecord> {
  const current = await deps.inventory.provisioners.byName(name);
  if (!current || current.deletedAt) throw new CaError("not_found", `no provisioner named '${name}'`);
  const merged = ProvisionerPolicy.create({
    name,
    profiles: changes.profiles ?? current.profiles,
    names: changes.names ?? current.names,
    maxTtlSeconds: changes.maxTtlSeconds ?? current.maxTtlSeconds,
  });
  if (merged.maxTtlSeconds > deps.config.ca.maxTtlSeconds) {
    throw new CaError("bad_request", `maxTtlSeconds ${merged.maxTtlSeconds} is more than the CA's maximum lifetime (${deps.config.ca.maxTtlSeconds} s, PKI_MAX_TTL_SECONDS)`);
  }
  const data: Partial<Pick<ProvisionerRecord, "profiles" | "names" | "maxTtlSeconds" | "disabled">> = {};
  if (changes.profiles) data.profiles = [...merged.profiles];
  if (changes.names) data.names = merged.names;
  if (changes.maxTtlSeconds !== undefined) data.maxTtlSeconds = merged.maxTtlSeconds;
  if (changes.disabled !== undefined) data.disabled = changes.disabled;
  const action = Object.keys(data).length === 1 && data.disabled !== undefined ? (data.disabled ? "provisioner.disable" : "provisioner.enable") : "provisioner.update";
  const record = await deps.inventory.provisioners.update(name, data, { actor: audit.actor, action, sourceIp: audit.sourceIp });
  if (!record) throw new CaError("not_found", `no provisioner named '${name}'`);
  return record;
}
