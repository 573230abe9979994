export type ChallengeType = "http-01" | "dns-01" | "tls-alpn-01";

export interface ChallengeSettings {
  /** host:port of the DNS server for every lookup (A/AAAA, TXT, CAA); the system resolver when unset */
  resolver?: string;
  /** where http-01 validation connects (80 in production; another port for tests) */
  http01Port: number;
  /** where tls-alpn-01 validation connects (443 in production; another port for tests) */
  tlsAlpn01Port: number;
  /** bound on one whole validation: every lookup, connection, redirect and byte read */
  timeoutMs: number;
  /** bound on the body read from an http-01 target */
  maxResponseBytes: number;
  /** networks (CIDR) never connected to, besides ALWAYS_DENIED_NETWORKS */
  deniedNetworks?: readonly string[];
}

export interface Identifier {
  type: "dns" | "ip";
  value: string;
}

export interface ChallengeInput {
  type: ChallengeType;
  identifier: Identifier;
  token: string;
  keyAuthorization: string;
  /**
   * Whether an http-01 redirect may lead to this DNS name besides the identifier itself
   * (the ACME server answers with the provisioner's name policy); without it, only the
   * identifier's own name.
   */
  mayRedirectTo?: (host: string) => boolean;
}

/** RFC 8555 §6.7 error types the validators report. */
export type ProblemType = "connection" | "incorrectResponse" | "dns" | "unauthorized" | "tls" | "caa" | "malformed" | "serverInternal";

export interface Problem {
  type: string;
  detail: string;
}

export type ValidationResult = { ok: true } | { ok: false; problem: Problem };
