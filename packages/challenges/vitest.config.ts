import { defineConfig } from "vitest/config";

// The tests start real servers and child processes; on a busy machine the default 5 s per test is too tight.
export default defineConfig({ test: { testTimeout: 60_000, hookTimeout: 60_000 } });
