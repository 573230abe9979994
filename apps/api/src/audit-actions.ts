// A refused request is audited under the action its success is audited under, so filtering
// on `certificate.` (or `issuer.`) with outcome denied finds the refusals next to the
// successes. Reads have no success event; their refusals get a name in the same vocabulary.
import type { Request } from "express";
import { canonicalSerial } from "@pki/x509";

const AUDIT_ACTIONS: Record<string, string> = {
  // certificates
  issueCertificate: "certificate.issue",
  renewCertificate: "certificate.renew",
  revokeCertificate: "certificate.revoke",
  listCertificates: "certificate.list",
  getCertificate: "certificate.read",
  getRelyingPartyView: "certificate.relying-party",
  // console
  getOverview: "overview.read",
  listAuditEvents: "audit.read",
  createConsoleSession: "console.login",
  getConsoleSession: "console.session",
  deleteConsoleSession: "console.logout",
  // issuers
  listIssuers: "issuer.list",
  rotateIntermediate: "issuer.rotate.begin",
  activateIssuer: "issuer.activate",
  revokeIssuer: "issuer.revoke",
  getIssuerReissue: "issuer.reissue",
  // provisioners
  createProvisioner: "provisioner.create",
  listProvisioners: "provisioner.list",
  updateProvisioner: "provisioner.update",
  removeProvisioner: "provisioner.remove",
  createEabKey: "acme.eab.create",
  // operations
  getSchedulerStatus: "scheduler.status",
  runSchedulerJob: "scheduler.run",
  getCrlStatus: "crl.status",
  publishCrls: "crl.publish",
  runDoctor: "doctor.run",
  listOperators: "admin.list",
  addOperator: "admin.create",
  removeOperator: "admin.remove",
};

/** The audit action of a route's operation; a route missing from the table keeps its operationId. */
export const auditActionOf = (operationId: string): string => AUDIT_ACTIONS[operationId] ?? operationId;

/** Operations that have an audit action (the route table's test checks each route has one). */
export const AUDITED_OPERATIONS: ReadonlySet<string> = new Set(Object.keys(AUDIT_ACTIONS));

/**
 * What a refusal names as its target when the handler did not get as far as naming one: the
 * serial (in the inventory's form when it is one), issuer ID or name in the path, or the name
 * in the body of a create.
 */
export function requestTarget(req: Request): string | undefined {
  const params = req.params as Record<string, string | undefined>;
  if (typeof params.serial === "string") return canonicalSerial(params.serial) ?? params.serial;
  if (typeof params.id === "string") return params.id;
  if (typeof params.name === "string") return params.name;
  if (typeof params.job === "string") return params.job;
  const body = req.body as { name?: unknown; issuerId?: unknown } | undefined;
  if (body && typeof body === "object" && typeof body.name === "string") return body.name;
  if (body && typeof body === "object" && typeof body.issuerId === "string") return body.issuerId;
  return undefined;
}
