// The stores' one way to talk to PostgreSQL: plain SQL through node-postgres, rows typed
// by the caller (the select list names its columns as the record's fields, `AS "camelCase"`,
// so rows need no mapping), and every multi-statement write inside inTransaction
// (transaction.ts). Prisma keeps the schema and the migrations; no store calls its client.
//
// Chosen by measurement (packages/db/scripts/measure-query-idioms.ts: 2000 sequential
// operations after warm-up, on a busy 2-core machine), Prisma 7's model API against pg:
//                                   PostgreSQL          embedded (PGlite)
//   point lookup by primary key      1311 vs 287 µs      1635 vs 514 µs
//   one audit row insert             1031 vs 163 µs       929 vs 338 µs
//   transaction (update + audit)     3916 vs 978 µs      1614 vs 650 µs
// and a process that never runs a Prisma query never loads its query compiler.
import pg from "pg";

/** What a store query runs on: the pool, or the client of a transaction in progress (inTransaction). */
export type Queryable = pg.Pool | pg.PoolClient;

const INT8_OID = 20;

/**
 * int8 values (count(*), bigserial ids, CRL numbers) arrive as bigint, as Prisma's
 * generated types have them, instead of node-postgres' default decimal string. Only queries
 * made here use it: the pool's other users keep the driver's defaults.
 */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: "text" | "binary") => (oid === INT8_OID && format !== "binary" ? BigInt : pg.types.getTypeParser(oid, format))) as pg.CustomTypesConfig["getTypeParser"],
};

/** The rows of one statement, typed as its select list (or RETURNING) names them. */
export async function query<Row>(db: Queryable, text: string, params: unknown[] = []): Promise<Row[]> {
  return (await db.query({ text, values: params, types })).rows as Row[];
}

/** The first row of one statement, if any. */
export async function queryOne<Row>(db: Queryable, text: string, params: unknown[] = []): Promise<Row | undefined> {
  return (await query<Row>(db, text, params))[0];
}

/** Runs one statement for its effect; returns how many rows it inserted, changed or deleted. */
export async function execute(db: Queryable, text: string, params: unknown[] = []): Promise<number> {
  return (await db.query({ text, values: params, types })).rowCount ?? 0;
}
