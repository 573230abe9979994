// The OpenAPI 3.1 document, generated from the route table and its zod schemas.
import { z } from "zod";
import type { AuthRequirement, RouteDefinition } from "./route.ts";
import { Problem } from "./schemas.ts";

const SECURITY: Record<AuthRequirement, Array<Record<string, string[]>>> = {
  none: [],
  admin: [{ adminToken: [] }, { consoleSession: [] }],
  enrol: [{ provisionerToken: [] }, { adminToken: [] }, { consoleSession: [] }],
  mtls: [{ mutualTLS: [] }],
  adminOrMtls: [{ adminToken: [] }, { consoleSession: [] }, { mutualTLS: [] }],
  optional: [{}, { adminToken: [] }, { consoleSession: [] }, { provisionerToken: [] }],
};

const PROBLEM_TEXT: Record<number, string> = {
  400: "malformed input; detail names the field or the problem with the CSR",
  401: "no or bad credentials",
  403: "not allowed by policy; detail names the refused name or profile",
  404: "unknown",
  409: "conflict, e.g. already revoked or a provisioner name in use",
  413: "request body too large",
  415: "unsupported content type",
  429: "too many failed authentications from this address; see Retry-After",
  503: "database or token unavailable",
};

function jsonSchema(schema: z.ZodType, io: "input" | "output"): Record<string, unknown> {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any", target: "draft-2020-12" }) as Record<string, unknown>;
  return rest;
}

/** Query or path parameters from a zod object's fields. */
function parameters(schema: z.ZodType | undefined, location: "query" | "path") {
  if (!schema) return [];
  const json = jsonSchema(schema, "input") as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, property]) => {
    const { description, ...rest } = property;
    return { name, in: location, required: location === "path" || (json.required ?? []).includes(name), ...(description ? { description } : {}), schema: rest };
  });
}

function requestBody(route: RouteDefinition) {
  if (!route.body) return undefined;
  const content: Record<string, unknown> = { "application/json": { schema: jsonSchema(route.body, "input") } };
  if (route.acceptsPkcs10) content["application/pkcs10"] = { schema: { type: "string", contentMediaType: "application/pkcs10", description: "DER PKCS#10 CSR" } };
  return { required: route.bodyRequired ?? false, content };
}

function operation(route: RouteDefinition) {
  const responses: Record<string, unknown> = {};
  for (const [status, spec] of Object.entries(route.responses)) {
    responses[status] = status === "204" ? { description: spec.description } : { description: spec.description, content: { "application/json": { schema: jsonSchema(spec.schema, "output") } } };
  }
  for (const status of route.problems) {
    responses[String(status)] = { description: PROBLEM_TEXT[status] ?? "error", content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } } };
  }
  const body = requestBody(route);
  const params = [...parameters(route.params, "path"), ...parameters(route.query, "query")];
  return {
    operationId: route.operationId,
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    tags: route.tags,
    security: SECURITY[route.auth],
    ...(params.length ? { parameters: params } : {}),
    ...(body ? { requestBody: body } : {}),
    responses,
  };
}

export function openApiDocument(routes: RouteDefinition[], version = "1.0.0"): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) (paths[route.path] ??= {})[route.method] = operation(route);
  paths["/openapi.json"] = {
    get: {
      operationId: "openApiDocument",
      summary: "This document",
      tags: ["meta"],
      security: [],
      responses: { 200: { description: "OpenAPI 3.1", content: { "application/json": { schema: { type: "object" } } } } },
    },
  };
  return {
    openapi: "3.1.0",
    info: {
      title: "PKI issuing API",
      version,
      description: "Private CA for mutual TLS: enrol with a provisioner token, renew over mTLS, revoke, search the inventory. Every error is RFC 9457 problem+json.",
    },
    tags: [{ name: "certificates" }, { name: "inventory" }, { name: "provisioners" }, { name: "issuers" }, { name: "console" }, { name: "audit" }, { name: "operations" }, { name: "meta" }],
    paths,
    components: {
      schemas: { Problem: jsonSchema(Problem, "output") },
      securitySchemes: {
        adminToken: { type: "http", scheme: "bearer", description: "operator token ($PKI_DATA_DIR/admin.token or PKI_BOOTSTRAP_ADMIN_TOKEN)" },
        provisionerToken: { type: "http", scheme: "bearer", description: "made by POST /v1/provisioners, shown once" },
        consoleSession: {
          type: "apiKey",
          in: "cookie",
          name: "pki_session",
          description: "from POST /v1/console/session; every method other than GET/HEAD also needs the session's csrfToken as X-CSRF-Token",
        },
        mutualTLS: { type: "mutualTLS", description: "a certificate issued by this CA, unexpired and not revoked, presented in the TLS handshake" },
      },
    },
  };
}
