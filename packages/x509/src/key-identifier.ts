import { createHash } from "node:crypto";
import { children, contents, readTlv } from "@pki/der";

/** RFC 5280 §4.1.2.2 method 1: SHA-1 of the subjectPublicKey BIT STRING contents. */
export function subjectKeyIdentifier(spki: Buffer): Buffer {
  const [, keyBits] = children(spki, readTlv(spki));
  return createHash("sha1").update(contents(spki, keyBits!).subarray(1)).digest();
}
