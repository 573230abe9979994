import { createHash } from "node:crypto";

export interface ValidationLimits {
  /** validations of one account running at once */
  perAccount: number;
  /** validations running at once in this process */
  total: number;
  /** validations waiting for a slot; beyond it run() rejects with ValidationLimitError */
  maxQueued: number;
}

export class ValidationLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ValidationLimitError";
  }
}

interface Waiter {
  key: string;
  start: () => void;
}

const MAX_KEY_CHARS = 128;

/**
 * Bounds the outbound connections validations make: per account (one account cannot take
 * every slot) and in total. Work beyond the bounds waits in one queue of bounded length.
 * Only accounts with running work have an entry, so the map holds at most `total` keys.
 */
export class ValidationLimiter {
  private readonly running = new Map<string, number>();
  private readonly waiting: Waiter[] = [];
  private runningTotal = 0;

  constructor(private readonly limits: ValidationLimits) {}

  get inFlight(): number {
    return this.runningTotal;
  }

  get queued(): number {
    return this.waiting.length;
  }

  get accountsTracked(): number {
    return this.running.size;
  }

  async run<T>(accountKey: string, fn: () => Promise<T>): Promise<T> {
    const key = accountKey.length > MAX_KEY_CHARS ? createHash("sha256").update(accountKey).digest("base64url") : accountKey;
    if (!this.canStart(key)) {
      if (this.waiting.length >= this.limits.maxQueued) {
        throw new ValidationLimitError(`${this.limits.maxQueued} validations are already waiting; try again later`);
      }
      await new Promise<void>((start) => this.waiting.push({ key, start }));
    } else {
      this.acquire(key);
    }
    try {
      return await fn();
    } finally {
      this.release(key);
    }
  }

  private canStart(key: string): boolean {
    return this.runningTotal < this.limits.total && (this.running.get(key) ?? 0) < this.limits.perAccount;
  }

  private acquire(key: string): void {
    this.runningTotal++;
    this.running.set(key, (this.running.get(key) ?? 0) + 1);
  }

  private release(key: string): void {
    this.runningTotal--;
    const left = (this.running.get(key) ?? 1) - 1;
    if (left > 0) this.running.set(key, left);
    else this.running.delete(key);
    // Start the first waiters that fit, in order; an account at its bound does not block others.
    for (let i = 0; i < this.waiting.length && this.runningTotal < this.limits.total; ) {
      const waiter = this.waiting[i] as Waiter;
      if (this.canStart(waiter.key)) {
        this.waiting.splice(i, 1);
        this.acquire(waiter.key);
        waiter.start();
      } else {
        i++;
      }
    }
  }
}
