import { z } from "zod";
import { CaError, toPem } from "@pki/x509";
import { REASON_NAMES, StartupCheckError, activateIntermediate, presentedIssuerStatus, rotateIntermediate, type CaRuntime } from "@pki/authority";
import { defineRoute, type RouteDefinition } from "../route.ts";
import type { CrlStateRecord, IssuerRecord, OcspResponderRecord } from "@pki/db";
import * as S from "../schemas.ts";
import { issuerRevocationRoutes } from "./issuer-revocation.ts";
import { LIVE_COUNTS_MAX_AGE_MS, LiveCounts, blastRadius, type LiveCountsFigure } from "../live-counts.ts";

/** What the console shows of an issuer besides its certificate: its revocation, blast radius and revocation services. */
export interface IssuerFacts {
  /** for operators only: its blast radius and when it was counted */
  live: { certificates: number; countedAt: Date } | undefined;
  crl: CrlStateRecord["full"] | undefined;
  responder: OcspResponderRecord | undefined;
  now: Date;
}

/**
 * Latest CRL and current OCSP responder of every issuer (one query plus one per
 * intermediate), and with `live` (a counted figure, never counted here) each one's blast radius.
 */
export async function issuerFacts(runtime: CaRuntime, issuers: IssuerRecord[], live?: LiveCountsFigure): Promise<(i: IssuerRecord) => IssuerFacts> {
  const now = runtime.clock.now();
  const radius = live ? blastRadius(issuers, live.byIssuer) : undefined;
  const crls = new Map((await runtime.inventory.crls.states()).map((state) => [state.issuerId, state.full]));
  const responders = new Map<string, OcspResponderRecord | undefined>();
  for (const issuer of issuers) if (issuer.role === "intermediate") responders.set(issuer.id, await runtime.inventory.ocspResponders.current(issuer.id, now));
  return (i) => ({
    live: live && radius ? { certificates: radius.get(i.id) ?? 0, countedAt: live.countedAt } : undefined,
    crl: crls.get(i.id) ?? undefined,
    responder: responders.get(i.id),
    now,
  });
}

/** An issuer as the API shows it (S.Issuer): a revoked one says so, whatever its lifecycle status. */
export const issuerBody = (i: IssuerRecord, facts: IssuerFacts) => ({
  id: i.id,
  hierarchy: i.hierarchy,
  role: i.role,
  status: presentedIssuerStatus(i),
  parentId: i.parentId,
  subject: i.subject,
  serial: i.serial,
  notBefore: i.notBefore.toISOString(),
  notAfter: i.notAfter.toISOString(),
  keyAlgorithm: i.keyAlgorithm,
  certificate: toPem(i.certificateDer),
  revokedAt: i.revokedAt ? i.revokedAt.toISOString() : null,
  revocationReason: i.revocationReason === null ? null : (REASON_NAMES[i.revocationReason] ?? String(i.revocationReason)),
  ...(facts.live ? { liveCertificates: facts.live.certificates, liveCertificatesCountedAt: facts.live.countedAt.toISOString() } : {}),
  crl: facts.crl
    ? {
        number: String(facts.crl.number),
        thisUpdate: facts.crl.thisUpdate.toISOString(),
        nextUpdate: facts.crl.nextUpdate.toISOString(),
        ageSeconds: Math.max(0, Math.floor((facts.now.getTime() - facts.crl.thisUpdate.getTime()) / 1000)),
      }
    : null,
  ocsp: facts.responder ? { responderSerial: facts.responder.id, responderNotAfter: facts.responder.notAfter.toISOString() } : null,
});

export function issuerRoutes(runtime: CaRuntime): RouteDefinition[] {
  const liveCounts = new LiveCounts(runtime);
  return [
    defineRoute({
      method: "get",
      path: "/v1/issuers",
      operationId: "listIssuers",
      summary: "Every root and intermediate of every hierarchy, with its certificate",
      description: `Open to anyone. An operator (admin token or console session) also gets each issuer's blast radius, liveCertificates, counted at most every ${LIVE_COUNTS_MAX_AGE_MS / 1000} s per API process (liveCertificatesCountedAt says when). A credential that is sent must be valid (401 otherwise).`,
      tags: ["issuers"],
      auth: "optional",
      responses: { 200: { description: "issuers", schema: S.Issuer.array() } },
      problems: [401, 429, 503],
      handle: async (ctx) => {
        const issuers = await runtime.inventory.issuers.list();
        const live = ctx.caller.kind === "admin" ? await liveCounts.get() : undefined;
        const facts = await issuerFacts(runtime, issuers, live);
        return {
          status: 200,
          body: issuers.map((i) => issuerBody(i, facts(i))),
        };
      },
    }),
    // Rotation: the same ceremony as `pki issuers rotate`. The root token's PIN must
    // be available to this process (PKI_ROOT_PIN / PKI_ROOT_PIN_FILE); without it the answer
    // is 503 and the operator uses the CLI where the PIN is.
    defineRoute({
      method: "post",
      path: "/v1/issuers/rotate",
      operationId: "rotateIntermediate",
      summary: "Stage a new intermediate signed by the root and activate it now or at activateAt; the previous one retires",
      tags: ["issuers"],
      auth: "admin",
      body: z
        .object({
          hierarchy: z
            .string()
            .regex(/^[a-z][a-z0-9-]{0,31}$/)
            .optional(),
          activateAt: z.iso.datetime({ offset: true }).optional(),
        })
        .strict(),
      responses: {
        201: {
          description: "the new intermediate (active, or staged with its activation time) and the ones it retired",
          schema: z.object({ issuer: S.Issuer, activateAt: z.string().nullable(), retired: z.array(z.string()) }),
        },
      },
      problems: [400, 401, 404, 409, 503],
      handle: async (ctx) => {
        const body = (ctx.body ?? {}) as { hierarchy?: string; activateAt?: string };
        let report;
        try {
          report = await rotateIntermediate(runtime.config, runtime.inventory, runtime.clock, {
            hierarchy: body.hierarchy,
            activateAt: body.activateAt ? new Date(body.activateAt) : undefined,
            actor: ctx.caller.actor,
          });
        } catch (error) {
          if (error instanceof StartupCheckError) throw new CaError("unavailable", `${error.message}; rotate with \`pki issuers rotate\` where the root PIN is available`);
          throw error;
        }
        // This process switches at once; others within PKI_KEYRING_RELOAD_SECONDS.
        if (report.activation) await runtime.keyring.reload();
        liveCounts.invalidate();
        const facts = await issuerFacts(runtime, [report.staged]);
        return {
          status: 201,
          body: {
            issuer: issuerBody(report.staged, facts(report.staged)),
            activateAt: report.activateAt?.toISOString() ?? null,
            retired: report.activation?.retired.map((r) => r.id) ?? [],
          },
        };
      },
    }),
    defineRoute({
      method: "post",
      path: "/v1/issuers/{id}/activate",
      operationId: "activateIssuer",
      summary: "Activate a staged intermediate now; the active one of its hierarchy retires",
      tags: ["issuers"],
      auth: "admin",
      params: S.IssuerParams,
      responses: { 200: { description: "activated", schema: S.IssuerActivation } },
      problems: [400, 401, 403, 404, 409, 429, 503],
      handle: async (ctx) => {
        const issuer = await runtime.inventory.issuers.get(ctx.params.id);
        if (!issuer) throw new CaError("not_found", `no issuer ${ctx.params.id}`);
        if (issuer.status !== "staged" || issuer.revokedAt) throw new CaError("conflict", `${issuer.id} is ${presentedIssuerStatus(issuer)}; only a staged intermediate can be activated`);
        const { activated, retired } = await activateIntermediate(runtime.config, runtime.inventory, issuer.id, runtime.clock.now(), ctx.caller.actor);
        await runtime.keyring.reload();
        liveCounts.invalidate();
        return { status: 200, body: { activated: activated.id, retired: retired.map((r) => r.id) } };
      },
    }),
    ...issuerRevocationRoutes(runtime, liveCounts),
  ];
}
