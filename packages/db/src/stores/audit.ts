import { AsyncLocalStorage } from "node:async_hooks";
import { execute, query, type Queryable } from "../sql.ts";

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

/** LIKE 'text%' with the text's own wildcards escaped (PostgreSQL's LIKE escape character is the backslash): a prefix is plain text. */
const literalPrefix = (text: string) => `${text.replace(/[\\%_]/g, "\\$&")}%`;

function decodeAuditCursor(cursor: string): bigint {
  if (!/^[1-9][0-9]{0,18}$/.test(cursor)) throw new RangeError("is not one this API returned (pass nextCursor from the previous page as it is)");
  return BigInt(cursor);
}

/**
 * The start of the one statement that writes audit rows. A write that is a single
 * statement appends its audit rows in the same statement (a CTE) with this and a SELECT of
 * auditValues' six values; everything else calls AuditStore.record on its transaction.
 */
export const INSERT_AUDIT_EVENTS = "INSERT INTO audit_events (actor, action, target, source_ip, outcome, details)";

/** The bounded entry as INSERT_AUDIT_EVENTS' six values (details as JSON text). */
export function auditValues(unbounded: AuditEntry): [string, string, string | null, string | null, string, string | null] {
  const entry = boundAuditEntry(unbounded);
  return [entry.actor, entry.action, entry.target ?? null, entry.sourceIp ?? null, entry.outcome ?? "ok", entry.details ? JSON.stringify(entry.details) : null];
}

const RECORD_COLUMNS = `id, at, actor, action, target, source_ip AS "sourceIp", outcome, details`;

/** The audit trail: appended to by every write (on the write's own transaction), read by operators. */
export class AuditStore {
  /** `db`: the pool, or the client of the transaction whose change the event records. */
  constructor(private readonly db: Queryable) {}

  /** Appends one event. No RETURNING: roles that may only append to the trail cannot read it. */
  async record(entry: AuditEntry): Promise<void> {
    await execute(this.db, `${INSERT_AUDIT_EVENTS} VALUES ($1, $2, $3, $4, $5, $6)`, auditValues(entry));
  }

  /**
   * Newest first, keyset-paginated on id (ids only grow, so a page never repeats or skips
   * a row while events are written). actor and action are prefix matches, target exact.
   */
  async query(q: AuditQuery): Promise<{ items: AuditRecord[]; nextCursor: string | null }> {
    const limit = Math.min(Math.max(q.limit ?? 100, 1), 500);
    const where: string[] = [];
    const params: unknown[] = [];
    const param = (value: unknown) => `$${params.push(value)}`;
    if (q.actor) where.push(`actor LIKE ${param(literalPrefix(q.actor))}`);
    if (q.action) where.push(`action LIKE ${param(literalPrefix(q.action))}`);
    if (q.target) where.push(`target = ${param(q.target)}`);
    if (q.outcome) where.push(`outcome = ${param(q.outcome)}`);
    if (q.since) where.push(`at >= ${param(q.since)}`);
    if (q.until) where.push(`at < ${param(q.until)}`);
    if (q.cursor) where.push(`id < ${param(decodeAuditCursor(q.cursor).toString())}`);
    const rows = await query<AuditRecord>(
      this.db,
      `SELECT ${RECORD_COLUMNS} FROM audit_events ${where.length ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id DESC LIMIT ${param(limit + 1)}`,
      params,
    );
    const items = rows.slice(0, limit);
    return { items, nextCursor: rows.length > limit ? String(items[items.length - 1]!.id) : null };
  }

  async recent(limit = 50, target?: string): Promise<AuditRecord[]> {
    return !target
      ? query<AuditRecord>(this.db, `SELECT ${RECORD_COLUMNS} FROM audit_events ORDER BY id DESC LIMIT $1`, [limit])
      : query<AuditRecord>(this.db, `SELECT ${RECORD_COLUMNS} FROM audit_events WHERE target = $1 ORDER BY id DESC LIMIT $2`, [target, limit]);
  }
}
