// Emergency revocation of an intermediate from the API: the same ceremony as
// `pki issuers revoke` (a replacement takes over first, the root CRL lists the revocation),
// a dry run that says what it would do, and the re-issue of the affected certificates in
// the background. The re-issue is recorded in the inventory (RecordedReissue): any API
// worker or replica reports its progress, which the console polls, and only one process
// at a time re-issues an issuer's certificates.
import { CaError } from "@pki/x509";
import { RecordedReissue, StartupCheckError, isInternalCertificate, reissueStatus, revokeIntermediate, type CaRuntime } from "@pki/authority";
import type { CertificateRecord, IssuerRecord } from "@pki/db";
import type { LiveCounts } from "../live-counts.ts";
import { defineRoute, type RouteDefinition } from "../route.ts";
import * as S from "../schemas.ts";

/** Services' certificates under the issuer still to be re-issued: valid, unexpired, without a successor. */
async function stillToReissue(runtime: CaRuntime, issuerId: string): Promise<CertificateRecord[]> {
  const chained = await runtime.inventory.certificateScans.chainedTo(issuerId, runtime.clock.now());
  return chained.filter((record) => !isInternalCertificate(record) && !record.successorSerial);
}

/**
 * The intermediate that signs the hierarchy's new certificates (and the re-issues) once a
 * non-active one is revoked: the active one, which is already in place.
 */
async function activeOtherThan(runtime: CaRuntime, issuer: IssuerRecord): Promise<IssuerRecord | undefined> {
  const active = await runtime.inventory.issuers.active(issuer.hierarchy, "intermediate");
  return active && active.id !== issuer.id ? active : undefined;
}

export function issuerRevocationRoutes(runtime: CaRuntime, liveCounts: LiveCounts): RouteDefinition[] {
  return [
    defineRoute({
      method: "post",
      path: "/v1/issuers/{id}/revoke",
      operationId: "revokeIssuer",
      summary: "Emergency: revoke an intermediate; a replacement takes over; optionally re-issue its certificates in the background",
      description:
        "With dryRun nothing changes: the answer (200) says which replacement would take over and how many certificates are affected. Otherwise (202) the intermediate is revoked on its root's record (needs the root PIN in this process, else 503: use `pki issuers revoke`), and with reissue every affected certificate is re-issued from the replacement in the background: poll GET /v1/issuers/{id}/reissue. Revoking again lists what still needs re-issuing.",
      tags: ["issuers"],
      auth: "admin",
      params: S.IssuerParams,
      body: S.IssuerRevokeBody,
      responses: {
        200: { description: "dry run: what would happen", schema: S.IssuerRevokePlan },
        202: { description: "revoked; the re-issue (if asked for) runs in the background", schema: S.IssuerRevoked },
      },
      problems: [400, 401, 403, 404, 409, 413, 415, 429, 503],
      handle: async (ctx) => {
        const body = ctx.body ?? {};
        const issuer = await runtime.inventory.issuers.get(ctx.params.id);
        if (!issuer) throw new CaError("not_found", `no issuer ${ctx.params.id}`);
        if (issuer.role !== "intermediate") throw new CaError("bad_request", `${issuer.id} is a root; roots are not revoked, they are removed from trust stores`);
        if (body.dryRun) {
          let replacement: string | null;
          if (issuer.status === "active" && !issuer.revokedAt) {
            const staged = (await runtime.inventory.issuerLifecycle.staged(issuer.hierarchy)).find((s) => s.notAfter > runtime.clock.now());
            replacement = staged ? `staged ${staged.id}` : "new intermediate";
          } else {
            const active = await activeOtherThan(runtime, issuer);
            replacement = active ? `active ${active.id}` : null;
          }
          return { status: 200, body: { issuerId: issuer.id, replacement, affected: (await stillToReissue(runtime, issuer.id)).length } };
        }
        const logError = (error: unknown) => ctx.req.log?.error?.({ err: error, issuerId: issuer.id }, "re-issue");
        // Claimed before the revocation, so the run covers exactly what the revocation lists
        // and a concurrent revoke with reissue (on any process) gets its 409 before it acts.
        const reissue = body.reissue ? await RecordedReissue.claim(runtime.inventory, runtime.clock, issuer.id, ctx.caller.actor, logError) : undefined;
        if (body.reissue && !reissue) throw new CaError("conflict", `certificates of ${issuer.id} are being re-issued right now; see GET /v1/issuers/${issuer.id}/reissue`);
        let report: Awaited<ReturnType<typeof revokeIntermediate>>;
        try {
          report = await revokeIntermediate(runtime.config, runtime.inventory, runtime.clock, { issuerId: issuer.id, reason: body.reason, actor: ctx.caller.actor });
          // This process signs with the replacement at once; others within PKI_KEYRING_RELOAD_SECONDS.
          await runtime.keyring.reload();
        } catch (error) {
          await reissue?.finishEarly(`not started: ${(error as Error).message}`).catch(logError);
          if (error instanceof StartupCheckError) throw new CaError("unavailable", `${error.message}; revoke with \`pki issuers revoke\` where the root PIN is available`, { cause: error });
          throw error;
        }
        liveCounts.invalidate();
        void reissue
          ?.run(runtime, report.affected)
          .catch(logError)
          .finally(() => liveCounts.invalidate());
        const replacement = report.replacement ?? (await activeOtherThan(runtime, report.revoked));
        return { status: 202, body: { revoked: report.revoked.id, replacement: replacement?.id ?? null, affected: report.affected.length } };
      },
    }),
    defineRoute({
      method: "get",
      path: "/v1/issuers/{id}/reissue",
      operationId: "getIssuerReissue",
      summary: "Progress of the latest re-issue started by revoking this intermediate, from any API process",
      description:
        "Read from the inventory, so any worker or replica answers. `stalled` means the process running it stopped reporting (it died): revoking again with reissue takes the run over and re-issues what is left.",
      tags: ["issuers"],
      auth: "admin",
      params: S.IssuerParams,
      responses: { 200: { description: "progress", schema: S.ReissueProgress } },
      problems: [400, 401, 403, 404, 429],
      handle: async (ctx) => {
        const run = await runtime.inventory.reissueRuns.get(ctx.params.id);
        if (!run) throw new CaError("not_found", `no re-issue of ${ctx.params.id}'s certificates has been started`);
        const status = reissueStatus(run, runtime.clock.now());
        return {
          status: 200,
          body: {
            ...status,
            startedAt: status.startedAt.toISOString(),
            updatedAt: status.updatedAt.toISOString(),
            finishedAt: status.finishedAt ? status.finishedAt.toISOString() : null,
          },
        };
      },
    }),
  ];
}
