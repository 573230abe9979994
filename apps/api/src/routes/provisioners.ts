import type { Request } from "express";
import { CaError } from "@pki/x509";
import type { CaRuntime } from "@pki/authority";
import { createEabKey } from "@pki/acme";
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

/** An ACME provisioner's directory on this listener, as the operator reached it. */
const acmeDirectoryUrl = (req: Request, name: string) => `https://${req.headers.host}/acme/${encodeURIComponent(name)}/directory`;

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
        if (ctx.body.type === "acme") return { status: 201, body: { ...provisionerView(record), acmeDirectory: acmeDirectoryUrl(ctx.req, record.name) } };
        return { status: 201, body: { ...provisionerView(record), token } };
      },
    }),
    defineRoute({
      method: "get",
      path: "/v1/provisioners",
      operationId: "listProvisioners",
      summary: "Every live provisioner, or with all=true removed ones too (never their tokens); ACME ones with their directory URL and EAB settings",
      tags: ["provisioners"],
      auth: "admin",
      query: S.ProvisionerListQuery,
      responses: { 200: { description: "provisioners by name", schema: S.ProvisionerListed.array() } },
      problems: [400, 401, 403, 429, 503],
      handle: async (ctx) => {
        const acme = await runtime.inventory.acme.acmeProvisionerSettings();
        const listed = await runtime.inventory.provisioners.list({ includeRemoved: ctx.query?.all ?? false });
        return {
          status: 200,
          body: listed.map((p) => {
            const settings = acme.get(p.id);
            if (!settings) return { ...provisionerView(p), type: "token" };
            return { ...provisionerView(p), type: "acme", acmeDirectory: acmeDirectoryUrl(ctx.req, p.name), eabRequired: settings.eabRequired, unusedEabKeys: settings.unusedEabKeys };
          }),
        };
      },
    }),
    defineRoute({
      method: "post",
      path: "/v1/provisioners/{name}/eab-keys",
      operationId: "createEabKey",
      summary: "A new external account binding key for an ACME provisioner (pki provisioner eab NAME); the HMAC key is in this answer and nowhere else",
      description: "The key is bound to the first ACME account that uses it. 400 for a provisioner that does not speak ACME.",
      tags: ["provisioners"],
      auth: "admin",
      params: S.NameParams,
      responses: { 201: { description: "created; shown once (Cache-Control: no-store)", schema: S.EabKeyCreated } },
      problems: [400, 401, 403, 404, 429, 503],
      handle: async (ctx) => {
        const { kid, hmacKey } = await createEabKey(runtime.inventory, ctx.params.name, { actor: ctx.caller.actor, sourceIp: ctx.sourceIp });
        ctx.res.setHeader("cache-control", "no-store");
        return { status: 201, body: { provisioner: ctx.params.name, kid, hmacKey, acmeDirectory: acmeDirectoryUrl(ctx.req, ctx.params.name) } };
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
