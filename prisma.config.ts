// For users who run the Prisma CLI themselves (`prisma migrate deploy` against their own
// PostgreSQL). The CA applies these migrations in-process at start-up; see packages/db.
import { defineConfig } from "prisma/config";

export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  datasource: { url: process.env.DATABASE_URL ?? "postgresql://localhost/pki" },
});
