// How many cases the fuzz properties run, and with which seed; read once for the fuzz tests
// (`npm run fuzz` raises the count; a failing seed reproduces a failure).
export const FUZZ = {
  runs: Number(process.env.PKI_FUZZ_RUNS ?? 2000),
  seed: Number(process.env.PKI_FUZZ_SEED ?? 20261123),
};
