import { CaError, DEFAULT_PROFILE, badRequest, certificateView, forbidden, formatSan, namesOf, parseCsrOffThread, toPem, type CsrProposal, type ProfileName } from "@pki/x509";
import {
  INTERNAL_CERTIFICATE_MARKS,
  isInternalCertificate,
  REASON_NAMES,
  inventoryFailure,
  revokeCertificate,
  successorRequester,
  type CaRuntime,
  type IssuedCertificate,
  type Requester,
} from "@pki/authority";
import { relyingPartyView } from "@pki/revocation";
import type { CertificateRecord, CertificateState } from "@pki/db";
import type { Caller } from "../auth.ts";
import { defineRoute, parseOrThrow, type RouteDefinition } from "../route.ts";
import * as S from "../schemas.ts";

function issuedView(issued: IssuedCertificate) {
  return {
    serial: issued.serial,
    certificate: issued.pem,
    chain: issued.chain,
    issuerId: issued.issuerId,
    profile: issued.profile,
    subject: issued.subject,
    sans: issued.sans,
    notBefore: issued.notBefore.toISOString(),
    notAfter: issued.notAfter.toISOString(),
  };
}

function stateOf(record: CertificateRecord, now: Date): CertificateState {
  return record.status === "valid" && record.notAfter <= now ? "expired" : record.status;
}

/** Provisioner names by id, removed ones included (their certificates still name them). */
async function provisionerNames(runtime: CaRuntime): Promise<Map<string, string>> {
  return new Map((await runtime.inventory.provisioners.list({ includeRemoved: true })).map((p) => [p.id, p.name]));
}

/** The issuer's certificate and its parents up to the root, PEM. */
async function chainOf(runtime: CaRuntime, issuerId: string): Promise<string[]> {
  const chain: string[] = [];
  let id: string | null = issuerId;
  // A hierarchy is root → intermediate; the bound only guards against a corrupt loop.
  for (let depth = 0; id && depth < 8; depth++) {
    const issuer = await runtime.inventory.issuers.get(id);
    if (!issuer) break;
    chain.push(toPem(issuer.certificateDer));
    id = issuer.parentId;
  }
  return chain;
}

function summaryView(record: CertificateRecord, now: Date, names: Map<string, string>) {
  return {
    serial: record.serial,
    status: stateOf(record, now),
    issuerId: record.issuerId,
    profile: record.profile,
    subject: record.subject,
    sans: record.sans,
    keyAlgorithm: record.keyAlgorithm,
    notBefore: record.notBefore.toISOString(),
    notAfter: record.notAfter.toISOString(),
    requester: record.requester,
    provisionerId: record.provisionerId,
    provisioner: record.provisionerId ? (names.get(record.provisionerId) ?? null) : null,
    internal: isInternalCertificate(record),
    autoRenew: record.autoRenew,
    predecessorSerial: record.predecessorSerial,
    successorSerial: record.successorSerial,
    revokedAt: record.revokedAt ? record.revokedAt.toISOString() : null,
    revocationReason: record.revocationReason === null ? null : (REASON_NAMES[record.revocationReason] ?? String(record.revocationReason)),
  };
}

/** Who the CA records as asking; the issuance pipeline derives what they may have. */
function requesterFor(caller: Caller, sourceIp: string): Requester {
  switch (caller.kind) {
    case "admin":
      return { kind: "operator", actor: caller.actor, sourceIp };
    case "provisioner":
      return { kind: "provisioner", actor: caller.actor, provisioner: caller.provisioner, sourceIp };
    default:
      throw new CaError("unauthorized", "this route needs a provisioner or admin token");
  }
}

interface IssueInput {
  csr: string | Buffer;
  profile: ProfileName;
  ttlSeconds: number | undefined;
  autoRenew: boolean | undefined;
}

/** A JSON body with a PEM CSR, or a DER body (`application/pkcs10`) with options in the query. */
function issueInput(ctx: { req: { is(type: string): string | false | null; body: unknown; query: unknown } }): IssueInput {
  if (ctx.req.is("application/pkcs10")) {
    const body = ctx.req.body;
    if (!Buffer.isBuffer(body) || body.length === 0) throw badRequest("the application/pkcs10 body is empty: send the DER CSR");
    const query = parseOrThrow(S.IssueQuery, ctx.req.query, "query");
    return { csr: body, profile: (query.profile as ProfileName | undefined) ?? DEFAULT_PROFILE, ttlSeconds: query.ttlSeconds, autoRenew: query.autoRenew };
  }
  if (Object.keys(ctx.req.query as object).length) throw badRequest("query parameters are only read with application/pkcs10 bodies; put profile, ttlSeconds and autoRenew in the JSON body");
  const body = parseOrThrow(S.IssueBody, ctx.req.body, "body");
  return { csr: body.csr, profile: (body.profile as ProfileName | undefined) ?? DEFAULT_PROFILE, ttlSeconds: body.ttlSeconds, autoRenew: body.autoRenew };
}

const issue = (runtime: CaRuntime) =>
  defineRoute({
    method: "post",
    path: "/v1/certificates",
    operationId: "issueCertificate",
    summary: "Sign a CSR under a profile, within the caller's policy",
    description:
      "JSON body with a PEM CSR, or the DER CSR as `application/pkcs10` with profile/ttlSeconds/autoRenew in the query. Every name in the CSR (CN and SANs) must be allowed for the provisioner; the profile decides every extension; lifetime = min(ttlSeconds, provisioner maximum, CA maximum, issuer notAfter).",
    tags: ["certificates"],
    auth: "enrol",
    body: S.IssueBody,
    bodyRequired: true,
    acceptsPkcs10: true,
    query: S.IssueQuery,
    responses: { 201: { description: "issued; the chain goes from the issuing intermediate up to the root", schema: S.IssuedCertificate } },
    problems: [400, 401, 403, 413, 415, 429, 503],
    handle: async (ctx) => {
      const input = issueInput(ctx);
      const csr = await parseCsrOffThread(input.csr);
      ctx.noteAuditTarget(requestedNames(csr));
      const issued = await runtime.authority.issue({ csr, profile: input.profile, ttlSeconds: input.ttlSeconds, autoRenew: input.autoRenew, requester: requesterFor(ctx.caller, ctx.sourceIp) });
      return { status: 201, body: issuedView(issued) };
    },
  });

/** The names a CSR asks for, as a refused issuance's audit target: "CN=api, DNS:api.example". */
function requestedNames(csr: CsrProposal): string {
  const names = namesOf(csr);
  return [names.commonName === undefined ? undefined : `CN=${names.commonName}`, ...names.sans.map(formatSan)].filter(Boolean).join(", ");
}

const renew = (runtime: CaRuntime) =>
  defineRoute({
    method: "post",
    path: "/v1/certificates/renew",
    operationId: "renewCertificate",
    summary: "Renew the certificate presented in the TLS handshake",
    description:
      "Authenticated only by the current certificate over mTLS: same names, profile and lifetime, new serial and validity. Send `{csr}` to change the key (its names must be the same). A revoked or expired certificate cannot renew; the old certificate records its successor. A certificate has at most one live successor: renewing it again is 409 naming the successor. The provisioner that enrolled it must still exist and still allow its names.",
    tags: ["certificates"],
    auth: "mtls",
    body: S.RenewBody,
    responses: { 201: { description: "the successor certificate", schema: S.IssuedCertificate } },
    problems: [400, 401, 403, 409, 413, 415, 429, 503],
    handle: async (ctx) => {
      if (ctx.caller.kind !== "mtls") throw new CaError("unauthorized", "renewal needs the current certificate in the TLS handshake");
      const current = ctx.caller.client.record;
      ctx.noteAuditTarget(current.serial);
      const body = ctx.body ?? {};
      const requester = await successorRequester(runtime.inventory, current, ctx.caller.actor, ctx.sourceIp);
      const issued = await runtime.authority.renew({ predecessor: current, requester, csr: body.csr ? await parseCsrOffThread(body.csr) : undefined });
      return { status: 201, body: issuedView(issued) };
    },
  });

const revoke = (runtime: CaRuntime) =>
  defineRoute({
    method: "post",
    path: "/v1/certificates/{serial}/revoke",
    operationId: "revokeCertificate",
    summary: "Revoke a certificate",
    description:
      "An admin token, or mTLS with that very certificate. The revocation is in the inventory before the answer. Revoking twice is 409. With reason keyCompromise its live successors (renewals, transitively) are revoked in the same transaction, since whoever held the key could have renewed it.",
    tags: ["certificates"],
    auth: "adminOrMtls",
    params: S.SerialParams,
    body: S.RevokeBody,
    responses: { 200: { description: "revoked", schema: S.Revocation } },
    problems: [400, 401, 403, 404, 409, 413, 415, 429, 503],
    handle: async (ctx) => {
      if (ctx.caller.kind === "mtls" && ctx.caller.client.serial !== ctx.params.serial) {
        throw forbidden(`a client certificate may only revoke itself: you presented ${ctx.caller.client.serial}, not ${ctx.params.serial}`);
      }
      const revocation = await revokeCertificate(runtime, { serial: ctx.params.serial, reason: ctx.body?.reason, actor: ctx.caller.actor, sourceIp: ctx.sourceIp });
      return {
        status: 200,
        body: {
          serial: revocation.serial,
          status: "revoked",
          revokedAt: revocation.revokedAt.toISOString(),
          reason: REASON_NAMES[revocation.reason] ?? String(revocation.reason),
          successorsRevoked: revocation.successorsRevoked ?? [],
        },
      };
    },
  });

const list = (runtime: CaRuntime) =>
  defineRoute({
    method: "get",
    path: "/v1/certificates",
    operationId: "listCertificates",
    summary: "Search the inventory, soonest expiry first (or latest first with order=desc)",
    description: "Filters combine with AND. Pages are keyset-paginated on (notAfter, serial): pass nextCursor as cursor, with the same order; pages stay stable while certificates are issued.",
    tags: ["inventory"],
    auth: "admin",
    query: S.ListQuery,
    responses: { 200: { description: "one page", schema: S.CertificateList } },
    problems: [400, 401, 403, 404, 429, 503],
    handle: async (ctx) => {
      const q = ctx.query;
      const now = runtime.clock.now();
      const names = await provisionerNames(runtime);
      let provisionerId: string | undefined;
      if (q.provisioner !== undefined) {
        provisionerId = [...names].find(([, name]) => name === q.provisioner)?.[0];
        if (!provisionerId) throw new CaError("not_found", `no provisioner named '${q.provisioner}'`);
      }
      const page = await runtime.inventory.certificates
        .list(
          {
            status: q.status,
            issuerId: q.issuerId,
            profile: q.profile,
            q: q.q,
            serialPrefix: q.serial,
            expiresBefore: q.expiresBefore ? new Date(q.expiresBefore) : undefined,
            expiresAfter: q.expiresAfter ? new Date(q.expiresAfter) : undefined,
            limit: q.limit,
            cursor: q.cursor,
            provisionerId,
            acmeAccountId: q.acmeAccount,
            internal: q.internal === undefined ? undefined : { only: q.internal, marks: INTERNAL_CERTIFICATE_MARKS },
            order: q.order,
          },
          now,
        )
        .catch((error: Error) => {
          if (error instanceof RangeError) throw badRequest(`query cursor: ${error.message}`, error);
          throw inventoryFailure(error, "nothing was listed");
        });
      return { status: 200, body: { items: page.items.map((r) => summaryView(r, now, names)), nextCursor: page.nextCursor } };
    },
  });

const getOne = (runtime: CaRuntime) =>
  defineRoute({
    method: "get",
    path: "/v1/certificates/{serial}",
    operationId: "getCertificate",
    summary: "One certificate with status, revocation, subject, SANs, PEM, fingerprints and extensions",
    tags: ["inventory"],
    auth: "admin",
    params: S.SerialParams,
    responses: { 200: { description: "the certificate", schema: S.CertificateDetails } },
    problems: [400, 401, 403, 404, 429, 503],
    handle: async (ctx) => {
      const record = await runtime.inventory.certificates.get(ctx.params.serial);
      if (!record) throw new CaError("not_found", `no certificate with serial ${ctx.params.serial}`);
      const pem = record.der ? toPem(record.der) : null;
      const names = await provisionerNames(runtime);
      const view = record.der ? certificateView(record.der) : { fingerprints: null, keyUsage: [], extendedKeyUsage: [], extensions: [] };
      return { status: 200, body: { ...summaryView(record, runtime.clock.now(), names), certificate: pem, pem, chain: await chainOf(runtime, record.issuerId), ...view } };
    },
  });

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

const relyingParty = (runtime: CaRuntime) =>
  defineRoute({
    method: "get",
    path: "/v1/certificates/{serial}/relying-party",
    operationId: "getRelyingPartyView",
    summary: "What a relying party sees right now: the OCSP answer and the CRL, fetched from the URLs in the certificate",
    description:
      "An OCSP request POSTed to the certificate's OCSP URL and its CRL fetched from its distribution point, each answer's signature checked against the issuer. Only URLs under this CA's PKI_PUBLIC_URL are fetched; each fetch has 2 s and 1 MB (OCSP) or 64 MB (CRL) at most, and follows no redirect. A failure shows as status 'error' / error, not as an HTTP error.",
    tags: ["inventory"],
    auth: "admin",
    params: S.SerialParams,
    responses: { 200: { description: "both views", schema: S.RelyingPartyView } },
    problems: [400, 401, 403, 404, 409, 429, 503],
    handle: async (ctx) => {
      const record = await runtime.inventory.certificates.get(ctx.params.serial);
      if (!record) throw new CaError("not_found", `no certificate with serial ${ctx.params.serial}`);
      if (!record.der) throw new CaError("conflict", `certificate ${record.serial} is ${record.status}: there is no signed certificate to check`);
      const issuer = await runtime.inventory.issuers.get(record.issuerId);
      if (!issuer) throw new CaError("not_found", `the issuer ${record.issuerId} of certificate ${record.serial} is not in the inventory`);
      const view = await relyingPartyView({ certificateDer: record.der, serial: record.serial, issuerDer: issuer.certificateDer, publicUrl: runtime.config.publicUrl });
      const { ocsp, crl } = view;
      return {
        status: 200,
        body: {
          ocsp: {
            url: ocsp.url,
            status: ocsp.status,
            thisUpdate: iso(ocsp.thisUpdate),
            nextUpdate: iso(ocsp.nextUpdate),
            ...(ocsp.revokedAt ? { revokedAt: ocsp.revokedAt.toISOString() } : {}),
            ...(ocsp.reason ? { reason: ocsp.reason } : {}),
            ...(ocsp.error ? { error: ocsp.error } : {}),
          },
          crl: { url: crl.url, listed: crl.listed, number: crl.number, thisUpdate: iso(crl.thisUpdate), nextUpdate: iso(crl.nextUpdate), ...(crl.error ? { error: crl.error } : {}) },
        },
      };
    },
  });

export function certificateRoutes(runtime: CaRuntime): RouteDefinition[] {
  return [issue(runtime), renew(runtime), revoke(runtime), list(runtime), getOne(runtime), relyingParty(runtime)];
}
