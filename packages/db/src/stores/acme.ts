import { randomBytes, randomUUID } from "node:crypto";
import type pg from "pg";
import { AuditStore, type AuditEntry } from "./audit.ts";
import { execute, query, queryOne } from "../sql.ts";
import { inTransaction } from "../transaction.ts";
import type { ProvisionerRecord } from "./provisioners.ts";
import { CHANGE_CHANNELS } from "../notify.ts";

export type AcmeAccountStatus = "valid" | "deactivated" | "revoked";
export type AcmeOrderStatus = "pending" | "ready" | "processing" | "valid" | "invalid";
export type AcmeAuthorizationStatus = "pending" | "valid" | "invalid" | "deactivated" | "expired" | "revoked";
export type AcmeChallengeStatus = "pending" | "processing" | "valid" | "invalid";

export interface AcmeIdentifier {
  type: "dns" | "ip";
  value: string;
}

export interface AcmeProblemRecord {
  type: string;
  detail: string;
  status?: number;
}

export interface AcmeAccountRecord {
  id: string;
  provisionerId: string;
  keyThumbprint: string;
  jwk: Record<string, unknown>;
  status: AcmeAccountStatus;
  contact: string[];
  createdAt: Date;
}

export interface AcmeOrderRecord {
  id: string;
  accountId: string;
  provisionerId: string;
  status: AcmeOrderStatus;
  identifiers: AcmeIdentifier[];
  profile: string;
  replacesSerial: string | null;
  certificateSerial: string | null;
  error: AcmeProblemRecord | null;
  expiresAt: Date;
  createdAt: Date;
  /** its authorizations' ids, in the order they are listed (by identifier) */
  authorizationIds: string[];
}

export interface AcmeChallengeRecord {
  id: string;
  authorizationId: string;
  accountId: string;
  provisionerId: string;
  type: string;
  token: string;
  status: AcmeChallengeStatus;
  error: AcmeProblemRecord | null;
  validatedAt: Date | null;
}

export interface AcmeAuthorizationRecord {
  id: string;
  orderId: string;
  accountId: string;
  identifier: AcmeIdentifier;
  wildcard: boolean;
  status: AcmeAuthorizationStatus;
  expiresAt: Date;
  challenges: AcmeChallengeRecord[];
}

export interface NewAcmeAuthorization {
  identifier: AcmeIdentifier;
  wildcard: boolean;
  challenges: Array<{ type: string; token: string }>;
}

export class AcmeAccountKeyInUseError extends Error {
  constructor() {
    super("another account on this provisioner already uses that key");
  }
}

export class AcmeEabKeyUnusableError extends Error {}

/** The new-account limits were reached, for the source network or for the provisioner (the counts say which). */
export class AcmeAccountLimitError extends Error {
  constructor(readonly counts: { source: { count: number; oldest: Date | null }; provisioner: { count: number; oldest: Date | null } }) {
    super("the new-account limits were reached");
  }
}

interface AccountCountRow {
  sourceCount: bigint;
  sourceOldest: Date | null;
  provisionerCount: bigint;
  provisionerOldest: Date | null;
}

/** A provisioner that speaks ACME, with its ACME settings. */
export type AcmeProvisionerRecord = ProvisionerRecord & { eabRequired: boolean };

/** A challenge a validator claimed, with what validating it takes. */
export interface AcmeValidationClaim {
  challengeId: string;
  accountId: string;
  provisionerId: string;
  type: string;
  token: string;
  /** as stored: a wildcard's base domain */
  identifier: AcmeIdentifier;
  wildcard: boolean;
  keyThumbprint: string;
  /** the provisioner's name patterns */
  namePatterns: string[];
}

/** How many of something happened in a window, for an account and for its whole provisioner. */
export interface AcmeWindowCounts {
  account: { count: number; oldest: Date | null };
  provisioner: { count: number; oldest: Date | null };
}

const accountColumns = `id, provisioner_id AS "provisionerId", key_thumbprint AS "keyThumbprint", jwk, status, COALESCE(contact, '{}') AS contact, created_at AS "createdAt"`;
const orderColumns = `id, account_id AS "accountId", provisioner_id AS "provisionerId", status, identifiers, profile, replaces_serial AS "replacesSerial",
  certificate_serial AS "certificateSerial", error, expires_at AS "expiresAt", created_at AS "createdAt"`;
// The order view lists its authorizations: read with the order rather than in a second round trip.
const orderWithAuthorizationsColumns = `${orderColumns},
  ARRAY(SELECT z.id FROM acme_authorizations z WHERE z.order_id = acme_orders.id ORDER BY z.identifier_value) AS "authorizationIds"`;
const challengeColumns = `id, authorization_id AS "authorizationId", account_id AS "accountId", provisioner_id AS "provisionerId", type, token, status, error, validated_at AS "validatedAt"`;

/** An authorization joined with one of its challenges (challenge columns prefixed c_). */
interface AuthorizationChallengeRow {
  id: string;
  orderId: string;
  accountId: string;
  identifierType: "dns" | "ip";
  identifierValue: string;
  wildcard: boolean;
  status: AcmeAuthorizationStatus;
  expiresAt: Date;
  c_id: string | null;
  c_provisionerId: string;
  c_type: string;
  c_token: string;
  c_status: AcmeChallengeStatus;
  c_error: AcmeProblemRecord | null;
  c_validatedAt: Date | null;
}

const authorizationChallengeColumns = `a.id, a.order_id AS "orderId", a.account_id AS "accountId", a.identifier_type AS "identifierType",
  a.identifier_value AS "identifierValue", a.wildcard, a.status, a.expires_at AS "expiresAt",
  c.id AS c_id, c.provisioner_id AS "c_provisionerId", c.type AS c_type, c.token AS c_token, c.status AS c_status, c.error AS c_error, c.validated_at AS "c_validatedAt"`;

/** Folds authorization × challenge rows (ordered by authorization) into authorizations with their challenges. */
function authorizationsFromRows(rows: AuthorizationChallengeRow[]): AcmeAuthorizationRecord[] {
  const byId = new Map<string, AcmeAuthorizationRecord>();
  for (const row of rows) {
    let authz = byId.get(row.id);
    if (!authz) {
      authz = {
        id: row.id,
        orderId: row.orderId,
        accountId: row.accountId,
        identifier: { type: row.identifierType, value: row.identifierValue },
        wildcard: row.wildcard,
        status: row.status,
        expiresAt: row.expiresAt,
        challenges: [],
      };
      byId.set(row.id, authz);
    }
    if (row.c_id !== null) {
      authz.challenges.push({
        id: row.c_id,
        authorizationId: row.id,
        accountId: row.accountId,
        provisionerId: row.c_provisionerId,
        type: row.c_type,
        token: row.c_token,
        status: row.c_status,
        error: row.c_error,
        validatedAt: row.c_validatedAt,
      });
    }
  }
  return [...byId.values()];
}

/**
 * ACME state: which provisioners speak ACME, EAB keys, accounts, orders with their
 * authorizations and challenges, and the shared nonce set. Status changes are conditional
 * updates (WHERE status = the expected one) so two replicas working on the same order
 * cannot both move it.
 */
export class AcmeStore {
  constructor(private readonly pool: pg.Pool) {}

  // ── provisioners and EAB ──────────────────────────────────────────────

  async enableProvisioner(provisionerId: string, eabRequired: boolean): Promise<void> {
    await execute(this.pool, `INSERT INTO acme_provisioners (provisioner_id, eab_required) VALUES ($1, $2) ON CONFLICT (provisioner_id) DO UPDATE SET eab_required = $2`, [provisionerId, eabRequired]);
  }

  /**
   * The provisioner of that name with its ACME settings, in one query (every ACME request
   * starts here); undefined when there is none or it does not speak ACME.
   */
  async acmeProvisionerByName(name: string): Promise<AcmeProvisionerRecord | undefined> {
    return queryOne<AcmeProvisionerRecord>(
      this.pool,
      `SELECT p.id, p.name, p.profiles, p.names, p.max_ttl_seconds AS "maxTtlSeconds", p.hierarchy, p.disabled, p.created_at AS "createdAt", p.deleted_at AS "deletedAt",
              a.eab_required AS "eabRequired"
       FROM provisioners p JOIN acme_provisioners a ON a.provisioner_id = p.id WHERE p.name = $1`,
      [name],
    );
  }

  /** The provisioner's ACME settings; undefined when it does not speak ACME. */
  async provisionerSettings(provisionerId: string): Promise<{ eabRequired: boolean } | undefined> {
    return queryOne<{ eabRequired: boolean }>(this.pool, `SELECT eab_required AS "eabRequired" FROM acme_provisioners WHERE provisioner_id = $1`, [provisionerId]);
  }

  async acmeProvisionerIds(): Promise<Set<string>> {
    const rows = await query<{ id: string }>(this.pool, `SELECT provisioner_id AS id FROM acme_provisioners`);
    return new Set(rows.map((r) => r.id));
  }

  /** Every ACME provisioner's settings and how many of its EAB keys no account has used yet, by provisioner ID. */
  async acmeProvisionerSettings(): Promise<Map<string, { eabRequired: boolean; unusedEabKeys: number }>> {
    const rows = await query<{ id: string; eabRequired: boolean; unused: bigint }>(
      this.pool,
      `SELECT a.provisioner_id AS id, a.eab_required AS "eabRequired", count(k.kid) FILTER (WHERE k.account_id IS NULL) AS unused
       FROM acme_provisioners a LEFT JOIN acme_eab_keys k ON k.provisioner_id = a.provisioner_id GROUP BY 1, 2`,
    );
    return new Map(rows.map((r) => [r.id, { eabRequired: r.eabRequired, unusedEabKeys: Number(r.unused) }]));
  }

  /** Stores a new EAB key with its audit event. */
  async createEabKey(provisionerId: string, kid: string, hmacKey: Buffer, audit: AuditEntry): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      await execute(client, `INSERT INTO acme_eab_keys (kid, provisioner_id, hmac_key) VALUES ($1, $2, $3)`, [kid, provisionerId, hmacKey]);
      await new AuditStore(client).record({ ...audit, target: `eab:${kid}` });
    });
  }

  /** An EAB key not yet bound to an account. */
  async unboundEabKey(provisionerId: string, kid: string): Promise<Buffer | undefined> {
    const rows = await query<{ hmacKey: Buffer }>(this.pool, `SELECT hmac_key AS "hmacKey" FROM acme_eab_keys WHERE kid = $1 AND provisioner_id = $2 AND account_id IS NULL`, [kid, provisionerId]);
    return rows[0]?.hmacKey;
  }

  // ── nonces ─────────────────────────────────────────────────────────────

  /** The key that authenticates nonces, shared by every replica: the first process to ask makes it. */
  async nonceKey(): Promise<Buffer> {
    // The CTE's insert is invisible to the same statement's SELECT: one of the two branches has the key.
    const rows = await query<{ key: Buffer }>(
      this.pool,
      `WITH made AS (INSERT INTO acme_nonce_keys (id, key) VALUES (1, $1) ON CONFLICT (id) DO NOTHING RETURNING key)
       SELECT key FROM made UNION ALL SELECT key FROM acme_nonce_keys WHERE id = 1`,
      [randomBytes(32)],
    );
    return (rows[0] as { key: Buffer }).key;
  }

  /** Records that a signed request used the nonce up; false when one already had (a replay). */
  async spendNonce(value: string, expiresAt: Date): Promise<boolean> {
    return (await execute(this.pool, `INSERT INTO acme_spent_nonces (value, expires_at) VALUES ($1, $2) ON CONFLICT (value) DO NOTHING`, [value, expiresAt])) === 1;
  }

  /** spendNonce and the account a request names, in one round trip. */
  async spendNonceReadAccount(value: string, expiresAt: Date, accountId: string): Promise<{ fresh: boolean; account: AcmeAccountRecord | undefined }> {
    const rows = await query<AcmeAccountRecord & { fresh: boolean }>(
      this.pool,
      `WITH spent AS (INSERT INTO acme_spent_nonces (value, expires_at) VALUES ($1, $2) ON CONFLICT (value) DO NOTHING RETURNING 1)
       SELECT EXISTS (SELECT 1 FROM spent) AS fresh, a.id, a.provisioner_id AS "provisionerId", a.key_thumbprint AS "keyThumbprint", a.jwk, a.status,
              COALESCE(a.contact, '{}') AS contact, a.created_at AS "createdAt"
       FROM (SELECT 1) AS one LEFT JOIN acme_accounts a ON a.id = $3`,
      [value, expiresAt, accountId],
    );
    const { fresh, ...account } = rows[0] as AcmeAccountRecord & { fresh: boolean };
    return { fresh, account: account.id === null ? undefined : account };
  }

  /** Forgets used nonces that have expired (an expired nonce is refused before it is looked up). */
  async sweepSpentNonces(now: Date): Promise<number> {
    return execute(this.pool, `DELETE FROM acme_spent_nonces WHERE expires_at <= $1`, [now]);
  }

  // ── accounts ───────────────────────────────────────────────────────────

  /**
   * Creates the account (binding the EAB key in the same transaction when there is one),
   * unless the accounts created from its source network (on every provisioner) or on its
   * provisioner since `limits.since` have reached their limits: then AcmeAccountLimitError,
   * whose counts say which.
   */
  async createAccount(
    input: { provisionerId: string; keyThumbprint: string; jwk: Record<string, unknown>; contact: string[]; eabKid?: string | undefined; createdFrom: string; now: Date },
    limits: { since: Date; perSource: number; perProvisioner: number },
    audit: AuditEntry,
  ): Promise<AcmeAccountRecord> {
    const id = randomUUID();
    return inTransaction(this.pool, async (client) => {
      const [inserted] = await query<Partial<AcmeAccountRecord> & AccountCountRow>(
        client,
        `WITH counts AS (
           SELECT (SELECT count(*) FROM acme_accounts WHERE created_from = $6 AND created_at > $7) AS "sourceCount",
                  (SELECT min(created_at) FROM acme_accounts WHERE created_from = $6 AND created_at > $7) AS "sourceOldest",
                  (SELECT count(*) FROM acme_accounts WHERE provisioner_id = $2 AND created_at > $7) AS "provisionerCount",
                  (SELECT min(created_at) FROM acme_accounts WHERE provisioner_id = $2 AND created_at > $7) AS "provisionerOldest"),
         created AS (
           INSERT INTO acme_accounts (id, provisioner_id, key_thumbprint, jwk, status, contact, created_from, created_at)
           SELECT $1, $2, $3, $4, 'valid', $5, $6, $10 FROM counts WHERE counts."sourceCount" < $8 AND counts."provisionerCount" < $9
           ON CONFLICT (provisioner_id, key_thumbprint) DO NOTHING RETURNING ${accountColumns})
         SELECT counts.*, created.* FROM counts LEFT JOIN created ON true`,
        [id, input.provisionerId, input.keyThumbprint, JSON.stringify(input.jwk), input.contact, input.createdFrom, limits.since, limits.perSource, limits.perProvisioner, input.now],
      );
      const { sourceCount, sourceOldest, provisionerCount, provisionerOldest, ...account } = inserted!;
      if (!account.id) {
        const counts = { source: { count: Number(sourceCount), oldest: sourceOldest }, provisioner: { count: Number(provisionerCount), oldest: provisionerOldest } };
        if (counts.source.count >= limits.perSource || counts.provisioner.count >= limits.perProvisioner) throw new AcmeAccountLimitError(counts);
        throw new AcmeAccountKeyInUseError();
      }
      if (input.eabKid !== undefined) {
        const bound = await execute(client, `UPDATE acme_eab_keys SET account_id = $1, bound_at = $2 WHERE kid = $3 AND provisioner_id = $4 AND account_id IS NULL`, [
          id,
          input.now,
          input.eabKid,
          input.provisionerId,
        ]);
        if (bound !== 1) throw new AcmeEabKeyUnusableError(`external account key '${input.eabKid}' is unknown or already bound to an account`);
      }
      await new AuditStore(client).record({ ...audit, target: `acme-account:${id}`, outcome: "ok", details: { ...audit.details, eabKid: input.eabKid ?? null } });
      return account as AcmeAccountRecord;
    });
  }

  async accountByThumbprint(provisionerId: string, keyThumbprint: string): Promise<AcmeAccountRecord | undefined> {
    return queryOne<AcmeAccountRecord>(this.pool, `SELECT ${accountColumns} FROM acme_accounts WHERE provisioner_id = $1 AND key_thumbprint = $2`, [provisionerId, keyThumbprint]);
  }

  async account(id: string): Promise<AcmeAccountRecord | undefined> {
    return queryOne<AcmeAccountRecord>(this.pool, `SELECT ${accountColumns} FROM acme_accounts WHERE id = $1`, [id]);
  }

  async updateAccount(id: string, changes: { contact?: string[] | undefined; status?: AcmeAccountStatus | undefined }, audit: AuditEntry): Promise<AcmeAccountRecord | undefined> {
    const account = await queryOne<AcmeAccountRecord>(
      this.pool,
      `UPDATE acme_accounts SET contact = COALESCE($2, contact), status = COALESCE($3, status) WHERE id = $1 AND status = 'valid' RETURNING ${accountColumns}`,
      [id, changes.contact ?? null, changes.status ?? null],
    );
    if (account) await new AuditStore(this.pool).record({ ...audit, target: `acme-account:${id}`, details: { ...audit.details, ...changes } });
    return account;
  }

  /** Replaces the account key; false when another account of the provisioner holds the new key. */
  async changeAccountKey(id: string, jwk: Record<string, unknown>, keyThumbprint: string, audit: AuditEntry): Promise<boolean> {
    try {
      const changed = (await execute(this.pool, `UPDATE acme_accounts SET jwk = $2, key_thumbprint = $3 WHERE id = $1 AND status = 'valid'`, [id, JSON.stringify(jwk), keyThumbprint])) === 1;
      if (changed) await new AuditStore(this.pool).record({ ...audit, target: `acme-account:${id}`, details: { ...audit.details, keyThumbprint } });
      return changed;
    } catch (error) {
      if ((error as { code?: string }).code === "23505") return false;
      throw error;
    }
  }

  // ── orders ─────────────────────────────────────────────────────────────

  /**
   * Creates the order with its authorizations and challenges in one statement (so one
   * implicit transaction and one round trip), unless the account or its provisioner already
   * has `limits` orders created after `limits.since`: then nothing is written, order is
   * undefined, and the counts say which limit was reached.
   */
  async createOrder(
    order: { accountId: string; provisionerId: string; identifiers: AcmeIdentifier[]; profile: string; replacesSerial?: string | undefined; expiresAt: Date },
    authorizations: NewAcmeAuthorization[],
    limits: { since: Date; perAccount: number; perProvisioner: number },
  ): Promise<{ order: AcmeOrderRecord | undefined; counts: AcmeWindowCounts }> {
    const authz = { ids: [] as string[], types: [] as string[], values: [] as string[], wildcards: [] as boolean[] };
    const challenge = { ids: [] as string[], authorizationIds: [] as string[], types: [] as string[], tokens: [] as string[] };
    for (const a of authorizations) {
      const authzId = randomUUID();
      authz.ids.push(authzId);
      authz.types.push(a.identifier.type);
      authz.values.push(a.identifier.value);
      authz.wildcards.push(a.wildcard);
      for (const c of a.challenges) {
        challenge.ids.push(randomUUID());
        challenge.authorizationIds.push(authzId);
        challenge.types.push(c.type);
        challenge.tokens.push(c.token);
      }
    }
    const rows = await query<AcmeOrderRecord & WindowCountRow>(
      this.pool,
      `WITH counts AS (${windowCountQuery("acme_orders", "created_at", "$3", "$2", "$16")}),
       o AS (
         INSERT INTO acme_orders (id, account_id, provisioner_id, status, identifiers, profile, replaces_serial, expires_at)
         SELECT $1, $2, $3, 'pending', $4, $5, $6, $7 FROM counts WHERE counts."accountCount" < $17 AND counts."provisionerCount" < $18
         RETURNING ${orderColumns}),
       az AS (
         INSERT INTO acme_authorizations (id, order_id, account_id, identifier_type, identifier_value, wildcard, status, expires_at)
         SELECT t.id, $1, $2, t.type, t.value, t.wildcard, 'pending', $7 FROM unnest($8::text[], $9::text[], $10::text[], $11::boolean[]) AS t(id, type, value, wildcard)
         WHERE EXISTS (SELECT 1 FROM o)
         RETURNING id, identifier_value),
       ch AS (
         INSERT INTO acme_challenges (id, authorization_id, account_id, provisioner_id, type, token, status)
         SELECT t.id, t.authz, $2, $3, t.type, t.token, 'pending' FROM unnest($12::text[], $13::text[], $14::text[], $15::text[]) AS t(id, authz, type, token)
         WHERE EXISTS (SELECT 1 FROM o))
       SELECT counts.*, o.*, ARRAY(SELECT az.id FROM az ORDER BY az.identifier_value) AS "authorizationIds" FROM counts LEFT JOIN o ON true`,
      [
        randomUUID(),
        order.accountId,
        order.provisionerId,
        JSON.stringify(order.identifiers),
        order.profile,
        order.replacesSerial ?? null,
        order.expiresAt,
        authz.ids,
        authz.types,
        authz.values,
        authz.wildcards,
        challenge.ids,
        challenge.authorizationIds,
        challenge.types,
        challenge.tokens,
        limits.since,
        limits.perAccount,
        limits.perProvisioner,
      ],
    );
    const { accountCount, accountOldest, provisionerCount, provisionerOldest, ...created } = rows[0] as AcmeOrderRecord & WindowCountRow;
    const counts = windowCounts({ accountCount, accountOldest, provisionerCount, provisionerOldest });
    return { order: created.id ? created : undefined, counts };
  }

  async order(id: string): Promise<AcmeOrderRecord | undefined> {
    return queryOne<AcmeOrderRecord>(this.pool, `SELECT ${orderWithAuthorizationsColumns} FROM acme_orders WHERE id = $1`, [id]);
  }

  /**
   * The certificate an order was finalized with, for its download: the ordering account and
   * the stored certificate in one query (der and issuerId are null if the inventory has no row).
   */
  async orderCertificate(serial: string): Promise<{ accountId: string; der: Buffer | null; issuerId: string | null } | undefined> {
    return queryOne<{ accountId: string; der: Buffer | null; issuerId: string | null }>(
      this.pool,
      `SELECT o.account_id AS "accountId", c.der, c.issuer_id AS "issuerId" FROM acme_orders o LEFT JOIN certificates c ON c.serial = o.certificate_serial WHERE o.certificate_serial = $1`,
      [serial],
    );
  }

  /**
   * ready → processing for a finalize, reading the order in the same statement; undefined
   * when the account has no such order, or it is not ready, or it has expired.
   */
  async startFinalizing(id: string, accountId: string, now: Date): Promise<AcmeOrderRecord | undefined> {
    return queryOne<AcmeOrderRecord>(
      this.pool,
      `UPDATE acme_orders SET status = 'processing' WHERE id = $1 AND account_id = $2 AND status = 'ready' AND expires_at > $3 RETURNING ${orderWithAuthorizationsColumns}`,
      [id, accountId, now],
    );
  }

  /** The account's order ids, newest first, one page at a time. */
  async orderIds(accountId: string, limit: number, before?: Date): Promise<Array<{ id: string; createdAt: Date }>> {
    return query<{ id: string; createdAt: Date }>(
      this.pool,
      `SELECT id, created_at AS "createdAt" FROM acme_orders WHERE account_id = $1 AND ($2::timestamptz IS NULL OR created_at < $2) ORDER BY created_at DESC, id DESC LIMIT $3`,
      [accountId, before ?? null, limit],
    );
  }

  /** Moves an order from one status to another; false when it was not in `from` any more. */
  async setOrderStatus(id: string, from: AcmeOrderStatus, to: AcmeOrderStatus, extra: { error?: AcmeProblemRecord; certificateSerial?: string } = {}): Promise<boolean> {
    const moved = await execute(this.pool, `UPDATE acme_orders SET status = $3, error = COALESCE($4, error), certificate_serial = COALESCE($5, certificate_serial) WHERE id = $1 AND status = $2`, [
      id,
      from,
      to,
      extra.error ? JSON.stringify(extra.error) : null,
      extra.certificateSerial ?? null,
    ]);
    return moved === 1;
  }

  /** A serial named by `replaces` in another live order of any account. */
  async replacementPending(serial: string): Promise<boolean> {
    return (await queryOne(this.pool, `SELECT 1 FROM acme_orders WHERE replaces_serial = $1 AND status <> 'invalid' LIMIT 1`, [serial])) !== undefined;
  }

  // ── authorizations and challenges ───────────────────────────────────────

  async authorizationsOfOrder(orderId: string): Promise<AcmeAuthorizationRecord[]> {
    const rows = await query<AuthorizationChallengeRow>(
      this.pool,
      `SELECT ${authorizationChallengeColumns} FROM acme_authorizations a LEFT JOIN acme_challenges c ON c.authorization_id = a.id
       WHERE a.order_id = $1 ORDER BY a.identifier_value, a.id, c.type`,
      [orderId],
    );
    return authorizationsFromRows(rows);
  }

  /** The authorization with its challenges, in one query. */
  async authorization(id: string): Promise<AcmeAuthorizationRecord | undefined> {
    const rows = await query<AuthorizationChallengeRow>(
      this.pool,
      `SELECT ${authorizationChallengeColumns} FROM acme_authorizations a LEFT JOIN acme_challenges c ON c.authorization_id = a.id WHERE a.id = $1 ORDER BY c.type`,
      [id],
    );
    return authorizationsFromRows(rows)[0];
  }

  /** The authorization a challenge belongs to, with all its challenges, in one query. */
  async authorizationOfChallenge(challengeId: string): Promise<AcmeAuthorizationRecord | undefined> {
    const rows = await query<AuthorizationChallengeRow>(
      this.pool,
      `SELECT ${authorizationChallengeColumns} FROM acme_authorizations a LEFT JOIN acme_challenges c ON c.authorization_id = a.id
       WHERE a.id = (SELECT authorization_id FROM acme_challenges WHERE id = $1) ORDER BY c.type`,
      [challengeId],
    );
    return authorizationsFromRows(rows)[0];
  }

  async challenge(id: string): Promise<AcmeChallengeRecord | undefined> {
    return queryOne<AcmeChallengeRecord>(this.pool, `SELECT ${challengeColumns} FROM acme_challenges WHERE id = $1`, [id]);
  }

  /**
   * pending → processing (validated_at holds the start until the outcome replaces it),
   * unless another request already started it, in the same statement that counts the
   * account's and the provisioner's validations that failed or are still running since
   * `limits.since`. A running validation counts like a failed one, so an account cannot run
   * more at once than it may fail. Not started when the account has reached its limit, nor
   * when the provisioner has reached its own and this account has failed in the window:
   * the provisioner-wide budget then refuses the accounts that fail, never those that
   * succeed (the counts say which limit was reached).
   */
  async startChallengeWithinLimits(
    id: string,
    at: Date,
    scope: { accountId: string; provisionerId: string },
    limits: { since: Date; perAccount: number; perProvisioner: number; pendingPerAccount: number; pendingPerProvisioner: number },
  ): Promise<{ started: boolean; counts: AcmeWindowCounts & { accountFailed: number; accountPending: number; provisionerPending: number } }> {
    const rows = await query<WindowCountRow & { accountFailed: bigint; accountPending: bigint; provisionerPending: bigint; started: boolean }>(
      this.pool,
      `WITH counts AS (
         SELECT count(*) FILTER (WHERE account_id = $4) AS "accountCount", min(validated_at) FILTER (WHERE account_id = $4) AS "accountOldest",
                count(*) FILTER (WHERE account_id = $4 AND status = 'invalid') AS "accountFailed",
                count(*) FILTER (WHERE account_id = $4 AND status = 'processing') AS "accountPending",
                count(*) AS "provisionerCount", min(validated_at) AS "provisionerOldest",
                count(*) FILTER (WHERE status = 'processing') AS "provisionerPending"
         FROM acme_challenges WHERE provisioner_id = $3 AND status IN ('invalid', 'processing') AND validated_at > $5),
       started AS (
         UPDATE acme_challenges c SET status = 'processing', validated_at = $2, claimed_until = NULL FROM acme_authorizations a, counts
         WHERE c.id = $1 AND c.status = 'pending' AND a.id = c.authorization_id AND a.status = 'pending'
           AND counts."accountCount" < $6 AND (counts."provisionerCount" < $7 OR counts."accountFailed" = 0)
           AND counts."accountPending" < $8 AND counts."provisionerPending" < $9
         RETURNING c.id),
       woken AS (SELECT pg_notify('${CHANGE_CHANNELS.acmeValidations}', '') FROM started)
       SELECT counts.*, EXISTS (SELECT 1 FROM started) AS started, (SELECT count(*) FROM woken) AS woken FROM counts`,
      [id, at, scope.provisionerId, scope.accountId, limits.since, limits.perAccount, limits.perProvisioner, limits.pendingPerAccount, limits.pendingPerProvisioner],
    );
    const row = rows[0] as WindowCountRow & { accountFailed: bigint; accountPending: bigint; provisionerPending: bigint; started: boolean };
    return {
      started: row.started,
      counts: { ...windowCounts(row), accountFailed: Number(row.accountFailed), accountPending: Number(row.accountPending), provisionerPending: Number(row.provisionerPending) },
    };
  }

  /**
   * Claims up to `limit` challenges waiting for validation (processing, started after
   * `startedAfter`, unclaimed or claimed by a validator whose claim lapsed) until
   * `claimUntil`, oldest first, with what validating each takes. Validators on other
   * processes skip the rows one is claiming.
   */
  async claimValidations(now: Date, claimUntil: Date, startedAfter: Date, limit: number): Promise<AcmeValidationClaim[]> {
    const rows = await query<AcmeValidationClaim & { identifierType: "dns" | "ip"; identifierValue: string }>(
      this.pool,
      `WITH picked AS (
         SELECT id FROM acme_challenges
         WHERE status = 'processing' AND (claimed_until IS NULL OR claimed_until < $1) AND validated_at > $3
         ORDER BY validated_at LIMIT $4 FOR UPDATE SKIP LOCKED),
       claimed AS (UPDATE acme_challenges c SET claimed_until = $2 FROM picked WHERE c.id = picked.id RETURNING c.id, c.authorization_id, c.account_id, c.provisioner_id, c.type, c.token)
       SELECT claimed.id AS "challengeId", claimed.account_id AS "accountId", claimed.provisioner_id AS "provisionerId", claimed.type, claimed.token,
              a.identifier_type AS "identifierType", a.identifier_value AS "identifierValue", a.wildcard, acc.key_thumbprint AS "keyThumbprint", p.names AS "namePatterns"
       FROM claimed JOIN acme_authorizations a ON a.id = claimed.authorization_id JOIN acme_accounts acc ON acc.id = claimed.account_id
         JOIN provisioners p ON p.id = claimed.provisioner_id`,
      [now, claimUntil, startedAfter, limit],
    );
    return rows.map(({ identifierType, identifierValue, ...claim }) => ({ ...claim, identifier: { type: identifierType, value: identifierValue } }));
  }

  /** Gives a claimed challenge back for another validator (or a later round) to take. */
  async releaseValidation(id: string): Promise<void> {
    await execute(this.pool, `UPDATE acme_challenges SET claimed_until = NULL WHERE id = $1 AND status = 'processing'`, [id]);
  }

  /**
   * Records a validation's outcome on the challenge, its authorization and its order in one
   * transaction: valid makes the order ready once every authorization is valid; invalid
   * makes the authorization and the order invalid (RFC 8555 §7.1.6).
   */
  async finishChallenge(id: string, outcome: { ok: true } | { ok: false; problem: AcmeProblemRecord }, at: Date): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      // The order's row first: two validations of one order finishing together (two validator
      // slots, or two validators) take turns here, and the second then sees the first's
      // authorization as valid. Without it each saw the other still pending, and the order
      // stayed pending with every authorization valid.
      await execute(client, `SELECT o.id FROM acme_orders o JOIN acme_authorizations a ON a.order_id = o.id JOIN acme_challenges c ON c.authorization_id = a.id WHERE c.id = $1 FOR UPDATE OF o`, [id]);
      // Its parts all see the rows as they were before it, so the order becomes ready when
      // every OTHER authorization of it is already valid.
      await execute(
        client,
        `WITH ch AS (
           UPDATE acme_challenges SET status = $2, error = $3::jsonb, validated_at = $4 WHERE id = $1 AND status = 'processing' RETURNING authorization_id),
         az AS (
           UPDATE acme_authorizations a SET status = $2 FROM ch WHERE a.id = ch.authorization_id AND a.status = 'pending' RETURNING a.id, a.order_id)
         UPDATE acme_orders o SET status = CASE WHEN $5 THEN 'ready' ELSE 'invalid' END, error = CASE WHEN $5 THEN o.error ELSE $3::jsonb END
         FROM az WHERE o.id = az.order_id AND o.status = 'pending'
           AND (NOT $5 OR NOT EXISTS (SELECT 1 FROM acme_authorizations z WHERE z.order_id = az.order_id AND z.id <> az.id AND z.status <> 'valid'))`,
        [id, outcome.ok ? "valid" : "invalid", outcome.ok ? null : JSON.stringify(outcome.problem), at, outcome.ok],
      );
    });
  }

  /** Deactivates a pending or valid authorization; its order can no longer become ready. */
  async deactivateAuthorization(id: string): Promise<boolean> {
    const deactivated = await queryOne<{ orderId: string }>(
      this.pool,
      `UPDATE acme_authorizations SET status = 'deactivated' WHERE id = $1 AND status IN ('pending', 'valid') RETURNING order_id AS "orderId"`,
      [id],
    );
    if (!deactivated) return false;
    await execute(this.pool, `UPDATE acme_orders SET status = 'invalid' WHERE id = $1 AND status IN ('pending', 'ready')`, [deactivated.orderId]);
    return true;
  }

  /** The ACME account and order an inventory certificate came from, if any. */
  async certificateOrigin(serial: string): Promise<{ accountId: string; orderId: string; provisionerId: string } | undefined> {
    return queryOne<{ accountId: string; orderId: string; provisionerId: string }>(
      this.pool,
      `SELECT account_id AS "accountId", id AS "orderId", provisioner_id AS "provisionerId" FROM acme_orders WHERE certificate_serial = $1`,
      [serial],
    );
  }
}

/**
 * Counts the rows of `table` with `timeColumn` after the `since` parameter, for the account
 * parameter and for the whole provisioner parameter, in one pass over the provisioner's index.
 */
function windowCountQuery(table: string, timeColumn: string, provisioner: string, account: string, since: string): string {
  return `SELECT count(*) FILTER (WHERE account_id = ${account}) AS "accountCount", min(${timeColumn}) FILTER (WHERE account_id = ${account}) AS "accountOldest",
            count(*) AS "provisionerCount", min(${timeColumn}) AS "provisionerOldest"
          FROM ${table} WHERE provisioner_id = ${provisioner} AND ${timeColumn} > ${since}`;
}

interface WindowCountRow {
  accountCount: bigint;
  accountOldest: Date | null;
  provisionerCount: bigint;
  provisionerOldest: Date | null;
}

function windowCounts(row: WindowCountRow | undefined): AcmeWindowCounts {
  return {
    account: { count: Number(row?.accountCount ?? 0), oldest: row?.accountOldest ?? null },
    provisioner: { count: Number(row?.provisionerCount ?? 0), oldest: row?.provisionerOldest ?? null },
  };
}
