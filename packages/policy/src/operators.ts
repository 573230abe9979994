// Named operator tokens: each person gets their own, so the audit log says who
// (admin:NAME) and one person can be removed without rotating everyone's credential.
// `pki admin` and the console's Operators page both go through here.
import { randomBytes } from "node:crypto";
import { CaError } from "@pki/x509";
import { AdminNameTakenError, type AdminRecord, type Inventory } from "@pki/db";

export const ADMIN_NAME = /^[a-z][a-z0-9._-]{0,62}$/;

/** The name, or a bad request saying what an admin name may be. */
export function assertAdminName(name: string): string {
  if (!ADMIN_NAME.test(name)) {
    throw new CaError("bad_request", `'${name.slice(0, 80)}' is not an admin name: lower-case letters, digits, '.', '_', '-', starting with a letter, at most 63 characters`);
  }
  return name;
}

/** 256 random bits; the prefix lets secret scanners and people recognise what leaked. */
export const newAdminToken = () => `pki_admin_${randomBytes(32).toString("base64url")}`;

/**
 * Creates an operator's admin token (stored as SHA-256, audited) and returns it: the only
 * time it exists outside the caller. A name with a live token is a conflict.
 */
export async function addOperator(inventory: Inventory, name: string, audit: { actor: string }): Promise<{ name: string; token: string }> {
  assertAdminName(name);
  const token = newAdminToken();
  await inventory.admins.addOperator(name, token, audit).catch((error: Error) => {
    throw error instanceof AdminNameTakenError ? new CaError("conflict", error.message, { cause: error }) : error;
  });
  return { name, token };
}

/** Revokes an operator's token and ends their console sessions at once. */
export async function removeOperator(inventory: Inventory, name: string, at: Date, audit: { actor: string }): Promise<{ sessionsEnded: number }> {
  assertAdminName(name);
  const removed = await inventory.admins.remove(name, at, audit);
  if (!removed) throw new CaError("not_found", `no live admin named '${name}' (pki admin list shows them all)`);
  return removed;
}

/** Every admin token ever made, oldest first; never the tokens. */
export const listOperators = (inventory: Inventory): Promise<AdminRecord[]> => inventory.admins.list();
