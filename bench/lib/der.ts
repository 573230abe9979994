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

/** One DER TLV at `offset`: where its header starts, where its content starts and ends. */
export function tlvAt(buf: Buffer, offset: number): { headerStart: number; start: number; end: number } {
  let i = offset + 1;
  let length = buf[i++]!;
  if (length & 0x80) {
    const n = length & 0x7f;
    length = 0;
    for (let k = 0; k < n; k++) length = length * 256 + buf[i++]!;
  }
  return { headerStart: offset, start: i, end: i + length };
}

/**
 * The parts of an OCSPResponse (successful, BasicOCSPResponse) needed to re-sign its
 * to-be-signed data with a different serial and put it back together.
 */
export function ocspResponseParts(response: Buffer) {
  const outer = tlvAt(response, 0);
  const status = tlvAt(response, outer.start);
  const explicit = tlvAt(response, status.end);
  const responseBytes = tlvAt(response, explicit.start);
  const oid = tlvAt(response, responseBytes.start);
  const octets = tlvAt(response, oid.end);
  const basic = tlvAt(response, octets.start);
  const tbs = tlvAt(response, basic.start);
  const sigAlg = tlvAt(response, tbs.end);
  const sigBits = tlvAt(response, sigAlg.end);
  return {
    statusBytes: response.subarray(status.headerStart, status.end),
    oidBytes: response.subarray(oid.headerStart, oid.end),
    tbs: response.subarray(tbs.headerStart, tbs.end),
    sigAlg: response.subarray(sigAlg.headerStart, sigAlg.end),
    /** anything after the signature: the [0] certs */
    rest: response.subarray(sigBits.end, basic.end),
    rebuild(tbsBytes: Buffer, signatureDer: Buffer): Buffer {
      const basicSeq = seq(tbsBytes, this.sigAlg, tlv(0x03, Buffer.from([0]), signatureDer), this.rest);
      return seq(this.statusBytes, tlv(0xa0, seq(this.oidBytes, tlv(0x04, basicSeq))));
    },
  };
}
