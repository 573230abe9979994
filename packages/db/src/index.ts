import { connect, type Connection, type ConnectOptions, type SqlRunner } from "./connection.ts";
import { applyRoleGrants } from "./migrate.ts";
import { watchChanges, type ChangeChannel, type ChangeWatch } from "./notify.ts";
import { IssuerStore } from "./stores/issuers.ts";
import { CertificateStore } from "./stores/certificates.ts";
import { AuditStore } from "./stores/audit.ts";
import { AdminTokenStore } from "./stores/admins.ts";
import { CrlStore, OcspResponderStore, OcspResponseStore } from "./stores/revocation.ts";
import { ProvisionerStore } from "./stores/provisioners.ts";
import { AlertStore, SchedulerStore, WebhookOutboxStore } from "./stores/scheduler.ts";
import { CertificateScanStore, IssuerLifecycleStore } from "./stores/lifecycle.ts";
import { ConsoleSessionStore } from "./stores/console-sessions.ts";
import { AcmeStore } from "./stores/acme.ts";
import { ReissueRunStore } from "./stores/reissue-runs.ts";

export type { ConnectOptions, SqlRunner };
export { applyMigrations, applyRoleGrants, listMigrations, verifySchema, MIGRATIONS_DIR, ROLES_SQL, SchemaBehindError } from "./migrate.ts";
export { isDatabaseOutage } from "./errors.ts";
export { CHANGE_CHANNELS, ChangeFollower, type ChangeChannel, type ChangeWatch, type ChangeSource, type FollowOptions } from "./notify.ts";
export { ChangeClearedCache, type ChangeClearedCacheOptions } from "./change-cleared-cache.ts";
export { AUDIT_TEXT_MAX_BYTES, boundAuditText, withAuditSource } from "./stores/audit.ts";
export type { IssuerIntent, IssuerRecord, IssuerStatus } from "./stores/issuers.ts";
export type { CertificateRecord, PlannedCertificate, CertificateQuery, CertificateState, InternalMarks, InventoryOverview } from "./stores/certificates.ts";
export { DuplicateSerialError, IssuerNotActiveError, SuccessorExistsError, type RevokedChain } from "./stores/certificates.ts";
export { CrlSourceChangedError } from "./stores/revocation.ts";
export type { AuditEntry, AuditRecord, AuditQuery } from "./stores/audit.ts";
export { IssuerStore, CertificateStore, AuditStore, AdminTokenStore };
export { hashToken, AdminNameTakenError, type AdminRecord } from "./stores/admins.ts";
export { ConsoleSessionStore, type ConsoleSessionRecord, type SessionLimits } from "./stores/console-sessions.ts";
export { CrlStore, OcspResponderStore, OcspResponseStore };
export type {
  CrlKind,
  CrlMeta,
  CrlStateRecord,
  RevokedEntry,
  RevokedSource,
  EntryShape,
  CrlBuildContext,
  BuiltCrl,
  OcspResponderRecord,
  OcspResponseRecord,
  OcspCertStatus,
  CertificateStatusRow,
} from "./stores/revocation.ts";
export { ProvisionerStore, ProvisionerNameTakenError, type ProvisionerRecord, type NewProvisioner } from "./stores/provisioners.ts";
export { AlertStore, SchedulerStore, WebhookOutboxStore, type AlertToSend, type JobClaim, type JobOutcome, type JobRunRecord, type OutboxEvent, type SchedulerJobRecord } from "./stores/scheduler.ts";
export { CertificateScanStore, IssuerLifecycleStore, type Activation } from "./stores/lifecycle.ts";
export { ReissueRunStore, REISSUE_FAILURES_KEPT, isAbandonedReissue, type ReissueFailure, type ReissueProgressUpdate, type ReissueRunRecord } from "./stores/reissue-runs.ts";
export {
  AcmeStore,
  AcmeAccountKeyInUseError,
  AcmeAccountLimitError,
  AcmeEabKeyUnusableError,
  type AcmeAccountRecord,
  type AcmeValidationClaim,
  type AcmeAccountStatus,
  type AcmeAuthorizationRecord,
  type AcmeChallengeRecord,
  type AcmeIdentifier,
  type AcmeOrderRecord,
  type AcmeOrderStatus,
  type AcmeProblemRecord,
  type AcmeProvisionerRecord,
  type AcmeWindowCounts,
  type NewAcmeAuthorization,
} from "./stores/acme.ts";

/** The inventory: narrow stores over one connection. Nothing outside this package sees Prisma. */
export class Inventory {
  readonly issuers: IssuerStore;
  readonly certificates: CertificateStore;
  readonly audit: AuditStore;
  readonly admins: AdminTokenStore;
  readonly crls: CrlStore;
  readonly ocspResponders: OcspResponderStore;
  readonly ocspResponses: OcspResponseStore;
  readonly provisioners: ProvisionerStore;
  readonly scheduler: SchedulerStore;
  readonly alerts: AlertStore;
  readonly webhookOutbox: WebhookOutboxStore;
  readonly issuerLifecycle: IssuerLifecycleStore;
  readonly certificateScans: CertificateScanStore;
  readonly consoleSessions: ConsoleSessionStore;
  readonly acme: AcmeStore;
  readonly reissueRuns: ReissueRunStore;

  private constructor(private readonly connection: Connection) {
    this.issuers = new IssuerStore(connection.prisma, connection.pool);
    this.certificates = new CertificateStore(connection.prisma, connection.sql);
    this.audit = new AuditStore(connection.prisma);
    this.admins = new AdminTokenStore(connection.prisma, connection.pool);
    this.crls = new CrlStore(connection.pool);
    this.ocspResponders = new OcspResponderStore(connection.pool);
    this.ocspResponses = new OcspResponseStore(connection.pool);
    this.provisioners = new ProvisionerStore(connection.prisma, connection.pool);
    this.scheduler = new SchedulerStore(connection.pool);
    this.alerts = new AlertStore(connection.pool);
    this.webhookOutbox = new WebhookOutboxStore(connection.pool);
    this.issuerLifecycle = new IssuerLifecycleStore(connection.prisma);
    this.certificateScans = new CertificateScanStore(connection.prisma, connection.pool);
    this.consoleSessions = new ConsoleSessionStore(connection.pool);
    this.acme = new AcmeStore(connection.prisma, connection.pool);
    this.reissueRuns = new ReissueRunStore(connection.pool);
  }

  /** On PostgreSQL only checks the schema unless `schema: "migrate"` (see ConnectOptions). */
  static async open(options: ConnectOptions): Promise<Inventory> {
    return new Inventory(await connect(options));
  }

  get kind(): Connection["kind"] {
    return this.connection.kind;
  }

  /** Raw SQL for the few bulk/streaming paths and for tests that inspect the schema. */
  get sql(): SqlRunner {
    return this.connection.sql;
  }

  /** The data model as schema.prisma describes it: table → columns. */
  schemaTables(): Map<string, string[]> {
    const model = (
      this.connection.prisma as unknown as { _runtimeDataModel: { models: Record<string, { dbName: string | null; fields: Array<{ name: string; kind: string; dbName?: string | null }> }> } }
    )._runtimeDataModel;
    const tables = new Map<string, string[]>();
    for (const [name, m] of Object.entries(model.models)) {
      tables.set(
        m.dbName ?? name,
        m.fields.filter((f) => f.kind !== "object").map((f) => f.dbName ?? f.name),
      );
    }
    return tables;
  }

  /** PostgreSQL pool usage, for metrics and leak checks. */
  poolStats(): { total: number; idle: number; waiting: number } {
    const pool = this.connection.pool;
    return { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount };
  }

  /**
   * Calls `onChange` when another process commits a change to `channel`'s data. Undefined
   * on the embedded database (one process serves it, and tells its own readers in process).
   */
  async watch(channel: ChangeChannel, onChange: () => void): Promise<ChangeWatch | undefined> {
    if (this.connection.kind === "embedded") return undefined;
    return watchChanges(this.connection.poolConfig, channel, onChange);
  }

  async ping(): Promise<void> {
    await this.connection.sql.query("SELECT 1");
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}

/**
 * `pki migrate` and `pki init`: brings the schema up to date and, with `grantRoles`, sets
 * the per-role users' grants (prisma/roles.sql). Needs the migration (owner) user.
 * The migrations applied are told to `options.progress`.
 */
export async function migrateDatabase(options: Omit<ConnectOptions, "schema">, { grantRoles = false }: { grantRoles?: boolean } = {}): Promise<void> {
  const connection = await connect({ ...options, schema: "migrate", poolSize: 1 });
  try {
    if (grantRoles) await applyRoleGrants(connection.sql);
  } finally {
    await connection.close();
  }
}

// What each role may reach, as types: a role opened through its factory cannot name a
// store it must not touch. Its PostgreSQL user (prisma/roles.sql) enforces the same at run
// time. Signing roles (api, CRL publisher, scheduler) run the issuance pipeline of
// @pki/authority and @pki/revocation, which take the whole Inventory; their own modules
// take these views.

/** The database side of the public OCSP responder: read-only, pre-signed answers. */
export interface OcspInventory {
  readonly kind: "postgresql" | "embedded";
  readonly issuers: Pick<IssuerStore, "list">;
  readonly ocspResponses: Pick<OcspResponseStore, "get" | "many" | "changedSince" | "unexpired" | "certificateStatus">;
  watch: Inventory["watch"];
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The ACME validator's view: the challenges waiting for it and their outcomes, nothing else. */
export interface AcmeValidationInventory {
  readonly kind: "postgresql" | "embedded";
  readonly acme: Pick<AcmeStore, "claimValidations" | "releaseValidation" | "finishChallenge">;
  watch: Inventory["watch"];
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Opens the ACME validator's view. Never migrates on PostgreSQL (see ConnectOptions.schema). */
export async function openAcmeValidationStore(options: Omit<ConnectOptions, "schema">): Promise<AcmeValidationInventory> {
  const inventory = await Inventory.open({ ...options, schema: "verify", poolSize: 2 });
  return {
    kind: inventory.kind,
    acme: inventory.acme,
    watch: (channel, onChange) => inventory.watch(channel, onChange),
    ping: () => inventory.ping(),
    close: () => inventory.close(),
  };
}

/** What the CRL publisher's HTTP side serves from. */
export interface CrlServingInventory {
  readonly kind: "postgresql" | "embedded";
  readonly crls: Pick<CrlStore, "states" | "read">;
  watch: Inventory["watch"];
}

/** What the scheduler's webhook delivery reaches. */
export interface WebhookInventory {
  readonly webhookOutbox: Pick<WebhookOutboxStore, "claimDue" | "pendingCount" | "markDelivered" | "markFailed">;
}

/** Opens the OCSP responder's view. Never migrates on PostgreSQL (see ConnectOptions.schema). */
export async function openOcspStore(options: Omit<ConnectOptions, "schema">): Promise<OcspInventory> {
  const inventory = await Inventory.open({ ...options, schema: "verify" });
  // A plain object, not the Inventory: nothing beyond the view is reachable even by a cast.
  return {
    kind: inventory.kind,
    issuers: inventory.issuers,
    ocspResponses: inventory.ocspResponses,
    watch: (channel, onChange) => inventory.watch(channel, onChange),
    ping: () => inventory.ping(),
    close: () => inventory.close(),
  };
}
