// Emergency revocation of an intermediate from the API: the same ceremony as
// `pki issuers revoke` (a replacement takes over first, the root CRL lists the revocation),
// a dry run that says what it would do, and the re-issue of the affected certificates in
// the background with progress the console polls.
import { CaError } from "@pki/x509";
import { StartupCheckError, isInternalCertificate, reissueCertificates, revokeIntermediate, type CaRuntime } from "@pki/authority";
import type { CertificateRecord } from "@pki/db";
import { defineRoute, type RouteDefinition } from "../route.ts";
import * as S from "../schemas.ts";

interface ReissueProgress {
  total: number;
  reissued: number;
  failed: { serial: string; error: string }[];
  done: boolean;
}

/** Re-issues remembered; the oldest finished one is forgotten first. */
const MAX_TRACKED = 64;

/**
 * Re-issues running or finished in this process, by issuer id. Progress is held in memory
 * on the replica that took the revoke request; the certificates themselves (and their
 * successor links) are in the inventory, so a re-run of the revoke lists what is left.
 */
export class ReissueTracker {
  private readonly runs = new Map<string, ReissueProgress>();

  get(issuerId: string): ReissueProgress | undefined {
    return this.runs.get(issuerId);
  }

  running(issuerId: string): boolean {
    return this.runs.get(issuerId)?.done === false;
  }

  /** Starts re-issuing `records` (several at a time, see reissueCertificates); returns at once. */
  start(runtime: CaRuntime, issuerId: string, records: CertificateRecord[], actor: string, onError: (error: unknown) => void): ReissueProgress {
    const progress: ReissueProgress = { total: records.length, reissued: 0, failed: [], done: records.length === 0 };
    this.runs.delete(issuerId);
    if (this.runs.size >= MAX_TRACKED) {
      for (const [id, run] of this.runs) {
        if (this.runs.size < MAX_TRACKED) break;
        if (run.done) this.runs.delete(id);
      }
    }
    this.runs.set(issuerId, progress);
    // `failed` lists at most REISSUE_FAILURES_KEPT; once done, total - reissued counts them all.
    void reissueCertificates(runtime, records, actor, {
      onProgress: (result) => {
        progress.reissued = result.reissued.length;
        progress.failed = result.failed;
      },
    })
      .catch(onError)
      .finally(() => {
        progress.done = true;
      });
    return progress;
  }
}

/** Services' certificates under the issuer still to be re-issued: valid, unexpired, without a successor. */
async function stillToReissue(runtime: CaRuntime, issuerId: string): Promise<CertificateRecord[]> {
  const chained = await runtime.inventory.certificateScans.chainedTo(issuerId, runtime.clock.now());
  return chained.filter((record) => !isInternalCertificate(record) && !record.successorSerial);
}

export function issuerRevocationRoutes(runtime: CaRuntime, reissues: ReissueTracker): RouteDefinition[] {
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
          let replacement: string | null = null;
          if (issuer.status === "active" && !issuer.revokedAt) {
            const staged = (await runtime.inventory.issuerLifecycle.staged(issuer.hierarchy)).find((s) => s.notAfter > runtime.clock.now());
            replacement = staged ? `staged ${staged.id}` : "new intermediate";
          }
          return { status: 200, body: { issuerId: issuer.id, replacement, affected: (await stillToReissue(runtime, issuer.id)).length } };
        }
        if (body.reissue && reissues.running(issuer.id)) throw new CaError("conflict", `certificates of ${issuer.id} are being re-issued right now; see GET /v1/issuers/${issuer.id}/reissue`);
        let report: Awaited<ReturnType<typeof revokeIntermediate>>;
        try {
          report = await revokeIntermediate(runtime.config, runtime.inventory, runtime.clock, { issuerId: issuer.id, reason: body.reason, actor: ctx.caller.actor });
        } catch (error) {
          if (error instanceof StartupCheckError) throw new CaError("unavailable", `${error.message}; revoke with \`pki issuers revoke\` where the root PIN is available`, { cause: error });
          throw error;
        }
        // This process signs with the replacement at once; others within PKI_KEYRING_RELOAD_SECONDS.
        await runtime.keyring.reload();
        if (body.reissue) {
          reissues.start(runtime, issuer.id, report.affected, ctx.caller.actor, (error) => {
            ctx.req.log?.error?.({ err: error }, "re-issue stopped");
          });
        }
        return { status: 202, body: { revoked: report.revoked.id, replacement: report.replacement?.id ?? null, affected: report.affected.length } };
      },
    }),
    defineRoute({
      method: "get",
      path: "/v1/issuers/{id}/reissue",
      operationId: "getIssuerReissue",
      summary: "Progress of the re-issue started by revoking this intermediate (on this API process)",
      tags: ["issuers"],
      auth: "admin",
      params: S.IssuerParams,
      responses: { 200: { description: "progress", schema: S.ReissueProgress } },
      problems: [400, 401, 403, 404, 429],
      handle: async (ctx) => {
        const progress = reissues.get(ctx.params.id);
        if (!progress) throw new CaError("not_found", `no re-issue of ${ctx.params.id}'s certificates has run on this API process`);
        return { status: 200, body: { total: progress.total, reissued: progress.reissued, failed: progress.failed, done: progress.done } };
      },
    }),
  ];
}
