import { connect, type Connection, type ConnectOptions, type SqlRunner } from "./connection.ts";
import { IssuerStore } from "./stores/issuers.ts";
import { CertificateStore } from "./stores/certificates.ts";
import { AuditStore } from "./stores/audit.ts";
import { AdminTokenStore } from "./stores/admins.ts";
import { CrlStore, OcspResponderStore, OcspResponseStore } from "./stores/revocation.ts";
import { ProvisionerStore } from "./stores/provisioners.ts";
import { AlertStore, SchedulerStore, WebhookOutboxStore } from "./stores/scheduler.ts";
import { CertificateScanStore, IssuerLifecycleStore } from "./stores/lifecycle.ts";
import { ConsoleSessionStore } from "./stores/console-sessions.ts";

export type { ConnectOptions, SqlRunner };
export { applyMigrations, listMigrations, MIGRATIONS_DIR } from "./migrate.ts";
export { isDatabaseOutage } from "./errors.ts";
export { AUDIT_TEXT_MAX_BYTES, boundAuditText } from "./stores/audit.ts";
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
  }

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

  async ping(): Promise<void> {
    await this.connection.sql.query("SELECT 1");
  }

  async close(): Promise<void> {
    await this.connection.close();
  }
}
