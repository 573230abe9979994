// Minimal DER for the load generators: an OCSP request around one CertID.
function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  while (n > 0) {
    bytes.unshift(n & 0xff);
    n >>= 8;
  }
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export const tlv = (tag: number, ...content: Buffer[]): Buffer => {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
};
export const seq = (...content: Buffer[]) => tlv(0x30, ...content);

/** OCSPRequest { tbsRequest { requestList { Request { reqCert } } } }, no nonce, no signature. */
export function ocspRequest(certIdDer: Buffer): Buffer {
  return seq(seq(seq(seq(certIdDer))));
}

/** RFC 6960 Appendix A.1 GET path: /base64(DER), URL-encoded. */
export function ocspGetPath(prefix: string, request: Buffer): string {
  return `${prefix}/${encodeURIComponent(request.toString("base64"))}`;
}
