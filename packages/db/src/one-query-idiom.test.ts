import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// The stores talk to PostgreSQL one way (sql.ts) and write in transactions one way
// (transaction.ts). This fails, naming file and line, when production code starts another:
// Prisma's client at run time, its raw queries or interactive transactions, or a
// hand-written BEGIN. Prisma keeps the schema and the migrations.

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");

/** Where each pattern is allowed: the one helper it belongs to. `only`: the rule applies under this path alone. */
const RULES: Array<{ what: string; pattern: RegExp; allowedIn: string[]; only?: string }> = [
  { what: "an interactive Prisma transaction ($transaction)", pattern: /\$transaction\b/, allowedIn: [] },
  { what: "a Prisma raw query ($queryRaw / $executeRaw)", pattern: /\$(queryRaw|executeRaw)/, allowedIn: [] },
  {
    what: "a Prisma model call (prisma.<model>. / tx.<model>.)",
    pattern: /\b(prisma|tx)\.[a-z]\w*\.(find|create|update|upsert|delete|count|aggregate|groupBy)\w*\(/,
    allowedIn: [],
  },
  {
    what: "a transaction begun by hand (use inTransaction)",
    // SQL's BEGIN, not the word in other text (PEM's "-----BEGIN"): sent as a query, or followed by what only SQL puts there
    pattern: /\.(query|exec)\(\s*["'`]\s*(BEGIN|START TRANSACTION)\b|["'`]\s*(BEGIN|START TRANSACTION)\s*(;|ISOLATION\b|READ\b|TRANSACTION\b|WORK\b)/i,
    // migrations apply each file with its record in one transaction of their own
    allowedIn: ["packages/db/src/transaction.ts", "packages/db/src/migrate.ts"],
  },
  {
    what: "Prisma's client loaded at run time (type imports are fine)",
    pattern: /^\s*import\s+(?!type\b)[^;]*from\s+["'][^"']*(generated\/prisma|@prisma\/)[^"']*["']|import\(\s*["'][^"']*(generated\/prisma|@prisma\/)/,
    allowedIn: ["packages/db/src/schema-model.ts"],
  },
  {
    what: "a store querying the driver directly (use query, queryOne or execute from sql.ts)",
    pattern: /\b(pool|client|db)\.query\s*[<(]/,
    allowedIn: [],
    only: "packages/db/src/stores/",
  },
];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "generated" || entry.name === "node_modules" || entry.name === "migrations" ? [] : sourceFiles(full);
    return /\.(ts|mts|js|mjs)$/.test(entry.name) ? [full] : [];
  });
}

/** Every file:line breaking a rule, with what it breaks. */
export function queryIdiomViolations(files: Array<{ file: string; text: string }>): string[] {
  const found: string[] = [];
  for (const { file, text } of files) {
    text.split("\n").forEach((line, i) => {
      for (const rule of RULES) {
        if (rule.only && !file.startsWith(rule.only)) continue;
        if (rule.pattern.test(line) && !rule.allowedIn.includes(file)) found.push(`${file}:${i + 1}: ${rule.what}`);
      }
    });
  }
  return found;
}

const productionFiles = () =>
  ["packages", "apps"]
    .flatMap((top) => readdirSync(path.join(root, top)).map((name) => path.join(root, top, name, "src")))
    .flatMap((src) => {
      try {
        return sourceFiles(src);
      } catch {
        return [];
      }
    })
    .filter((file) => !/\.test\.ts$/.test(file))
    .map((file) => ({ file: path.relative(root, file), text: readFileSync(file, "utf8") }));

describe("one query idiom", () => {
  it("no production code outside the helpers uses Prisma's client, its transactions or a hand-written BEGIN", () => {
    expect(queryIdiomViolations(productionFiles())).toEqual([]);
  });

  it("names the file and line of each kind of violation", () => {
    const file = "packages/db/src/example.ts";
    const text = [
      "await this.prisma.$transaction(async (tx) => {",
      "  await tx.issuer.update({ where: { id } });",
      '  await client.query("BEGIN");',
      "  await client.query(`BEGIN ISOLATION LEVEL SERIALIZABLE`);",
      "  await prisma.$queryRaw`SELECT 1`;",
      'import { PrismaClient } from "../generated/prisma/client.ts";',
      'import type { Issuer } from "../generated/prisma/client.ts";',
      'const pem = "-----BEGIN CERTIFICATE-----";',
    ].join("\n");
    expect(queryIdiomViolations([{ file, text }])).toEqual([
      `${file}:1: an interactive Prisma transaction ($transaction)`,
      `${file}:2: a Prisma model call (prisma.<model>. / tx.<model>.)`,
      `${file}:3: a transaction begun by hand (use inTransaction)`,
      `${file}:4: a transaction begun by hand (use inTransaction)`,
      `${file}:5: a Prisma raw query ($queryRaw / $executeRaw)`,
      `${file}:6: Prisma's client loaded at run time (type imports are fine)`,
    ]);
    expect(queryIdiomViolations([{ file: "packages/db/src/transaction.ts", text: 'await client.query("BEGIN");' }])).toEqual([]);
    const store = "packages/db/src/stores/example.ts";
    expect(queryIdiomViolations([{ file: store, text: "const rows = await this.pool.query<{ n: string }>(`SELECT 1`);" }])).toEqual([
      `${store}:1: a store querying the driver directly (use query, queryOne or execute from sql.ts)`,
    ]);
  });
});
