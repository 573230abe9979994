import pg from "pg";
import { applyMigrations, verifySchema } from "./migrate.ts";
import { embeddedEndpoint, type EmbeddedRole } from "./embedded.ts";

/** Untyped SQL on the pool, for migrations and for code outside the stores (tests, reconciliation's clock). */
export interface SqlRunner {
  /** runs a script of one or more statements without parameters */
  exec(sql: string): Promise<void>;
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
}

export interface Connection {
  kind: "postgresql" | "embedded";
  sql: SqlRunner;
  /** what every store queries (sql.ts) */
  pool: pg.Pool;
  /** how the pool connects, for a connection of its own (LISTEN) */
  poolConfig: pg.PoolConfig;
  close(): Promise<void>;
}

export interface ConnectOptions {
  /** postgresql:// URL; unset means the embedded PostgreSQL (PGlite) in `embeddedDir` */
  url: string | undefined;
  embeddedDir: string;
  /** a server keeps the embedded database; a CLI borrows it (see embedded.ts) */
  embeddedRole?: EmbeddedRole;
  /** PostgreSQL pool size per process */
  poolSize?: number;
  /**
   * On PostgreSQL: "verify" (the default) only checks that the schema is current and fails
   * with SchemaBehindError otherwise, so a role's database user needs no DDL right;
   * "migrate" applies what is missing (`pki init`, `pki migrate`, the all-in-one server).
   * The embedded database always migrates: the process that opens it owns it.
   */
  schema?: "migrate" | "verify";
  /** told each slow step as it happens (first start creates the embedded database) */
  progress?: (step: string) => void;
}

const runnerFor = (client: pg.Pool | pg.PoolClient): SqlRunner => ({
  exec: async (text) => {
    await client.query(text);
  },
  query: async (text, params) => (await client.query(text, params as unknown[])).rows,
});

/**
 * A pool whose connections losing their server (a restart, a failover, a killed backend)
 * never crash the process. node-postgres emits 'error' on the client itself, and the pool
 * listens only while a client is idle: a client checked out at that moment (mid-transaction,
 * or held by a store) would throw an unhandled 'error' event. The query in flight rejects
 * with the cause either way, and the pool discards the dead client on release.
 */
export function createPool(poolConfig: pg.PoolConfig): pg.Pool {
  const pool = new pg.Pool({ connectionTimeoutMillis: 5000, ...poolConfig });
  pool.on("error", () => {});
  pool.on("connect", (client) => client.on("error", () => {}));
  return pool;
}

async function open(kind: Connection["kind"], poolConfig: pg.PoolConfig, schema: "migrate" | "verify", progress: (step: string) => void, release?: () => Promise<void>): Promise<Connection> {
  const pool = createPool(poolConfig);
  const shutdown = async () => {
    await pool.end().catch(() => {});
    await release?.();
  };
  try {
    const migrator = await pool.connect().catch((error: Error) => {
      throw new Error(`cannot connect to the ${kind === "embedded" ? "embedded database" : "PostgreSQL server"}: ${error.message}`);
    });
    try {
      if (schema === "verify") await verifySchema(runnerFor(migrator));
      else {
        const applied = await applyMigrations(runnerFor(migrator));
        if (applied.length) progress(`database schema: applied ${applied.join(", ")}`);
      }
    } finally {
      migrator.release();
    }
  } catch (error) {
    await shutdown();
    throw error;
  }
  return { kind, sql: runnerFor(pool), pool, poolConfig, close: shutdown };
}

/** Connects, then checks the schema or brings it up to date (see ConnectOptions.schema). */
export async function connect(options: ConnectOptions): Promise<Connection> {
  const max = options.poolSize ?? 10;
  const progress = options.progress ?? (() => {});
  if (options.url) return open("postgresql", { connectionString: options.url, max }, options.schema ?? "verify", progress);
  const endpoint = await embeddedEndpoint(options.embeddedDir, options.embeddedRole ?? "cli", progress);
  // One connection per process: PGlite is a single backend, and pglite-socket interleaves
  // the extended-protocol messages of concurrent connections (seen as "bind message
  // supplies 7 parameters, but prepared statement requires 2"). Group commit keeps one
  // connection enough for the quickstart; production uses PostgreSQL.
  return open("embedded", { host: endpoint.socketDir, port: endpoint.port, user: "postgres", database: "postgres", max: 1 }, "migrate", progress, endpoint.release);
}
