// Request and response shapes of the issuing API. Requests are strict (an unknown field is
// a 400 naming it, so a typo such as `ttl` for `ttlSeconds` is not silently ignored).
import { z } from "zod";
import { MIN_TTL_SECONDS, PROFILE_NAMES, REVOCATION_REASONS } from "@pki/ca-core";

const profileNames = PROFILE_NAMES as [string, ...string[]];
const reasonNames = Object.keys(REVOCATION_REASONS) as [string, ...string[]];
const STATES = ["pending", "valid", "revoked", "failed", "expired"] as const;

export const Profile = z.enum(profileNames, { error: `must be one of ${profileNames.join(", ")}` }).meta({ description: "certificate profile: mtls = serverAuth + clientAuth" });
export const Serial = z
  .string()
  .regex(/^[0-9a-f]{2,40}$/, "must be the certificate serial in lowercase hex without separators")
  .meta({ description: "lowercase hex, as in the certificate", example: "01a3f29c5b7e4d2a9f0c1b2d3e4f5a6b7c" });
const Instant = z.iso.datetime({ offset: true }).meta({ description: "RFC 3339, UTC" });
const Pem = z.string().meta({ description: "PEM" });
const TtlSeconds = z
  .number({ error: "must be a number of seconds" })
  .int("must be a whole number of seconds")
  .min(MIN_TTL_SECONDS, `must be at least ${MIN_TTL_SECONDS} seconds (a shorter certificate would expire before it could be used)`);

export const IssueBody = z.strictObject({
  csr: z.string({ error: "is required: a PEM PKCS#10 request" }).min(1, "is empty").max(200_000, "is too long for a CSR").meta({ description: "PKCS#10 CSR, PEM" }),
  profile: Profile.optional(),
  ttlSeconds: TtlSeconds.optional().meta({ description: "requested lifetime; clipped to the provisioner's and the CA's maximum and to the issuer's notAfter" }),
  autoRenew: z.boolean({ error: "must be true or false" }).optional().meta({ description: "mark for renewal by the scheduler" }),
});
export type IssueBody = z.infer<typeof IssueBody>;

/** With `application/pkcs10` the body is the DER CSR and the options come from the query. */
export const IssueQuery = z.strictObject({
  profile: Profile.optional(),
  ttlSeconds: z
    .string()
    .regex(/^[1-9]\d{0,9}$/, "must be a positive whole number of seconds")
    .transform(Number)
    .pipe(z.number().min(MIN_TTL_SECONDS, `must be at least ${MIN_TTL_SECONDS} seconds (a shorter certificate would expire before it could be used)`))
    .optional()
    .meta({ description: "only with application/pkcs10 bodies" }),
  autoRenew: z
    .enum(["true", "false"], { error: "must be true or false" })
    .transform((v) => v === "true")
    .optional()
    .meta({ description: "only with application/pkcs10 bodies" }),
});

export const RenewBody = z.strictObject({
  csr: z.string().min(1, "is empty").max(200_000, "is too long for a CSR").optional().meta({ description: "a new CSR to change the key; its names must be the certificate's names" }),
});

export const RevokeBody = z.strictObject({
  reason: z
    .enum(reasonNames, { error: `must be one of ${reasonNames.join(", ")}` })
    .optional()
    .meta({ description: "RFC 5280 reason name; default unspecified" }),
});

export const SerialParams = z.strictObject({ serial: Serial });
export const NameParams = z.strictObject({ name: z.string().min(1).max(63) });

export const ListQuery = z.strictObject({
  status: z.enum(STATES, { error: `must be one of ${STATES.join(", ")}` }).optional(),
  issuerId: z.string().min(1).max(128).optional(),
  profile: Profile.optional(),
  q: z.string().min(3, "must be at least 3 characters (shorter terms would scan the whole inventory)").max(253).optional().meta({ description: "case-insensitive text in the subject or a SAN" }),
  expiresBefore: Instant.optional(),
  expiresAfter: Instant.optional(),
  limit: z
    .string()
    .regex(/^\d+$/, "must be a whole number")
    .transform(Number)
    .pipe(z.number().int().min(1, "must be at least 1").max(1000, "must be at most 1000"))
    .optional()
    .meta({ description: "1 to 1000, default 100" }),
  cursor: z.string().max(200).optional().meta({ description: "nextCursor of the previous page" }),
});

export const ProvisionerBody = z.strictObject({
  name: z.string({ error: "is required" }).meta({ description: "lower-case letters, digits, '.', '_', '-'" }),
  profiles: z.array(Profile, { error: "must be a list of profiles" }).min(1, "needs at least one profile"),
  names: z.array(z.string(), { error: "must be a list of name patterns" }).min(1, "needs at least one name pattern").meta({
    description: "DNS:api.example.com, DNS:*.svc.example.com, DNS:.example.com, IP:10.0.0.0/8, URI:spiffe://prod.example/ns/payments/*, email:@example.com, CN:batch-*",
  }),
  maxTtlSeconds: TtlSeconds,
  hierarchy: z.string().min(1).max(64).optional().meta({ description: "issuing hierarchy, default 'default'" }),
});

export const ProvisionerPatch = z
  .strictObject({
    disabled: z.boolean({ error: "must be true or false" }).optional(),
    profiles: z.array(Profile, { error: "must be a list of profiles" }).min(1, "needs at least one profile").optional(),
    names: z.array(z.string(), { error: "must be a list of name patterns" }).min(1, "needs at least one name pattern").optional(),
    maxTtlSeconds: TtlSeconds.optional(),
  })
  .refine((p) => Object.values(p).some((v) => v !== undefined), { message: "change at least one of disabled, profiles, names, maxTtlSeconds" });

// ----- responses

export const Problem = z.object({ type: z.string(), title: z.string(), status: z.number().int(), detail: z.string() }).meta({ description: "RFC 9457 problem details; detail says what was wrong" });

export const IssuedCertificate = z.object({
  serial: Serial,
  certificate: Pem,
  chain: z.array(Pem).meta({ description: "the issuing intermediate, then up to the root" }),
  issuerId: z.string(),
  profile: Profile,
  subject: z.string(),
  sans: z.array(z.string()),
  notBefore: Instant,
  notAfter: Instant,
});

const CertificateSummary = z.object({
  serial: Serial,
  status: z.enum(STATES),
  issuerId: z.string(),
  profile: z.string(),
  subject: z.string(),
  sans: z.array(z.string()),
  keyAlgorithm: z.string(),
  notBefore: Instant,
  notAfter: Instant,
  requester: z.string(),
  provisionerId: z.string().nullable(),
  autoRenew: z.boolean(),
  predecessorSerial: z.string().nullable(),
  successorSerial: z.string().nullable(),
  revokedAt: Instant.nullable(),
  revocationReason: z.string().nullable(),
});

export const CertificateDetails = CertificateSummary.extend({ certificate: Pem.nullable().meta({ description: "null while pending or when signing failed" }) });
export const CertificateList = z.object({ items: z.array(CertificateSummary), nextCursor: z.string().nullable() });

export const Revocation = z.object({
  serial: Serial,
  status: z.literal("revoked"),
  revokedAt: Instant,
  reason: z.string(),
  successorsRevoked: z.array(Serial).meta({ description: "with keyCompromise: the live successors (renewals, transitively) revoked with it" }),
});

export const Issuer = z.object({
  id: z.string(),
  hierarchy: z.string(),
  role: z.enum(["root", "intermediate"]),
  status: z.enum(["staged", "active", "retired", "revoked", "expired"]),
  parentId: z.string().nullable(),
  subject: z.string(),
  serial: z.string(),
  notBefore: Instant,
  notAfter: Instant,
  keyAlgorithm: z.string(),
  certificate: Pem,
});

export const Provisioner = z.object({
  id: z.string(),
  name: z.string(),
  profiles: z.array(z.string()),
  names: z.array(z.string()),
  maxTtlSeconds: z.number().int(),
  hierarchy: z.string(),
  disabled: z.boolean(),
  createdAt: Instant,
});

export const ProvisionerCreated = Provisioner.extend({ token: z.string().meta({ description: "shown once; only its hash is stored" }) });
