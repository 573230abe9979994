// Fixed-time loops: warm up, then count completions for `seconds`, with `concurrency`
// callers in flight. Bounded by time and by `maxOps`.
export interface LoopResult {
  ops: number;
  seconds: number;
  rate: number;
  errors: number;
  firstError?: string;
  /** per-operation latency, ms */
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export async function timedLoop(op: () => Promise<unknown>, options: { seconds: number; warmupSeconds: number; concurrency: number; maxOps?: number }): Promise<LoopResult> {
  const maxOps = options.maxOps ?? 5_000_000;
  let phase: "warmup" | "measure" | "done" = "warmup";
  let ops = 0;
  let errors = 0;
  let firstError: string | undefined;
  const latencies: number[] = [];
  let measureStart = 0;
  const worker = async () => {
    while (phase !== "done") {
      const t = performance.now();
      try {
        await op();
        if (phase === "measure") {
          ops++;
          latencies.push(performance.now() - t);
          if (ops >= maxOps) phase = "done";
        }
      } catch (error) {
        if (phase === "measure") errors++;
        firstError ??= (error as Error).message;
        if (errors > 1000) phase = "done";
      }
    }
  };
  const workers = Array.from({ length: options.concurrency }, worker);
  await new Promise((r) => setTimeout(r, options.warmupSeconds * 1000));
  phase = "measure";
  measureStart = performance.now();
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, options.seconds * 1000);
    const check = setInterval(() => {
      if (phase === "done") {
        clearTimeout(timer);
        clearInterval(check);
        resolve();
      }
    }, 50);
    timer.unref?.();
    setTimeout(() => clearInterval(check), options.seconds * 1000 + 100);
  });
  const seconds = (performance.now() - measureStart) / 1000;
  const counted = ops;
  phase = "done";
  await Promise.all(workers);
  latencies.sort((a, b) => a - b);
  return {
    ops: counted,
    seconds,
    rate: counted / seconds,
    errors,
    firstError,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    max: latencies[latencies.length - 1] ?? NaN,
  };
}

/** Wraps one measurement so a failure becomes a "not available" row instead of losing the group. */
export async function attempt<T>(id: string, label: string, log: (m: string) => void, fn: () => Promise<T>): Promise<T | { id: string; label: string; unavailable: string }> {
  try {
    return await fn();
  } catch (error) {
    log(`${id} failed: ${(error as Error).stack ?? error}`);
    return { id, label, unavailable: `failed: ${(error as Error).message.split("\n")[0]!.slice(0, 300)}` };
  }
}
