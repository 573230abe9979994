import { CaError } from "@pki/x509";
import type { CaRuntime } from "@pki/authority";
import type { ProvisionerRecord } from "@pki/db";
import { createProvisioner, updateProvisioner } from "@pki/policy";
import { defineRoute, type RouteDefinition } from "../route.ts";
import * as S from "../schemas.ts";

export function provisionerView(p: ProvisionerRecord) {
  return {
    id: p.id,
    name: p.name,
    profiles: p.profiles,
    names: p.names,
    maxTtlSeconds: p.maxTtlSeconds,
    hierarchy: p.hierarchy,
    disabled: p.disabled,
    createdAt: p.createdAt.toISOString(),
    ...(p.deletedAt ? { removedAt: p.deletedAt.toISOString() } : {}),
  };
}

export function provisionerRoutes(runtime: CaRuntime): RouteDefinition[] {
  return [
    defineRoute({
      method: "post",
      path: "/v1/provisioners",
      operationId: "createProvisioner",
      summary: "Create a provisioner; its token is in this answer and nowhere else",
      tags: ["provisioners"],
      auth: "admin",
      body: S.ProvisionerBody,
      bodyRequired: true,
      responses: { 201: { description: "created", schema: S.ProvisionerCreated } },
      problems: [400, 401, 403, 409, 413, 415, 429, 503],
      handle: async (ctx) => {
        const { record, token } = await createProvisioner(runtime, ctx.body, { actor: ctx.caller.actor, sourceIp: ctx.sourceIp });
        if (ctx.body.type === "acme") return { status: 201, body: { ...provisionerView(record), acmeDirectory: `https://${ctx.req.headers.host}/acme/${record.name}/directory` } };
        return { status: 201, body: { ...provisionerView(record), token } };
      },
    }),
    defineRoute({
      method: "get",
      path: "/v1/provisioners",
      operationId: "listProvisioners",
      summary: "Every live provisioner, or with all=true removed ones too (never their tokens)",
      tags: ["provisioners"],
      auth: "admin",
      query: S.ProvisionerListQuery,
      responses: { 200: { description: "provisioners by name", schema: S.ProvisionerListed.array() } },
      problems: [400, 401, 403, 429, 503],
      handle: async (ctx) => {
        const acme = await runtime.inventory.acme.acmeProvisionerIds();
        const listed = await runtime.inventory.provisioners.list({ includeRemoved: ctx.query?.all ?? false });
        return { status: 200, body: listed.map((p) => ({ ...provisionerView(p), type: acme.has(p.id) ? "acme" : "token" })) };
      },
    }),
    defineRoute({
      method: "patch",
      path: "/v1/provisioners/{name}",
      operationId: "updateProvisioner",
      summary: "Change a provisioner: disable or re-enable it (at once), or its profiles, name patterns or maximum lifetime (from the next enrolment or renewal)",
      tags: ["provisioners"],
      auth: "admin",
      params: S.NameParams,
      body: S.ProvisionerPatch,
      bodyRequired: true,
      responses: { 200: { description: "updated", schema: S.Provisioner } },
      problems: [400, 401, 403, 404, 413, 415, 429, 503],
      handle: async (ctx) => {
        const record = await updateProvisioner(runtime, ctx.params.name, ctx.body, { actor: ctx.caller.actor, sourceIp: ctx.sourceIp });
        return { status: 200, body: provisionerView(record) };
      },
    }),
    defineRoute({
      method: "delete",
      path: "/v1/provisioners/{name}",
      operationId: "removeProvisioner",
      summary: "Remove a provisioner; its token stops working at once and its certificates can no longer renew",
      tags: ["provisioners"],
      auth: "admin",
      params: S.NameParams,
      responses: { 200: { description: "removed", schema: S.Provisioner } },
      problems: [400, 401, 403, 404, 429, 503],
      handle: async (ctx) => {
        const record = await runtime.inventory.provisioners.remove(ctx.params.name, runtime.clock.now(), { actor: ctx.caller.actor, action: "provisioner.remove", sourceIp: ctx.sourceIp });
        if (!record) throw new CaError("not_found", `no provisioner named '${ctx.params.name}'`);
        return { status: 200, body: provisionerView(record) };
      },
    }),
  ];
}
