/** One time budget for a whole validation: lookups, connections, redirects and reads all draw on it. */
export class Deadline {
  readonly signal: AbortSignal;
  private readonly controller = new AbortController();
  private readonly timer: NodeJS.Timeout;

  constructor(readonly timeoutMs: number) {
    this.signal = this.controller.signal;
    this.timer = setTimeout(() => this.controller.abort(new DeadlineExceeded(timeoutMs)), timeoutMs);
    this.timer.unref();
  }

  get expired(): boolean {
    return this.signal.aborted;
  }

  /** Settles like `work`, or rejects with DeadlineExceeded once the budget is spent (calling `onAbort` to stop the work). */
  race<T>(work: Promise<T>, onAbort?: () => void): Promise<T> {
    if (this.signal.aborted) {
      onAbort?.();
      work.catch(() => {});
      return Promise.reject(this.signal.reason);
    }
    return new Promise<T>((resolve, reject) => {
      const abort = () => {
        onAbort?.();
        reject(this.signal.reason);
      };
      this.signal.addEventListener("abort", abort, { once: true });
      work.then(
        (value) => {
          this.signal.removeEventListener("abort", abort);
          resolve(value);
        },
        (error: unknown) => {
          this.signal.removeEventListener("abort", abort);
          reject(error);
        },
      );
    });
  }

  dispose(): void {
    clearTimeout(this.timer);
  }
}

export class DeadlineExceeded extends Error {
  readonly code = "ETIMEDOUT";
  constructor(timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms`);
    this.name = "DeadlineExceeded";
  }
}
