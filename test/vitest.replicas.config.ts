import { defineConfig } from "vitest/config";

// The multi-replica run (`npm run test:replicas`): a dozen processes, its own PostgreSQL
// primary and standby and an nginx; several minutes on 2 cores, so outside `npm test`.
export default defineConfig({
  test: {
    include: ["replicas/**/*.test.ts"],
    pool: "forks",
    testTimeout: 600_000,
    hookTimeout: 300_000,
    maxWorkers: 1,
  },
});
