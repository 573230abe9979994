import type { Problem, ProblemType, ValidationResult } from "./types.ts";

const MAX_DETAIL_CHARS = 400;
const MAX_QUOTED_BYTES = 100;

export const OK: ValidationResult = { ok: true };

/** A failed validation; the detail is cut so a hostile target cannot make the CA store a novel. */
export function fail(type: ProblemType, detail: string): { ok: false; problem: Problem } {
  const bounded = detail.length > MAX_DETAIL_CHARS ? `${detail.slice(0, MAX_DETAIL_CHARS - 1)}…` : detail;
  return { ok: false, problem: { type: `urn:ietf:params:acme:error:${type}`, detail: bounded } };
}

/** At most ~100 bytes of something a target sent, printable and quoted, for a problem detail. */
export function quote(bytes: Buffer | string): string {
  const buffer = typeof bytes === "string" ? Buffer.from(bytes, "utf8") : bytes;
  const head = buffer.subarray(0, MAX_QUOTED_BYTES).toString("utf8");
  // JSON escapes C0 controls, quotes and backslashes; C1 controls and line separators are escaped too.
  const printable = JSON.stringify(head).replace(/[\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return printable + (buffer.length > MAX_QUOTED_BYTES ? "…" : "");
}

/** The short name of what went wrong with a socket or lookup (ECONNREFUSED, ETIMEOUT, ...), never a stack. */
export function errorName(error: unknown): string {
  if (error && typeof error === "object") {
    if ((error as Error).name === "DeadlineExceeded") return (error as Error).message;
    const code = (error as { code?: unknown }).code;
    const message = (error as { message?: unknown }).message;
    if (typeof code === "string" && code) return code;
    if (typeof message === "string" && message) return message.slice(0, 120);
  }
  return String(error).slice(0, 120);
}
