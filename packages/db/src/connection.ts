import { mkdirSync } from "node:fs";
import pg from "pg";
import { PGlite } from "@electric-sql/pglite";
import { pg_trgm } from "@electric-sql/pglite/contrib/pg_trgm";
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaPGlite } from "pglite-prisma-adapter";
import { PrismaClient } from "./generated/prisma/client.ts";
import { applyMigrations } from "./migrate.ts";

/** The raw driver underneath Prisma, for migrations and the few streaming/bulk paths. */
export interface SqlRunner {
  /** runs a script of one or more statements without parameters */
  exec(sql: string): Promise<void>;
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
}

export interface Connection {
  kind: "postgresql" | "embedded";
  prisma: PrismaClient;
  sql: SqlRunner;
  close(): Promise<void>;
}

export interface ConnectOptions {
  /** postgresql:// URL; unset means the embedded PostgreSQL (PGlite) in `embeddedDir` */
  url: string | undefined;
  embeddedDir: string;
  /** PostgreSQL pool size per process */
  poolSize?: number;
}

async function connectPostgres(url: string, poolSize: number): Promise<Connection> {
  const pool = new pg.Pool({ connectionString: url, max: poolSize, connectionTimeoutMillis: 5000 });
  // An idle client losing its server must not crash the process; the pool replaces it.
  pool.on("error", () => {});
  const migrator = await pool.connect().catch(async (error: Error) => {
    await pool.end();
    throw new Error(`cannot connect to PostgreSQL: ${error.message}`);
  });
  try {
    await applyMigrations({
      exec: async (text) => {
        await migrator.query(text);
      },
      query: async (text, params) => (await migrator.query(text, params as unknown[])).rows,
    });
  } catch (error) {
    migrator.release();
    await pool.end();
    throw error;
  }
  migrator.release();
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  const sql: SqlRunner = {
    exec: async (text) => {
      await pool.query(text);
    },
    query: async (text, params) => (await pool.query(text, params as unknown[])).rows,
  };
  return {
    kind: "postgresql",
    prisma,
    sql,
    close: async () => {
      await prisma.$disconnect();
      await pool.end();
    },
  };
}

async function connectEmbedded(dir: string): Promise<Connection> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const db = await PGlite.create(dir, { extensions: { pg_trgm } });
  const sqlRunner: SqlRunner = {
    exec: async (text) => {
      await db.exec(text);
    },
    query: async (text, params) => (await db.query(text, params as unknown[])).rows as never,
  };
  try {
    await applyMigrations(sqlRunner);
  } catch (error) {
    await db.close();
    throw error;
  }
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(db) });
  return {
    kind: "embedded",
    prisma,
    sql: sqlRunner,
    close: async () => {
      await prisma.$disconnect();
      await db.close();
    },
  };
}

/** Connects and brings the schema up to date (migrations are idempotent and locked). */
export async function connect(options: ConnectOptions): Promise<Connection> {
  return options.url ? connectPostgres(options.url, options.poolSize ?? 10) : connectEmbedded(options.embeddedDir);
}
