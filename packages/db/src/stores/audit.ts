import { AsyncLocalStorage } from "node:async_hooks";
import type { PrismaClient } from "../generated/prisma/client.ts";
import type { Prisma } from "../generated/prisma/client.ts";

export interface AuditEntry {
  /** who: "admin", "provisioner:<name>", "mtls:<serial>", "cli:<user>" */
  actor: string;
  /** what: "issuer.create", "certificate.issue", "certificate.revoke", … */
  action: string;
  target?: string;
  sourceIp?: string;
  outcome?: "ok" | "denied" | "error";
  details?: Record<string, unknown>;
}

export interface AuditRecord extends Required<Pick<AuditEntry, "actor" | "action" | "outcome">> {
  id: bigint;
  at: Date;
  target: string | null;
  sourceIp: string | null;
  details: unknown;
}

/** Longest text kept from any one string of an audit row; the rest is replaced by a note. */
export const AUDIT_TEXT_MAX_BYTES = 256;
const AUDIT_LIST_MAX_ITEMS = 32;
/** Largest details document kept whole; a larger one is kept as its (cut) JSON text. */
const AUDIT_DETAILS_MAX_BYTES = 4096;
const AUDIT_MAX_DEPTH = 4;

/** At most AUDIT_TEXT_MAX_BYTES of UTF-8, cut on a character boundary, saying how much was cut. */
export function boundAuditText(text: string): string {
  const bytes = Buffer.byteLength(text);
  if (bytes <= AUDIT_TEXT_MAX_BYTES) return text;
  const note = ` …(${bytes} bytes, truncated)`;
  let kept = Buffer.from(text)
    .subarray(0, AUDIT_TEXT_MAX_BYTES - Buffer.byteLength(note))
    .toString("utf8");
  if (kept.endsWith("\uFFFD")) kept = kept.slice(0, -1); // a character cut in half
  return kept + note;
}

function boundValue(value: unknown, depth: number): unknown {
  if (typeof value === "string") return boundAuditText(value);
  if (value === null || typeof value !== "object") return value;
  if (depth >= AUDIT_MAX_DEPTH) return "…(nested too deep)";
  const bound = (v: unknown) => boundValue(v, depth + 1);
  if (Array.isArray(value)) {
    const kept = value.slice(0, AUDIT_LIST_MAX_ITEMS).map(bound);
    return value.length > AUDIT_LIST_MAX_ITEMS ? [...kept, `…(${value.length - AUDIT_LIST_MAX_ITEMS} more)`] : kept;
  }
  const entries = Object.entries(value);
  const kept = entries.slice(0, AUDIT_LIST_MAX_ITEMS).map(([k, v]) => [boundAuditText(k), bound(v)]);
  if (entries.length > AUDIT_LIST_MAX_ITEMS) kept.push(["…", `${entries.length - AUDIT_LIST_MAX_ITEMS} more fields`]);
  return Object.fromEntries(kept);
}

function boundDetails(details: Record<string, unknown>): Record<string, unknown> {
  const bounded = boundValue(details, 0) as Record<string, unknown>;
  const json = JSON.stringify(bounded);
  return Buffer.byteLength(json) <= AUDIT_DETAILS_MAX_BYTES ? bounded : { truncated: boundAuditText(json) };
}

/**
 * The source address of the request being handled. Many audit events are written deep in
 * the core (an issuer activated, a responder staged) by code that never sees the request;
 * the API runs each request inside this, so every row its handling writes names where it
 * came from without each layer passing the address down.
 */
const requestSource = new AsyncLocalStorage<string>();

/** Runs `work` with `sourceIp` as the source of the audit events it writes (unless they name one). */
export function withAuditSource<T>(sourceIp: string, work: () => T): T {
  return requestSource.run(sourceIp, work);
}

/**
 * Audit rows often carry what a caller sent (a refused serial, the reason naming a bad
 * field or name): every string is cut to AUDIT_TEXT_MAX_BYTES, every list to a few dozen
 * items and the details to AUDIT_DETAILS_MAX_BYTES, so no request can make a row larger
 * than about 5 KB. Every writer of audit_events goes through this.
 */
export function boundAuditEntry(given: AuditEntry): AuditEntry {
  const sourceIp = given.sourceIp ?? requestSource.getStore();
  const entry = sourceIp === undefined ? given : { ...given, sourceIp };
  return {
    ...entry,
    actor: boundAuditText(entry.actor),
    action: boundAuditText(entry.action),
    ...(entry.target !== undefined ? { target: boundAuditText(entry.target) } : {}),
    ...(entry.sourceIp !== undefined ? { sourceIp: boundAuditText(entry.sourceIp) } : {}),
    ...(entry.details !== undefined ? { details: boundDetails(entry.details) } : {}),
  };
}

export interface AuditQuery {
  /** prefix of the actor ("admin:" = every operator, "admin:alice" = alice) */
  actor?: string;
  /** prefix of the action ("issuer." = every issuer action) */
  action?: string;
  /** exact target (a serial, an issuer id, a name) */
  target?: string;
  outcome?: AuditRecord["outcome"];
  since?: Date;
  until?: Date;
  /** 1 to 500, default 100 */
  limit?: number;
  /** opaque, from a previous page's nextCursor */
  cursor?: string;
}

/**
 * Prisma's startsWith becomes LIKE 'text%' without escaping the text's own wildcards:
 * escape them (PostgreSQL's LIKE escape character is the backslash) so a prefix is plain text.
 */
const literalPrefix = (text: string) => text.replace(/[\\%_]/g, "\\$&");

function decodeAuditCursor(cursor: string): bigint {
  if (!/^[1-9][0-9]{0,18}$/.test(cursor)) throw new RangeError("is not one this API returned (pass nextCursor from the previous page as it is)");
  return BigInt(cursor);
}

export class AuditStore {
  constructor(private readonly prisma: Pick<PrismaClient, "auditEvent">) {}

  /**
   * Appends one event. createMany, not create: create reads the row back (RETURNING), which
   * would need SELECT on the audit trail from roles that may only append to it.
   */
  async record(unbounded: AuditEntry): Promise<void> {
    const entry = boundAuditEntry(unbounded);
    await this.prisma.auditEvent.createMany({
      data: {
        actor: entry.actor,
        action: entry.action,
        target: entry.target ?? null,
        sourceIp: entry.sourceIp ?? null,
        outcome: entry.outcome ?? "ok",
        ...(entry.details ? { details: entry.details as Prisma.InputJsonValue } : {}),
      },
    });
  }

  /**
   * Newest first, keyset-paginated on id (ids only grow, so a page never repeats or skips
   * a row while events are written). actor and action are prefix matches, target exact.
   */
  async query(q: AuditQuery): Promise<{ items: AuditRecord[]; nextCursor: string | null }> {
    const limit = Math.min(Math.max(q.limit ?? 100, 1), 500);
    const where: Prisma.AuditEventWhereInput[] = [];
    if (q.actor) where.push({ actor: { startsWith: literalPrefix(q.actor) } });
    if (q.action) where.push({ action: { startsWith: literalPrefix(q.action) } });
    if (q.target) where.push({ target: q.target });
    if (q.outcome) where.push({ outcome: q.outcome });
    if (q.since) where.push({ at: { gte: q.since } });
    if (q.until) where.push({ at: { lt: q.until } });
    if (q.cursor) where.push({ id: { lt: decodeAuditCursor(q.cursor) } });
    const rows = await this.prisma.auditEvent.findMany({ where: { AND: where }, orderBy: { id: "desc" }, take: limit + 1 });
    const items = rows.slice(0, limit).map((r) => ({ ...r, outcome: r.outcome as AuditRecord["outcome"] }));
    return { items, nextCursor: rows.length > limit ? String(items[items.length - 1]!.id) : null };
  }

  async recent(limit = 50, target?: string): Promise<AuditRecord[]> {
    const rows = await this.prisma.auditEvent.findMany({ where: target ? { target } : {}, orderBy: { id: "desc" }, take: limit });
    return rows.map((r) => ({ ...r, outcome: r.outcome as AuditRecord["outcome"] }));
  }
}
