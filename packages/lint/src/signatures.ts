/** The signature algorithm OID each kind of issuer key must sign with (certificates and CRLs). */
export const SIGNATURE_FOR_KEY: Record<string, string> = {
  "ECDSA-P256": "1.2.840.10045.4.3.2",
  "ECDSA-P384": "1.2.840.10045.4.3.3",
  "RSA-2048": "1.2.840.113549.1.1.11",
  "RSA-3072": "1.2.840.113549.1.1.11",
  "RSA-4096": "1.2.840.113549.1.1.11",
};
