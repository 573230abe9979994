// What a benchmark group returns: raw measurements. Figures (bench/figures.ts) turn them
// into table rows with a reference measured in the same run, a ratio and a target.

export interface Measurement {
  id: string;
  /** what was measured, in words, including the scale (e.g. "1,000,000 revoked") */
  label: string;
  value: number;
  unit: string;
  /** how it was measured and anything that qualifies it (latencies, errors, RSS, counts) */
  details?: Record<string, unknown>;
}

export interface Unavailable {
  id: string;
  label: string;
  unavailable: string;
}

export type Result = Measurement | Unavailable;

export interface GroupContext {
  quick: boolean;
  /** PostgreSQL server URL (scripts/with-postgres.sh) */
  pgUrl: string;
  /** measurement seconds per load phase, warm-up excluded */
  seconds: number;
  warmupSeconds: number;
  /** scratch directory removed after the group */
  tmp: string;
  log: (message: string) => void;
}

export type Group = (ctx: GroupContext) => Promise<Result[]>;

export const isUnavailable = (r: Result): r is Unavailable => "unavailable" in r;
