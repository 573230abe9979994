// prisma/schema.prisma and prisma/migrations must describe the same tables, on real
// PostgreSQL and on the embedded database; migrations run once however often we start.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Inventory, listMigrations } from "@pki/db";
import { freshDatabase } from "../support/harness.ts";

async function columnsInDatabase(inventory: Inventory): Promise<Map<string, string[]>> {
  const rows = await inventory.sql.query<{ table_name: string; column_name: string }>(
    `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> '_prisma_migrations' ORDER BY table_name, ordinal_position`,
  );
  const tables = new Map<string, string[]>();
  for (const row of rows) tables.set(row.table_name, [...(tables.get(row.table_name) ?? []), row.column_name]);
  return tables;
}

function sorted(tables: Map<string, string[]>): Record<string, string[]> {
  return Object.fromEntries([...tables.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([t, cols]) => [t, [...cols].sort()]));
}

describe("schema and migrations", () => {
  it("agree on PostgreSQL, and migrations apply exactly once", async () => {
    const db = await freshDatabase();
    try {
      const first = await Inventory.open({ url: db.url, embeddedDir: "", schema: "migrate" });
      await first.close();
      const inventory = await Inventory.open({ url: db.url, embeddedDir: "", schema: "migrate" });
      try {
        expect(sorted(await columnsInDatabase(inventory))).toEqual(sorted(await inventory.schemaTables()));
        const applied = await inventory.sql.query<{ migration_name: string; checksum: string }>(`SELECT migration_name, checksum FROM "_prisma_migrations" ORDER BY migration_name`);
        expect(applied).toEqual(listMigrations().map((m) => ({ migration_name: m.name, checksum: m.checksum })));
      } finally {
        await inventory.close();
      }
    } finally {
      await db.drop();
    }
  });

  it("agree on the embedded database", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "pki-embedded-"));
    try {
      const inventory = await Inventory.open({ url: undefined, embeddedDir: dir, embeddedRole: "server" });
      try {
        expect(inventory.kind).toBe("embedded");
        expect(sorted(await columnsInDatabase(inventory))).toEqual(sorted(await inventory.schemaTables()));
      } finally {
        await inventory.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
