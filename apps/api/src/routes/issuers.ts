import { z } from "zod";
import { CaError, StartupCheckError, presentedIssuerStatus, rotateIntermediate, toPem, type CaRuntime } from "@pki/ca-core";
import { defineRoute, type RouteDefinition } from "../route.ts";
import type { IssuerRecord } from "@pki/db";
import * as S from "../schemas.ts";

/** An issuer as the API shows it (S.Issuer): a revoked one says so, whatever its lifecycle status. */
const issuerBody = (i: IssuerRecord) => ({
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
});

export function issuerRoutes(runtime: CaRuntime): RouteDefinition[] {
  return [
    defineRoute({
      method: "get",
      path: "/v1/issuers",
      operationId: "listIssuers",
      summary: "Every root and intermediate of every hierarchy, with its certificate",
      tags: ["issuers"],
      auth: "none",
      responses: { 200: { description: "issuers", schema: S.Issuer.array() } },
      problems: [503],
      handle: async () => {
        const issuers = await runtime.inventory.issuers.list();
        return {
          status: 200,
          body: issuers.map(issuerBody),
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
        return {
          status: 201,
          body: {
            issuer: issuerBody(report.staged),
            activateAt: report.activateAt?.toISOString() ?? null,
            retired: report.activation?.retired.map((r) => r.id) ?? [],
          },
        };
      },
    }),
  ];
}
