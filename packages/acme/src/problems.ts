// RFC 8555 §6.7 problem documents. Every refusal the ACME front end gives is one of these,
// sent as application/problem+json with a fresh Replay-Nonce.
export const ACME_ERROR = "urn:ietf:params:acme:error:";

export type AcmeErrorType =
  | "accountDoesNotExist"
  | "alreadyReplaced"
  | "alreadyRevoked"
  | "badCSR"
  | "badNonce"
  | "badPublicKey"
  | "badRevocationReason"
  | "badSignatureAlgorithm"
  | "caa"
  | "conflict"
  | "connection"
  | "dns"
  | "externalAccountRequired"
  | "incorrectResponse"
  | "invalidContact"
  | "invalidProfile"
  | "malformed"
  | "orderNotReady"
  | "rateLimited"
  | "rejectedIdentifier"
  | "serverInternal"
  | "tls"
  | "unauthorized"
  | "unsupportedContact"
  | "unsupportedIdentifier"
  | "userActionRequired";

export interface Subproblem {
  type: string;
  detail: string;
  identifier: { type: string; value: string };
}

const DEFAULT_STATUS: Partial<Record<AcmeErrorType, number>> = {
  accountDoesNotExist: 400,
  alreadyReplaced: 409,
  conflict: 409,
  externalAccountRequired: 403,
  orderNotReady: 403,
  rateLimited: 429,
  serverInternal: 500,
  unauthorized: 403,
};

export class AcmeProblem extends Error {
  readonly status: number;
  constructor(
    readonly type: AcmeErrorType,
    detail: string,
    options: { status?: number; subproblems?: Subproblem[]; retryAfterSeconds?: number; location?: string; extra?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = options.status ?? DEFAULT_STATUS[type] ?? 400;
    this.subproblems = options.subproblems;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.location = options.location;
    this.extra = options.extra;
  }
  readonly subproblems: Subproblem[] | undefined;
  readonly retryAfterSeconds: number | undefined;
  readonly location: string | undefined;
  readonly extra: Record<string, unknown> | undefined;

  toJSON() {
    return { type: ACME_ERROR + this.type, detail: this.message, status: this.status, ...(this.subproblems?.length ? { subproblems: this.subproblems } : {}), ...this.extra };
  }
}

export const malformed = (detail: string, cause?: unknown) => new AcmeProblem("malformed", detail, { cause });
export const unauthorized = (detail: string) => new AcmeProblem("unauthorized", detail);
