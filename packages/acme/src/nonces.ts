// Replay nonces (RFC 8555 §6.5) are stored in PostgreSQL so that any worker or replica
// accepts a nonce another one handed out, exactly once. Storing them one per answer cost a
// statement per request; this supply stores a batch in one statement and hands the nonces
// out one by one. A nonce is handed out only once it is stored, and only while at least
// half its lifetime is left, so a client always has most of the TTL to use it.
import { randomBytes } from "node:crypto";

/** Nonces stored per statement. */
const BATCH = 64;

interface StoredNonce {
  value: string;
  expiresAt: number;
}

export interface NonceSupplyOptions {
  /** stores the nonces with their expiry (one statement) */
  store: (values: string[], expiresAt: Date) => Promise<void>;
  ttlMs: number;
  now: () => Date;
  batch?: number;
}

export class NonceSupply {
  private readonly ready: StoredNonce[] = [];
  private refill: Promise<void> | undefined;
  private readonly batch: number;

  constructor(private readonly options: NonceSupplyOptions) {
    this.batch = options.batch ?? BATCH;
  }

  /** A stored, unused nonce with at least half its lifetime left. */
  async take(): Promise<string> {
    for (;;) {
      const freshAfter = this.options.now().getTime() + this.options.ttlMs / 2;
      for (let nonce = this.ready.pop(); nonce; nonce = this.ready.pop()) {
        if (nonce.expiresAt > freshAfter) return nonce.value;
      }
      // one batch in flight at a time: every waiting request shares it
      this.refill ??= this.fill().finally(() => {
        this.refill = undefined;
      });
      await this.refill;
    }
  }

  private async fill(): Promise<void> {
    const values = Array.from({ length: this.batch }, () => randomBytes(16).toString("base64url"));
    const expiresAt = this.options.now().getTime() + this.options.ttlMs;
    await this.options.store(values, new Date(expiresAt));
    for (const value of values) this.ready.push({ value, expiresAt });
  }
}
