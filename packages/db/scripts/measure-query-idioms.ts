// Times the same point lookup and audit insert through Prisma's model API and through
// plain `pg`, on PostgreSQL (PKI_TEST_DATABASE_URL, run through scripts/with-postgres.sh)
// and on the embedded database. It chose the stores' one query idiom (see sql.ts); run it
// again before revisiting that choice:
//   bash scripts/with-postgres.sh node --import tsx packages/db/scripts/measure-query-idioms.ts
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { PrismaPg } from "@prisma/adapter-pg";
import type pg from "pg";
import { PrismaClient } from "../src/generated/prisma/client.ts";
import { createDatabase } from "../src/testing.ts";
import { connect } from "../src/connection.ts";

const ROUNDS = Number(process.env.ROUNDS ?? 2000);

async function time(label: string, work: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 200; i++) await work(); // warm-up: Prisma compiles each query shape once
  const start = process.hrtime.bigint();
  for (let i = 0; i < ROUNDS; i++) await work();
  const us = Number(process.hrtime.bigint() - start) / 1000 / ROUNDS;
  console.log(`  ${label.padEnd(40)} ${us.toFixed(0).padStart(6)} µs/op`);
  return us;
}

async function measure(kind: string, pool: pg.Pool): Promise<void> {
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  const id = randomUUID();
  await pool.query(`INSERT INTO provisioners (id, name, token_hash, profiles, names, max_ttl_seconds) VALUES ($1, $2, $3, '{server}', '{}', 3600)`, [id, `m-${id}`, id]);
  console.log(`${kind}: ${ROUNDS} sequential operations each`);
  await time("point lookup, Prisma findUnique", () => prisma.provisioner.findUnique({ where: { id } }));
  await time("point lookup, pg query", () =>
    pool.query(`SELECT id, name, profiles, names, max_ttl_seconds AS "maxTtlSeconds", hierarchy, disabled, created_at AS "createdAt", deleted_at AS "deletedAt" FROM provisioners WHERE id = $1`, [id]),
  );
  await time("audit insert, Prisma createMany", () => prisma.auditEvent.createMany({ data: { actor: "measure", action: "measure.insert", outcome: "ok", details: { n: 1 } } }));
  await time("audit insert, pg query", () =>
    pool.query(`INSERT INTO audit_events (actor, action, target, source_ip, outcome, details) VALUES ($1, $2, $3, $4, $5, $6)`, [
      "measure",
      "measure.insert",
      null,
      null,
      "ok",
      JSON.stringify({ n: 1 }),
    ]),
  );
  await time("transaction (update + audit), Prisma", () =>
    prisma.$transaction(async (tx) => {
      await tx.provisioner.updateMany({ where: { id }, data: { disabled: false } });
      await tx.auditEvent.createMany({ data: { actor: "measure", action: "measure.tx", outcome: "ok" } });
    }),
  );
  await time("transaction (update + audit), pg", async () => {
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      await client.query(`UPDATE provisioners SET disabled = false WHERE id = $1`, [id]);
      await client.query(`INSERT INTO audit_events (actor, action, outcome) VALUES ($1, $2, 'ok')`, ["measure", "measure.tx"]);
      await client.query("COMMIT");
    } finally {
      client.release();
    }
  });
  await prisma.$disconnect();
}

const serverUrl = process.env.PKI_TEST_DATABASE_URL;
if (serverUrl) {
  const database = await createDatabase(serverUrl, "pki_measure");
  const connection = await connect({ url: database.url, embeddedDir: "", schema: "migrate", poolSize: 4 });
  try {
    await measure("PostgreSQL", connection.pool);
  } finally {
    await connection.close();
    await database.drop();
  }
}
const dir = mkdtempSync(path.join(tmpdir(), "pki-measure-"));
const embedded = await connect({ url: undefined, embeddedDir: dir, embeddedRole: "server" });
try {
  await measure("embedded (PGlite)", embedded.pool);
} finally {
  await embedded.close();
  rmSync(dir, { recursive: true, force: true });
}
