// The only place the test suites read the environment.

export const testSettings = {
  /** a PostgreSQL server to make test databases on (scripts/with-postgres.sh sets it) */
  databaseUrl: process.env.PKI_TEST_DATABASE_URL,
  /** log level of the API servers tests start in-process */
  logLevel: process.env.PKI_TEST_LOG_LEVEL ?? "silent",
  /** random bodies sent to the API by the hostile-bodies test */
  fuzzHttpRuns: Number(process.env.PKI_FUZZ_HTTP_RUNS ?? 150),
  /** how long `npm run soak` runs */
  soakSeconds: Number(process.env.SOAK_SECONDS ?? 180),
};

/** The environment for a child process: this one's (PATH, SoftHSM, …) plus `extra`. */
export const childEnv = (extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv => ({ ...process.env, ...extra });
