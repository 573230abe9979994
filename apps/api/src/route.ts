// One table of routes drives both the express router and the OpenAPI document, so the
// document cannot describe a route, parameter or body the code does not have.
import type { Request, Response } from "express";
import type { z } from "zod";
import { CaError } from "@pki/x509";
import type { Caller } from "./auth.ts";

/**
 * Who may call a route. `enrol` = provisioner or admin token; `adminOrMtls` = either;
 * `optional` = anyone, but a credential that is sent must be valid (counted like any other
 * failure), so the route can show an operator more than an anonymous caller.
 */
export type AuthRequirement = "none" | "admin" | "enrol" | "mtls" | "adminOrMtls" | "optional";

export interface ResponseSpec {
  description: string;
  schema: z.ZodType;
}

export interface RouteContext<P, Q, B> {
  req: Request;
  res: Response;
  params: P;
  query: Q;
  body: B;
  caller: Caller;
  sourceIp: string;
  /**
   * For routes that check a credential themselves (console login): counts the failure
   * against the source and returns what to throw (the 401 given, or 429 past the limit).
   */
  authFailure(error: CaError): Promise<Error>;
  /**
   * For routes that check a secret credential themselves: runs `verify` (throwing CaError
   * "unauthorized" for a wrong one) paced and counted as the API's own authentication is
   * (CredentialGate.check).
   */
  checkCredential<T>(secret: string, verify: () => Promise<T>): Promise<T>;
  /**
   * Names what the request is about once the handler knows it (the names a CSR asks for),
   * for the audit event of a refusal; without it the serial, ID or name in the path is used.
   */
  noteAuditTarget(target: string): void;
}

export interface RouteResult {
  status: number;
  /** undefined with 204 */
  body: unknown;
}

export interface RouteDefinition<P = unknown, Q = unknown, B = unknown> {
  method: "get" | "post" | "patch" | "delete";
  /** OpenAPI form: /v1/certificates/{serial} */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  auth: AuthRequirement;
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  /** JSON body schema */
  body?: z.ZodType<B>;
  bodyRequired?: boolean;
  /** also accepts the CSR as raw DER, `application/pkcs10` (JSON fields then come from the query) */
  acceptsPkcs10?: boolean;
  responses: Record<number, ResponseSpec>;
  /** statuses answered with problem+json */
  problems: number[];
  handle(ctx: RouteContext<P, Q, B>): Promise<RouteResult>;
}

/** Keeps the parameter types of each route while collecting them into one table. */
export const defineRoute = <P, Q, B>(route: RouteDefinition<P, Q, B>): RouteDefinition => route as unknown as RouteDefinition;

export const expressPath = (openApiPath: string) => openApiPath.replace(/\{(\w+)\}/g, ":$1");

/** The first problem zod found, as one sentence naming the field: "ttlSeconds: must be …". */
export function validationProblem(where: string, error: z.ZodError): CaError {
  const issue = error.issues[0]!;
  const field = issue.path.length ? issue.path.join(".") : where;
  let message = issue.message;
  if (issue.code === "unrecognized_keys") message = `unknown field${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `'${k}'`).join(", ")}`;
  return new CaError("bad_request", `${where === "body" ? "" : `${where} `}${field === where ? "" : `${field}: `}${message}`.trim());
}

export function parseOrThrow<T>(schema: z.ZodType<T> | undefined, value: unknown, where: string): T {
  if (!schema) return undefined as T;
  const result = schema.safeParse(value);
  if (!result.success) throw validationProblem(where, result.error);
  const nul = pathToNul(result.data);
  if (nul) throw new CaError("bad_request", `${where === "body" ? "" : `${where} `}${nul.length ? `${nul.join(".")}: ` : ""}contains a NUL character, which no field accepts`.trim());
  return result.data;
}

/**
 * Where in a parsed value a string holds U+0000, or undefined. PostgreSQL text cannot hold
 * it, so such input would otherwise fail deep in the database instead of here.
 */
function pathToNul(value: unknown, path: string[] = []): string[] | undefined {
  if (typeof value === "string") return value.includes("\0") ? path : undefined;
  if (value === null || typeof value !== "object") return undefined;
  for (const [key, item] of Object.entries(value)) {
    const found = key.includes("\0") ? [...path, JSON.stringify(key)] : pathToNul(item, [...path, key]);
    if (found) return found;
  }
  return undefined;
}
