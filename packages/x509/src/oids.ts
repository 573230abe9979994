// The object identifiers the CA writes and reads, named once for every encoder, parser
// and lint rule.
export const OID = {
  // attribute types (RFC 5280 §4.1.2.4)
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  // certificate and CRL extensions (RFC 5280 §4.2, §5.2, §5.3)
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  basicConstraints: "2.5.29.19",
  crlNumber: "2.5.29.20",
  crlReason: "2.5.29.21",
  invalidityDate: "2.5.29.24",
  deltaCrlIndicator: "2.5.29.27",
  issuingDistributionPoint: "2.5.29.28",
  crlDistributionPoints: "2.5.29.31",
  authorityKeyIdentifier: "2.5.29.35",
  extKeyUsage: "2.5.29.37",
  freshestCrl: "2.5.29.46",
  authorityInfoAccess: "1.3.6.1.5.5.7.1.1",
  ocspNoCheck: "1.3.6.1.5.5.7.48.1.5",
  // PKCS#9 extensionRequest, the CSR attribute that carries requested extensions
  extensionRequest: "1.2.840.113549.1.9.14",
  // extended key usages (RFC 5280 §4.2.1.12)
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
  ocspSigning: "1.3.6.1.5.5.7.3.9",
  // access methods (RFC 5280 §4.2.2.1)
  ocsp: "1.3.6.1.5.5.7.48.1",
  caIssuers: "1.3.6.1.5.5.7.48.2",
} as const;
