// Builds to-be-signed certificates with @peculiar/asn1-x509 and assembles them with a
// token signature. The CA builds the TBS itself (rather than through @peculiar/x509's
// generator) so that it can lint and record exactly the bytes the token will sign.
import { randomBytes } from "node:crypto";
import { AsnConvert, OctetString } from "@peculiar/asn1-schema";
import {
  AccessDescription,
  AlgorithmIdentifier,
  AttributeTypeAndValue,
  AttributeValue,
  AuthorityInfoAccessSyntax,
  AuthorityKeyIdentifier,
  BasicConstraints,
  CRLDistributionPoints,
  DistributionPoint,
  DistributionPointName,
  ExtendedKeyUsage,
  Extension,
  Extensions,
  GeneralName,
  KeyIdentifier,
  KeyUsage,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  SubjectPublicKeyInfo,
  TBSCertificate,
  Validity,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_cRLDistributionPoints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  id_pe_authorityInfoAccess,
} from "@peculiar/asn1-x509";
import * as der from "@pki/der";
import { SIGNATURE_ALGORITHMS, type KeyAlgorithm } from "./algorithms.ts";
import { serialize } from "./der.ts";
import { subjectKeyIdentifier } from "./key-identifier.ts";
import type { San } from "./names.ts";
import { OID } from "./oids.ts";
import { KEY_USAGE_BITS, keyUsagesFor, type Profile } from "./profiles.ts";
import type { Signer } from "./signer.ts";

/** lowercase hex of the serial's DER INTEGER contents, as the certificate shows it */
export type SerialHex = string;

/**
 * 128 bits from the CSPRNG behind a fixed 0x01 prefix byte (as Boulder prefixes its
 * serials): positive, minimally encoded, always 17 octets, never more than RFC 5280's 20.
 */
export function newSerial(): { hex: SerialHex; bytes: Buffer } {
  const bytes = Buffer.concat([Buffer.from([0x01]), randomBytes(16)]);
  return { hex: bytes.toString("hex"), bytes };
}

export function signatureAlgorithm(key: KeyAlgorithm): AlgorithmIdentifier {
  return AsnConvert.parse(SIGNATURE_ALGORITHMS[key].identifierDer, AlgorithmIdentifier);
}

export function buildName(parts: { commonName?: string | undefined; organization?: string | undefined }): Name {
  const rdns: RelativeDistinguishedName[] = [];
  const add = (type: string, value: string) => rdns.push(new RelativeDistinguishedName([new AttributeTypeAndValue({ type, value: new AttributeValue({ utf8String: value }) })]));
  if (parts.organization) add(OID.organization, parts.organization);
  if (parts.commonName) add(OID.commonName, parts.commonName);
  return new Name(rdns);
}

const ext = (extnID: string, critical: boolean, value: unknown) => new Extension({ extnID, critical, extnValue: new OctetString(AsnConvert.serialize(value)) });

export interface IssuerIdentity {
  /** DER of the issuer certificate's subject, copied byte for byte into the issuer field */
  subjectDer: Buffer;
  subjectKeyId: Buffer;
  keyAlgorithm: KeyAlgorithm;
}

export interface RevocationUrls {
  crl: string;
  /** delta CRL, advertised as Freshest CRL where delta CRLs are published */
  deltaCrl?: string;
  ocsp: string;
  caIssuers: string;
}

export interface TbsParams {
  serial: Buffer;
  issuer: IssuerIdentity;
  subject: Name;
  publicKeySpki: Buffer;
  notBefore: Date;
  notAfter: Date;
  extensions: Extension[];
}

export function buildTbs(params: TbsParams): Buffer {
  const tbs = new TBSCertificate({
    version: 2,
    serialNumber: new Uint8Array(params.serial).buffer,
    signature: signatureAlgorithm(params.issuer.keyAlgorithm),
    issuer: AsnConvert.parse(params.issuer.subjectDer, Name),
    validity: new Validity({ notBefore: params.notBefore, notAfter: params.notAfter }),
    subject: params.subject,
    subjectPublicKeyInfo: AsnConvert.parse(params.publicKeySpki, SubjectPublicKeyInfo),
    extensions: new Extensions(params.extensions),
  });
  return serialize(tbs);
}

/** The keyUsage extension for `profile`'s usages: @peculiar/asn1-x509 numbers flags 1 << (RFC 5280 bit number). */
function keyUsage(profile: Profile, keyAlgorithm: KeyAlgorithm): KeyUsage {
  return new KeyUsage(keyUsagesFor(profile, keyAlgorithm).reduce((flags, usage) => flags | (1 << KEY_USAGE_BITS[usage]), 0));
}

function basicConstraints(profile: Profile): BasicConstraints {
  const bc = profile.basicConstraints;
  return new BasicConstraints(bc.ca ? { cA: true, ...(bc.pathLength !== undefined ? { pathLenConstraint: bc.pathLength } : {}) } : { cA: false });
}

export function caExtensions(opts: { profile: Profile; publicKeySpki: Buffer; keyAlgorithm: KeyAlgorithm; issuer?: IssuerIdentity; urls?: RevocationUrls }): Extension[] {
  const list = [
    ext(id_ce_basicConstraints, true, basicConstraints(opts.profile)),
    ext(id_ce_keyUsage, true, keyUsage(opts.profile, opts.keyAlgorithm)),
    ext(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(subjectKeyIdentifier(opts.publicKeySpki))),
  ];
  if (opts.issuer) list.push(ext(id_ce_authorityKeyIdentifier, false, new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(opts.issuer.subjectKeyId) })));
  if (opts.urls) list.push(...revocationExtensions(opts.urls));
  return list;
}

function revocationExtensions(urls: RevocationUrls): Extension[] {
  const point = (url: string) => new DistributionPoint({ distributionPoint: new DistributionPointName({ fullName: [new GeneralName({ uniformResourceIdentifier: url })] }) });
  const list = [
    ext(id_ce_cRLDistributionPoints, false, new CRLDistributionPoints([point(urls.crl)])),
    ext(
      id_pe_authorityInfoAccess,
      false,
      new AuthorityInfoAccessSyntax([
        new AccessDescription({ accessMethod: OID.ocsp, accessLocation: new GeneralName({ uniformResourceIdentifier: urls.ocsp }) }),
        new AccessDescription({ accessMethod: OID.caIssuers, accessLocation: new GeneralName({ uniformResourceIdentifier: urls.caIssuers }) }),
      ]),
    ),
  ];
  if (urls.deltaCrl) list.push(ext(OID.freshestCrl, false, new CRLDistributionPoints([point(urls.deltaCrl)])));
  return list;
}

export interface LeafExtensionParams {
  publicKeySpki: Buffer;
  keyAlgorithm: KeyAlgorithm;
  issuer: IssuerIdentity;
  profile: Profile;
  sans: readonly San[];
  /** SAN is critical when the subject is empty (RFC 5280 §4.2.1.6) */
  subjectEmpty: boolean;
  urls: RevocationUrls;
}

export function leafExtensions(p: LeafExtensionParams): Extension[] {
  const list = [
    ext(id_ce_basicConstraints, true, basicConstraints(p.profile)),
    ext(id_ce_keyUsage, true, keyUsage(p.profile, p.keyAlgorithm)),
    ext(id_ce_extKeyUsage, false, new ExtendedKeyUsage([...p.profile.extendedKeyUsages])),
    ext(id_ce_subjectKeyIdentifier, false, new SubjectKeyIdentifier(subjectKeyIdentifier(p.publicKeySpki))),
    ext(id_ce_authorityKeyIdentifier, false, new AuthorityKeyIdentifier({ keyIdentifier: new KeyIdentifier(p.issuer.subjectKeyId) })),
  ];
  if (p.sans.length) list.push(ext(id_ce_subjectAltName, p.subjectEmpty, new SubjectAlternativeName(p.sans.map(generalName))));
  list.push(...revocationExtensions(p.urls));
  if (p.profile.ocspNoCheck) list.push(new Extension({ extnID: OID.ocspNoCheck, critical: false, extnValue: new OctetString(new Uint8Array([0x05, 0x00]).buffer) }));
  return list;
}

function generalName(san: San): GeneralName {
  switch (san.type) {
    case "DNS":
      return new GeneralName({ dNSName: san.value });
    case "IP":
      return new GeneralName({ iPAddress: san.value });
    case "URI":
      return new GeneralName({ uniformResourceIdentifier: san.value });
    case "email":
      return new GeneralName({ rfc822Name: san.value });
  }
}

/** Signs the TBS on the token and assembles the certificate DER around exactly those bytes. */
export async function signCertificate(tbsDer: Buffer, signer: Signer): Promise<Buffer> {
  const signature = await signer.sign(tbsDer);
  // The signed TBS bytes go into the certificate untouched, with no parse/re-serialise round trip.
  return der.sequence(tbsDer, SIGNATURE_ALGORITHMS[signer.algorithm].identifierDer, der.bitString(signature));
}
