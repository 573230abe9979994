// Replay nonces (RFC 8555 §6.5) that cost no write to hand out, so anonymous newNonce
// requests leave nothing behind. A nonce is its expiry and random bytes, authenticated
// with a key every worker and replica shares (kept in the database): any of them can tell
// its own nonces from forged or expired ones without a lookup. Only a nonce that a signed
// request used up is stored, until it expires, so each is good once on every replica.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

const EXPIRY_BYTES = 6;
const RANDOM_BYTES = 10;
const MAC_BYTES = 16;
const NONCE_BYTES = EXPIRY_BYTES + RANDOM_BYTES + MAC_BYTES;
/** base64url of NONCE_BYTES */
export const NONCE_CHARS = Math.ceil((NONCE_BYTES * 4) / 3);

export class NonceMinter {
  constructor(
    private readonly key: Buffer,
    private readonly ttlMs: number,
    private readonly now: () => Date,
  ) {}

  /** A new nonce, good until ttlMs from now. */
  mint(): string {
    const body = Buffer.alloc(EXPIRY_BYTES + RANDOM_BYTES);
    body.writeUIntBE(this.now().getTime() + this.ttlMs, 0, EXPIRY_BYTES);
    randomBytes(RANDOM_BYTES).copy(body, EXPIRY_BYTES);
    return Buffer.concat([body, this.mac(body)]).toString("base64url");
  }

  /** The nonce's expiry when this CA made it and it has not expired; undefined for anything else. */
  check(nonce: unknown): Date | undefined {
    if (typeof nonce !== "string" || nonce.length !== NONCE_CHARS || !/^[A-Za-z0-9_-]+$/.test(nonce)) return undefined;
    const bytes = Buffer.from(nonce, "base64url");
    const body = bytes.subarray(0, EXPIRY_BYTES + RANDOM_BYTES);
    if (bytes.length !== NONCE_BYTES || !timingSafeEqual(bytes.subarray(EXPIRY_BYTES + RANDOM_BYTES), this.mac(body))) return undefined;
    const expiresAt = body.readUIntBE(0, EXPIRY_BYTES);
    return expiresAt > this.now().getTime() ? new Date(expiresAt) : undefined;
  }

  private mac(body: Buffer): Buffer {
    return createHmac("sha256", this.key).update(body).digest().subarray(0, MAC_BYTES);
  }
}
