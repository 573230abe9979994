import { defineConfig } from "vitest/config";

// Each test file runs in its own process: SoftHSM reads its configuration once per
// process, and every file gets its own data dir and token.
export default defineConfig({
  test: {
    include: ["e2e/**/*.test.ts", "hostile/**/*.test.ts", "faults/**/*.test.ts"],
    pool: "forks",
    testTimeout: 120_000,
    hookTimeout: 120_000,
    maxWorkers: 2,
  },
});
