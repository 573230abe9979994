import { createHash } from "node:crypto";

/** The HTTP ETag of a DER response: a digest of its bytes, so any change is a new tag. */
export const derEtag = (der: Buffer) => `"${createHash("sha256").update(der).digest("base64url").slice(0, 32)}"`;
