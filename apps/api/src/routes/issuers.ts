import { toPem, type CaRuntime } from "@pki/ca-core";
import { defineRoute, type RouteDefinition } from "../route.ts";
import * as S from "../schemas.ts";

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
          body: issuers.map((i) => ({
            id: i.id,
            hierarchy: i.hierarchy,
            role: i.role,
            status: i.status,
            parentId: i.parentId,
            subject: i.subject,
            serial: i.serial,
            notBefore: i.notBefore.toISOString(),
            notAfter: i.notAfter.toISOString(),
            keyAlgorithm: i.keyAlgorithm,
            certificate: toPem(i.certificateDer),
          })),
        };
      },
    }),
  ];
}
