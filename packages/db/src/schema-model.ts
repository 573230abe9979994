// The data model as prisma/schema.prisma describes it, read from Prisma's generated client
// for the test that compares it with the tables the migrations make. Loaded only when asked:
// no process runs Prisma's client (the stores query through sql.ts).

interface RuntimeDataModel {
  models: Record<string, { dbName: string | null; fields: Array<{ name: string; kind: string; dbName?: string | null }> }>;
}

/** table → its columns (relation fields left out) */
export async function schemaTables(): Promise<Map<string, string[]>> {
  const [{ PrismaClient }, { PrismaPg }] = await Promise.all([import("./generated/prisma/client.ts"), import("@prisma/adapter-pg")]);
  // The adapter connects on the first query, and this client never makes one.
  const client = new PrismaClient({ adapter: new PrismaPg({ connectionString: "postgresql://localhost/never-connected" }) });
  const model = (client as unknown as { _runtimeDataModel: RuntimeDataModel })._runtimeDataModel;
  const tables = new Map<string, string[]>();
  for (const [name, m] of Object.entries(model.models)) {
    tables.set(
      m.dbName ?? name,
      m.fields.filter((f) => f.kind !== "object").map((f) => f.dbName ?? f.name),
    );
  }
  return tables;
}
