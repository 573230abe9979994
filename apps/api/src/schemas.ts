// Request and response shapes of the issuing API. Requests are strict (an unknown field is
// a 400 naming it, so a typo such as `ttl` for `ttlSeconds` is not silently ignored).
import { z } from "zod";
import { MIN_TTL_SECONDS, PROFILE_NAMES, canonicalSerial, serialPrefix } from "@pki/x509";
import { REVOCATION_REASONS } from "@pki/authority";

const profileNames = PROFILE_NAMES as [string, ...string[]];
const reasonNames = Object.keys(REVOCATION_REASONS) as [string, ...string[]];
const STATES = ["pending", "valid", "revoked", "failed", "expired"] as const;

export const Profile = z.enum(profileNames, { error: `must be one of ${profileNames.join(", ")}` }).meta({ description: "certificate profile: mtls = serverAuth + clientAuth" });
export const Serial = z
  .string()
  .regex(/^[0-9a-f]{2,40}$/, "must be the certificate serial in lowercase hex without separators")
  .meta({ description: "lowercase hex, as in the certificate", example: "01a3f29c5b7e4d2a9f0c1b2d3e4f5a6b7c" });
/**
 * A serial as a caller types it (any case, plain or colon-separated byte pairs, as openssl
 * and browsers show it), read as the inventory's form.
 */
const SerialInput = z
  .string()
  .max(64, "must be the certificate serial: 20 bytes of hex at most")
  .transform((text, ctx) => {
    const serial = canonicalSerial(text);
    if (serial === undefined)
      ctx.addIssue({ code: "custom", message: "must be the certificate serial in hex: plain in any case (as openssl x509 -serial prints it) or colon-separated bytes (as browsers show it)" });
    return serial ?? text;
  })
  .meta({ description: "hex in any case, plain or colon-separated (01:A3:…); answered in lowercase hex without separators", example: "01a3f29c5b7e4d2a9f0c1b2d3e4f5a6b7c" });
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

export const SerialParams = z.strictObject({ serial: SerialInput });
export const NameParams = z.strictObject({ name: z.string().min(1).max(63) });

export const ListQuery = z.strictObject({
  status: z.enum(STATES, { error: `must be one of ${STATES.join(", ")}` }).optional(),
  issuerId: z.string().min(1).max(128).optional(),
  profile: Profile.optional(),
  q: z.string().min(3, "must be at least 3 characters (shorter terms would scan the whole inventory)").max(253).optional().meta({ description: "case-insensitive text in the subject or a SAN" }),
  serial: z
    .string()
    .max(64, "must be the start of a certificate serial: 20 bytes of hex at most")
    .transform((text, ctx) => {
      const prefix = serialPrefix(text);
      if (prefix === undefined) ctx.addIssue({ code: "custom", message: "must be the start of a certificate serial in hex: plain in any case or colon-separated bytes" });
      return prefix ?? text;
    })
    .optional()
    .meta({ description: "serial prefix, hex in any case, plain or colon-separated" }),
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
  provisioner: z.string().min(1).max(63).optional().meta({ description: "only certificates this provisioner (by name) enrolled" }),
  acmeAccount: z.uuid("must be an ACME account id").optional().meta({ description: "only certificates this ACME account ordered (the id ends its account URL)" }),
  internal: z
    .enum(["true", "false"], { error: "must be true or false" })
    .transform((v) => v === "true")
    .optional()
    .meta({ description: "true: only the CA's own certificates (OCSP responder, API listener); false: only services'; absent: all" }),
  order: z.enum(["asc", "desc"], { error: "must be asc or desc" }).optional().meta({ description: "by notAfter: asc (soonest first, the default) or desc" }),
});

const AuditPrefix = z.string().min(1).max(256, "must be at most 256 characters (longer than any stored value)");
export const AuditQuery = z.strictObject({
  actor: AuditPrefix.optional().meta({ description: "prefix of the actor: admin: for every operator, admin:alice for one" }),
  action: AuditPrefix.optional().meta({ description: "prefix of the action, e.g. issuer. or certificate.revoke" }),
  target: AuditPrefix.optional().meta({ description: "exact target: a serial, issuer id or name" }),
  outcome: z.enum(["ok", "denied", "error"], { error: "must be ok, denied or error" }).optional(),
  since: Instant.optional().meta({ description: "at or after this time" }),
  until: Instant.optional().meta({ description: "before this time" }),
  limit: z
    .string()
    .regex(/^\d+$/, "must be a whole number")
    .transform(Number)
    .pipe(z.number().int().min(1, "must be at least 1").max(500, "must be at most 500"))
    .optional()
    .meta({ description: "1 to 500, default 100" }),
  cursor: z.string().max(24).optional().meta({ description: "nextCursor of the previous page" }),
});

export const IssuerParams = z.strictObject({ id: z.string().min(1).max(128) });

export const IssuerRevokeBody = z.strictObject({
  reason: z.enum(["unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded", "cessationOfOperation"]).optional().meta({ description: "default keyCompromise" }),
  reissue: z.boolean({ error: "must be true or false" }).optional().meta({ description: "re-issue every affected certificate from the replacement, in the background" }),
  dryRun: z.boolean({ error: "must be true or false" }).optional().meta({ description: "only say what would happen; nothing changes" }),
});

export const ProvisionerBody = z.strictObject({
  name: z.string({ error: "is required" }).meta({ description: "lower-case letters, digits, '.', '_', '-'" }),
  profiles: z.array(Profile, { error: "must be a list of profiles" }).min(1, "needs at least one profile"),
  names: z.array(z.string(), { error: "must be a list of name patterns" }).min(1, "needs at least one name pattern").meta({
    description: "DNS:api.example.com, DNS:*.svc.example.com, DNS:.example.com, IP:10.0.0.0/8, URI:spiffe://prod.example/ns/payments/*, email:@example.com, CN:batch-*",
  }),
  maxTtlSeconds: TtlSeconds,
  hierarchy: z.string().min(1).max(64).optional().meta({ description: "issuing hierarchy, default 'default'" }),
  type: z.enum(["token", "acme"]).optional().meta({ description: "token (default): enrols with a bearer token; acme: serves ACME at /acme/NAME/directory and has no token" }),
  eab: z.boolean().optional().meta({ description: "acme only: accounts need an external account binding key" }),
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
  provisioner: z.string().nullable().meta({ description: "name of the provisioner that enrolled it" }),
  internal: z.boolean().meta({ description: "one of the CA's own certificates (OCSP responder, API listener)" }),
  autoRenew: z.boolean(),
  predecessorSerial: z.string().nullable(),
  successorSerial: z.string().nullable(),
  revokedAt: Instant.nullable(),
  revocationReason: z.string().nullable(),
});

export const CertificateDetails = CertificateSummary.extend({
  certificate: Pem.nullable().meta({ description: "null while pending or when signing failed" }),
  pem: Pem.nullable().meta({ description: "the same as certificate" }),
  chain: z.array(Pem).meta({ description: "the issuer, then up to the root" }),
  fingerprints: z
    .object({ sha256: z.string(), sha1: z.string() })
    .nullable()
    .meta({ description: "of the DER certificate, upper-case hex bytes joined by colons (as browsers and openssl x509 -fingerprint show them); null without a signed certificate" }),
  keyUsage: z.array(z.string()).meta({ description: "key usage names (digitalSignature, keyEncipherment, …); empty without a signed certificate" }),
  extendedKeyUsage: z.array(z.string()).meta({ description: "purposes (serverAuth, clientAuth, …) or OIDs" }),
  extensions: z
    .array(z.object({ oid: z.string(), name: z.string(), critical: z.boolean(), values: z.array(z.string()) }))
    .meta({ description: "every extension in the certificate: values decoded for the ones the CA knows, the DER value in hex for others" }),
});
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
  revokedAt: Instant.nullable(),
  revocationReason: z.string().nullable(),
  liveCertificates: z
    .number()
    .int()
    .optional()
    .meta({ description: "operators only: services' valid, unexpired certificates that chain to it (a root: its whole hierarchy), what revoking it affects" }),
  liveCertificatesCountedAt: Instant.optional().meta({ description: "operators only: when liveCertificates was counted (a figure is reused for a few seconds)" }),
  crl: z.object({ number: z.string(), thisUpdate: Instant, nextUpdate: Instant, ageSeconds: z.number().int() }).nullable().meta({ description: "its latest full CRL" }),
  ocsp: z.object({ responderSerial: z.string(), responderNotAfter: Instant }).nullable().meta({ description: "its newest delegated OCSP responder certificate" }),
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
  removedAt: Instant.nullable().optional().meta({ description: "set for a removed provisioner (listed only with all=true)" }),
});

export const ProvisionerListQuery = z.strictObject({
  all: z
    .enum(["true", "false"], { error: "must be true or false" })
    .transform((v) => v === "true")
    .optional()
    .meta({ description: "true: removed provisioners too (pki provisioner list --all)" }),
});

export const ProvisionerListed = Provisioner.extend({
  type: z.enum(["token", "acme"]).meta({ description: "acme: serves ACME at /acme/NAME/directory" }),
  acmeDirectory: z.string().optional().meta({ description: "ACME provisioners: the directory URL on this listener" }),
  eabRequired: z.boolean().optional().meta({ description: "ACME provisioners: new accounts need an external account binding key" }),
  unusedEabKeys: z.number().int().optional().meta({ description: "ACME provisioners: EAB keys made and not yet bound to an account" }),
});

export const EabKeyCreated = z.object({
  provisioner: z.string(),
  kid: z.string().meta({ description: "the key identifier, e.g. certbot --eab-kid" }),
  hmacKey: z.string().meta({ description: "base64url HMAC key, shown once (e.g. certbot --eab-hmac-key); only the CA's copy remains" }),
  acmeDirectory: z.string(),
});

export const ProvisionerCreated = Provisioner.extend({
  token: z.string().optional().meta({ description: "shown once; only its hash is stored (absent for ACME provisioners)" }),
  acmeDirectory: z.string().optional().meta({ description: "ACME provisioners: the directory URL" }),
});

const StateCounts = z.object({ valid: z.number().int(), revoked: z.number().int(), expired: z.number().int(), pending: z.number().int(), failed: z.number().int() });

export const Overview = z.object({
  generatedAt: Instant,
  services: StateCounts,
  internal: StateCounts.meta({ description: "the CA's own certificates (OCSP responder, API listener)" }),
  expiring: z.object({ next24h: z.number().int(), next7d: z.number().int(), next30d: z.number().int() }),
  expiryByDay: z.array(z.object({ day: z.string(), count: z.number().int() })),
  autoRenew: z.object({
    enabled: z.number().int(),
    failedRenewals: z.array(z.object({ serial: z.string(), subject: z.string(), at: Instant, reason: z.string() })),
  }),
});

export const AuditPage = z.object({
  items: z.array(
    z.object({
      id: z.string(),
      at: Instant,
      actor: z.string(),
      action: z.string(),
      target: z.string().nullable(),
      outcome: z.string(),
      sourceIp: z.string().nullable(),
      details: z.unknown(),
    }),
  ),
  nextCursor: z.string().nullable(),
});

export const IssuerActivation = z.object({ activated: z.string(), retired: z.array(z.string()) });
export const IssuerRevokePlan = z.object({
  issuerId: z.string(),
  replacement: z.string().nullable().meta({
    description:
      "what signs new certificates and the re-issues afterwards: revoking the active intermediate activates 'staged <id>' or a 'new intermediate'; revoking another one leaves 'active <id>' in place; null when the hierarchy has no active intermediate",
  }),
  affected: z.number().int(),
});
export const IssuerRevoked = z.object({
  revoked: z.string(),
  replacement: z.string().nullable().meta({ description: "ID of the intermediate that signs new certificates and the re-issues (the one that took over, or the active one already in place)" }),
  affected: z.number().int(),
});
export const ReissueProgress = z
  .object({
    total: z.number().int().meta({ description: "certificates to re-issue (0 until the revocation before the run has listed them)" }),
    reissued: z.number().int(),
    failed: z.array(z.object({ serial: z.string(), error: z.string() })).meta({ description: "the first 1000 failures; failedCount counts them all" }),
    failedCount: z.number().int(),
    done: z.boolean().meta({ description: "the run is over: every certificate was tried, or it stopped on error" }),
    stalled: z.boolean().meta({ description: "not done, and the process running it stopped reporting a minute ago (it died): revoke again with reissue to resume" }),
    error: z.string().nullable().meta({ description: "why the run stopped short, when it did" }),
    actor: z.string(),
    startedAt: Instant,
    updatedAt: Instant,
    finishedAt: Instant.nullable(),
  })
  .meta({ description: "Kept in the inventory: any API worker or replica answers." });

export const RelyingPartyView = z.object({
  ocsp: z.object({
    url: z.string().nullable(),
    status: z.enum(["good", "revoked", "unknown", "error"]),
    thisUpdate: Instant.nullable(),
    nextUpdate: Instant.nullable(),
    revokedAt: Instant.optional(),
    reason: z.string().optional(),
    error: z.string().optional(),
  }),
  crl: z.object({
    url: z.string().nullable(),
    listed: z.boolean(),
    number: z.string().nullable(),
    thisUpdate: Instant.nullable(),
    nextUpdate: Instant.nullable(),
    error: z.string().optional(),
  }),
});

// Operator tasks the console does through the same functions as the CLI: scheduler,
// CRL publication, health checks, operators' admin tokens.
export const JobRun = z.object({
  id: z.string(),
  job: z.string(),
  runner: z.string().meta({ description: "the scheduler replica, or admin:NAME / cli:USER for a run an operator started" }),
  startedAt: Instant,
  endedAt: Instant.nullable(),
  outcome: z.enum(["running", "ok", "failed"]),
  counts: z.record(z.string(), z.number()).nullable(),
  error: z.string().nullable(),
});
export const SchedulerStatus = z.object({
  jobs: z.array(
    z.object({
      job: z.string(),
      nextDueAt: Instant.nullable().meta({ description: "null until a scheduler registers the job" }),
      leaseHolder: z.string().nullable(),
      leaseUntil: Instant.nullable(),
      consecutiveFailures: z.number().int(),
      lastRun: JobRun.nullable(),
    }),
  ),
  runs: z.array(JobRun),
});
export const SchedulerQuery = z.strictObject({
  runs: z.coerce.number().int().min(1).max(200).optional().meta({ description: "how many recent runs of all jobs (default 20)" }),
});
export const JobParams = z.strictObject({ job: z.string().min(1).max(100).meta({ description: "a job name; GET /v1/scheduler lists them" }) });
export const JobRunResult = z.object({ job: z.string(), outcome: z.enum(["ok", "failed"]), counts: z.record(z.string(), z.number()), error: z.string().optional() });

const CrlInfo = z.object({ number: z.string(), entries: z.number().int(), thisUpdate: Instant, nextUpdate: Instant, ageSeconds: z.number().int() });
export const CrlStatus = z.array(z.object({ issuerId: z.string(), full: CrlInfo.nullable(), delta: CrlInfo.nullable() }));
export const CrlPublishBody = z.strictObject({ issuerId: z.string().min(1).max(100).optional().meta({ description: "one issuer; absent = every issuer that publishes" }) });
export const CrlPublished = z.object({ published: z.array(z.object({ issuerId: z.string(), full: CrlInfo, delta: CrlInfo })) });

export const DoctorReport = z.object({
  generatedAt: Instant,
  checks: z.array(z.object({ name: z.string(), status: z.enum(["ok", "warn", "fail"]), detail: z.string() })),
});

export const Operator = z.object({ name: z.string(), createdAt: Instant, revokedAt: Instant.nullable() });
export const OperatorBody = z.strictObject({
  name: z.string({ error: "is required: the operator's name" }).max(200, "is longer than any admin name").meta({ description: "^[a-z][a-z0-9._-]{0,62}$" }),
});
export const OperatorCreated = z.object({ name: z.string(), token: z.string().meta({ description: "the admin token: shown this once, stored only as SHA-256" }) });
export const OperatorParams = z.strictObject({ name: z.string().min(1).max(200) });
export const OperatorRemoved = z.object({ removed: z.string(), sessionsEnded: z.number().int() });
