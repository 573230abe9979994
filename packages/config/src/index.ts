// The only module that reads the environment. Everything else receives a Config.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { isIP } from "node:net";
import { availableParallelism } from "node:os";
import { z } from "zod";
import { estimatedEntropyBits } from "./token-entropy.ts";

const KEY_ALGORITHMS = ["ECDSA-P256", "ECDSA-P384", "RSA-2048", "RSA-3072", "RSA-4096"] as const;
const SOFTHSM_MODULES = ["/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so", "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"];

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
const splitList = (text: string) =>
  text
    .split(",")
    .map((item) => item.trim())
    .filter(Boolean);
/** An IPv4 or IPv6 network in CIDR form (a bare address is its own /32 or /128). */
function isNetwork(text: string): boolean {
  const [address = "", prefix, rest] = text.split("/");
  const version = isIP(address);
  if (!version || rest !== undefined) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128));
}
const cron = z.string().regex(/^\s*\S+(\s+\S+){4,5}\s*$/, "must be a cron expression of 5 or 6 fields");

/** Every setting, its default and its check. The README's configuration table mirrors this. */
const schema = z.object({
  PKI_DATA_DIR: z.string().min(1).default("./.pki"),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, "must be a postgresql:// URL")
    .optional(),
  PKI_HTTP_PORT: port.default(8080),
  PKI_API_PORT: port.default(8443),
  PKI_BIND: z.string().min(1).default("127.0.0.1"),
  PKI_PUBLIC_URL: z
    .url()
    .regex(/^https?:\/\//, "must be an http:// or https:// URL")
    .optional()
    .transform((u) => u?.replace(/\/+$/, "")),
  /** the database URL (with its password) from a secret file instead of the environment */
  DATABASE_URL_FILE: z.string().optional(),
  /** checked for entropy once read (it may come from PKI_BOOTSTRAP_ADMIN_TOKEN_FILE) */
  PKI_BOOTSTRAP_ADMIN_TOKEN: z.string().optional(),
  PKI_BOOTSTRAP_ADMIN_TOKEN_FILE: z.string().optional(),
  PKCS11_MODULE: z.string().optional(),
  SOFTHSM2_CONF: z.string().optional(),
  PKI_ROOT_TOKEN_LABEL: z.string().min(1).max(32).default("pki-root"),
  PKI_ISSUING_TOKEN_LABEL: z.string().min(1).max(32).default("pki-issuing"),
  PKI_ROOT_PIN: z.string().min(4).optional(),
  PKI_ROOT_PIN_FILE: z.string().optional(),
  PKI_ISSUING_PIN: z.string().min(4).optional(),
  PKI_ISSUING_PIN_FILE: z.string().optional(),
  PKI_ROOT_KEY_ALGORITHM: z.enum(KEY_ALGORITHMS).default("ECDSA-P384"),
  PKI_ISSUING_KEY_ALGORITHM: z.enum(KEY_ALGORITHMS).default("ECDSA-P256"),
  PKI_CA_NAME: z.string().min(1).max(64).default("PKI"),
  PKI_ORGANIZATION: z.string().min(1).max(64).optional(),
  PKI_ROOT_TTL_DAYS: positiveInt.default(3650),
  PKI_INTERMEDIATE_TTL_DAYS: positiveInt.default(365),
  PKI_DEFAULT_TTL_SECONDS: positiveInt.default(86400),
  PKI_MAX_TTL_SECONDS: positiveInt.default(90 * 86400),
  /** notBefore is set this far in the past to tolerate clients whose clocks run slow */
  PKI_BACKDATE_SECONDS: z.coerce.number().int().min(0).max(3600).default(60),
  PKI_SIGNING_SESSIONS: positiveInt.max(64).default(4),
  /** host names and addresses in the issuing API's own TLS certificate, comma-separated */
  PKI_API_TLS_NAMES: z.string().default("localhost,127.0.0.1"),
  /** lifetime of the API's own TLS certificate; it is renewed after two thirds of it */
  PKI_API_TLS_TTL_SECONDS: positiveInt.min(300).default(86400),
  /** failed authentications per source address per minute before the API answers 429 */
  PKI_API_AUTH_FAILURE_LIMIT: positiveInt.default(20),
  /** issuing API processes sharing its port; "auto": apps/api one per core on PostgreSQL, else (and in npm start) one */
  PKI_API_WORKERS: z.union([z.literal("auto"), positiveInt.max(64)]).default("auto"),
  /** niceness of each API worker (0-19): bulk issuance yields the CPU to OCSP answers and the other roles */
  PKI_API_WORKER_NICE: z.coerce.number().int().min(0).max(19).default(5),
  /** an operator console session ends after this long without a request (its absolute lifetime is 12 h) */
  PKI_CONSOLE_IDLE_SECONDS: positiveInt.max(12 * 3600).default(900),
  PKI_LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** who runs the CLI, for the audit log ("cli:<name>"); the login name when unset */
  PKI_OPERATOR: z.string().min(1).max(64).optional(),
  USER: z.string().optional(),
  INIT_CWD: z.string().min(1).optional(),
  /** full CRL lifetime (nextUpdate - thisUpdate) and how often it is re-signed anyway */
  PKI_CRL_VALIDITY_SECONDS: positiveInt.min(3600).default(86400),
  PKI_CRL_REFRESH_SECONDS: positiveInt.min(60).default(6 * 3600),
  /** delta CRL lifetime; a delta is also re-signed after every (debounced) revocation */
  PKI_DELTA_CRL_VALIDITY_SECONDS: positiveInt.min(300).default(3600),
  /** revocations are gathered until none arrived for this long, then CRLs are re-signed ... */
  PKI_CRL_DEBOUNCE_MS: positiveInt.default(2000),
  /** ... or until the first of them waited this long, whichever comes first */
  PKI_CRL_MAX_WAIT_MS: positiveInt.default(30_000),
  /** root CRL lifetime; signed in ceremonies with the root key (pki crl sign-root) */
  PKI_ROOT_CRL_DAYS: positiveInt.max(366).default(180),
  /** pre-signed OCSP response lifetime; refreshed when half of it is left */
  PKI_OCSP_VALIDITY_SECONDS: positiveInt.min(600).default(86400),
  /** delegated OCSP responder certificate lifetime; renewed when half of it is left */
  PKI_OCSP_RESPONDER_TTL_SECONDS: positiveInt.min(3600).default(7 * 86400),
  /** requests carrying a nonce: "ignore" serves the pre-signed answer, "echo" signs live */
  PKI_OCSP_NONCE: z.enum(["ignore", "echo"]).default("ignore"),
  /** live OCSP signatures per second per responder (unknown serials, nonces, several certificates); beyond it, tryLater */
  PKI_OCSP_LIVE_SIGN_PER_SECOND: z.coerce.number().positive().default(200),
  /** upper bound on Cache-Control max-age of OCSP and CRL answers (never past nextUpdate) */
  PKI_OCSP_MAX_AGE_SECONDS: z.coerce.number().int().min(0).default(300),
  PKI_CRL_MAX_AGE_SECONDS: z.coerce.number().int().min(0).default(300),
  /** how often serving processes look in the database for responses and CRLs others wrote */
  PKI_REVOCATION_POLL_MS: positiveInt.default(250),
  // Scheduler. Each job has its own cron expression (5 or 6 fields, node-cron syntax, UTC).
  PKI_SCHEDULER_ENABLED: z.enum(["true", "false"]).default("true"),
  PKI_SCHEDULE_RENEWAL: cron.default("*/5 * * * *"),
  PKI_SCHEDULE_EXPIRY_ALERTS: cron.default("*/15 * * * *"),
  PKI_SCHEDULE_ISSUER_HEALTH: cron.default("0 * * * *"),
  PKI_SCHEDULE_ISSUER_LIFECYCLE: cron.default("* * * * *"),
  PKI_SCHEDULE_WEBHOOK_DELIVERY: cron.default("* * * * *"),
  /** closes issuance intents a crash or outage left pending */
  PKI_SCHEDULE_RECONCILE_INTENTS: cron.default("*/5 * * * *"),
  /** compares this machine's clock with the database server's */
  PKI_SCHEDULE_CLOCK_CHECK: cron.default("* * * * *"),
  /** destroys the token keys of expired delegated OCSP responder certificates */
  PKI_SCHEDULE_RESPONDER_KEY_CLEANUP: cron.default("17 * * * *"),
  /** auto-renew certificates are re-issued once this fraction of their lifetime has passed */
  PKI_RENEW_AT_FRACTION: z.coerce
    .number()
    .gt(0)
    .lt(1)
    .default(2 / 3),
  /** days before notAfter at which expiry alerts go out, comma-separated */
  PKI_EXPIRY_ALERT_DAYS: z
    .string()
    .default("7,3,1")
    .transform((v) => v.split(",").map((d) => Number(d.trim())))
    .refine((days) => days.length > 0 && days.every((d) => Number.isFinite(d) && d > 0), "must be positive numbers of days, comma-separated"),
  /** an active intermediate is flagged when it would cut the longest leaf short within this many days */
  PKI_ISSUER_ROTATION_LEAD_DAYS: positiveInt.default(30),
  /** JSON POST target for alerts and renewal announcements; unset keeps them in the log and metrics only */
  PKI_WEBHOOK_URL: z
    .url()
    .regex(/^https?:\/\//, "must be an http:// or https:// URL")
    .optional(),
  /** if set, each webhook carries X-PKI-Signature: sha256=HMAC(body) */
  PKI_WEBHOOK_SECRET: z.string().min(16, "must be at least 16 characters").optional(),
  PKI_WEBHOOK_TIMEOUT_MS: positiveInt.default(10_000),
  /** retry delays double from 30 s up to this bound */
  PKI_WEBHOOK_MAX_BACKOFF_SECONDS: positiveInt.default(3600),
  /** a job's lease; a crashed scheduler's job is taken over after this */
  PKI_SCHEDULER_LEASE_SECONDS: positiveInt.min(30).default(300),
  /** a failed job is retried after this, doubling per consecutive failure up to an hour */
  PKI_SCHEDULER_RETRY_SECONDS: positiveInt.default(60),
  /** how often serving processes re-read the issuers (rotation without restart); 0 turns it off */
  PKI_KEYRING_RELOAD_SECONDS: z.coerce.number().int().min(0).default(15),
  // ACME challenge validation: where the CA connects to prove a requester controls a name.
  /** host:port (or [v6]:port) of the DNS server for every validation and CAA lookup; the system resolver when unset */
  PKI_ACME_RESOLVER: z
    .string()
    .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/, "must be host:port or [ipv6]:port of a DNS server")
    .optional(),
  /** http-01 connects here (RFC 8555 says 80; other values are for tests and lab setups) */
  PKI_ACME_HTTP01_PORT: port.default(80),
  /** tls-alpn-01 connects here (RFC 8737 says 443) */
  PKI_ACME_TLSALPN01_PORT: port.default(443),
  /** CAA issuer domain names that mean this CA (comma-separated); empty skips the CAA check */
  PKI_ACME_CAA_IDENTITIES: z.string().default(""),
  /** new orders per ACME account per hour, and per ACME provisioner per hour */
  PKI_ACME_ORDERS_PER_ACCOUNT_HOUR: positiveInt.default(300),
  PKI_ACME_ORDERS_PER_PROVISIONER_HOUR: positiveInt.default(10_000),
  /** failed (or still running) challenge validations per account per hour, and failed ones per provisioner per hour */
  PKI_ACME_FAILED_VALIDATIONS_PER_ACCOUNT_HOUR: positiveInt.default(60),
  PKI_ACME_FAILED_VALIDATIONS_PER_PROVISIONER_HOUR: positiveInt.default(1000),
  /**
   * where ACME challenges are validated: "child", a keyless process each API process starts
   * on the first validation; "external", separate validator processes (apps/acme-validator)
   */
  PKI_ACME_VALIDATOR: z.enum(["child", "external"]).default("child"),
  /** new ACME accounts per source address (an IPv6 /64) per hour, across provisioners, and per provisioner per hour */
  PKI_ACME_NEW_ACCOUNTS_PER_ADDRESS_HOUR: positiveInt.default(20),
  PKI_ACME_NEW_ACCOUNTS_PER_PROVISIONER_HOUR: positiveInt.default(1000),
  /** networks (CIDR, comma-separated) validation never connects to, besides link-local and the metadata addresses */
  PKI_ACME_DENIED_NETWORKS: z
    .string()
    .default("")
    .refine((text) => splitList(text).every(isNetwork), "must be comma-separated networks such as 10.0.0.0/8 or fd00::/8"),
});

/** A key authorization is ~90 bytes; anything near this bound is not one. */
const ACME_VALIDATION_MAX_RESPONSE_BYTES = 8192;
const ACME_VALIDATION_TIMEOUT_MS = 10_000;

export type KeyAlgorithmName = (typeof KEY_ALGORITHMS)[number];

export interface TokenConfig {
  label: string;
  /** undefined when no PIN is configured (e.g. the root token outside ceremonies) */
  pin: string | undefined;
  /** where the quickstart keeps a generated PIN, mode 0600 */
  pinFile: string;
}

export interface Config {
  dataDir: string;
  databaseUrl: string | undefined;
  /** PGlite data dir, used when databaseUrl is unset */
  embeddedDatabaseDir: string;
  http: { bind: string; port: number; apiPort: number };
  publicUrl: string;
  bootstrapAdminToken: string | undefined;
  hsm: {
    modulePath: string | undefined;
    /** set for SoftHSM: the conf file SOFTHSM2_CONF must name */
    softhsmConf: string;
    root: TokenConfig;
    issuing: TokenConfig;
    signingSessions: number;
  };
  ca: {
    name: string;
    organization: string | undefined;
    rootKeyAlgorithm: KeyAlgorithmName;
    issuingKeyAlgorithm: KeyAlgorithmName;
    rootTtlDays: number;
    intermediateTtlDays: number;
    defaultTtlSeconds: number;
    maxTtlSeconds: number;
    backdateSeconds: number;
  };
  logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /** the CLI's actor in the audit log */
  operator: string;
  /** where the user ran the command: `npm run pki` starts in the checkout, npm says where the caller was (INIT_CWD) */
  invocationDir: string;
  revocation: {
    crlValiditySeconds: number;
    crlRefreshSeconds: number;
    deltaCrlValiditySeconds: number;
    crlDebounceMs: number;
    crlMaxWaitMs: number;
    rootCrlDays: number;
    ocspValiditySeconds: number;
    ocspResponderTtlSeconds: number;
    ocspNonce: "ignore" | "echo";
    ocspLiveSignPerSecond: number;
    ocspMaxAgeSeconds: number;
    crlMaxAgeSeconds: number;
    pollMs: number;
  };
  api: { tlsNames: string[]; tlsTtlSeconds: number; authFailureLimit: number; workers: number; allInOneWorkers: number; workerNice: number; consoleIdleSeconds: number };
  /** the ACME server; challenge validation settings are in `challenges` */
  acme: {
    caaIdentities: string[];
    validator: "child" | "external";
    rateLimits: {
      ordersPerAccountHour: number;
      ordersPerProvisionerHour: number;
      failedValidationsPerAccountHour: number;
      failedValidationsPerProvisionerHour: number;
      newAccountsPerAddressHour: number;
      newAccountsPerProvisionerHour: number;
    };
  };
  scheduler: {
    enabled: boolean;
    schedules: {
      renewal: string;
      expiryAlerts: string;
      issuerHealth: string;
      issuerLifecycle: string;
      webhookDelivery: string;
      reconcileIntents: string;
      clockCheck: string;
      responderKeyCleanup: string;
    };
    renewAtFraction: number;
    expiryAlertDays: number[];
    issuerRotationLeadDays: number;
    webhook: { url: string | undefined; secret: string | undefined; timeoutMs: number; maxBackoffSeconds: number };
    leaseSeconds: number;
    retrySeconds: number;
    keyringReloadSeconds: number;
  };
  /** ACME challenge validation; the shape is @pki/challenges' ChallengeSettings */
  challenges: {
    resolver: string | undefined;
    http01Port: number;
    tlsAlpn01Port: number;
    /** bound on one whole validation (lookups, connections, redirects, reads) */
    timeoutMs: number;
    /** bound on the body read from an http-01 target */
    maxResponseBytes: number;
    /** networks (CIDR) never connected to, besides the ones always denied */
    deniedNetworks: string[];
  };
}

/** Configuration problems, one line each, naming the setting. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join("\n"));
    this.name = "ConfigError";
  }
}

/** A secret given directly, or by the path of a file holding it (Docker/Kubernetes secrets). */
function readSecret(value: string | undefined, file: string | undefined, name: string): string | undefined {
  if (value || !file) return value;
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    throw new ConfigError([`${name}_FILE: cannot read ${file}`]);
  }
}

/** An admin token is a password that never rate-limits itself: refuse one a guesser could find. */
export const MIN_TOKEN_ENTROPY_BITS = 128;

/** Why `token` is too weak to be an admin token (never quoting it), or undefined. */
function weakTokenProblem(token: string): string | undefined {
  const bits = Math.floor(estimatedEntropyBits(token));
  if (bits >= MIN_TOKEN_ENTROPY_BITS) return undefined;
  return `has about ${bits} bits of entropy (estimated from its length and the characters it uses; repeats and runs count for nothing); it needs at least ${MIN_TOKEN_ENTROPY_BITS}: make one with 'openssl rand -base64 32'`;
}

function readPin(value: string | undefined, file: string | undefined, fallbackFile: string, name: string): string | undefined {
  if (value) return value;
  const source = file ?? (existsSync(fallbackFile) ? fallbackFile : undefined);
  if (!source) return undefined;
  try {
    return readFileSync(source, "utf8").trim();
  } catch {
    throw new ConfigError([`${name}_FILE: cannot read ${source}`]);
  }
}

function readDatabaseUrl(value: string | undefined, file: string | undefined): string | undefined {
  const url = readSecret(value, file, "DATABASE_URL");
  if (url !== undefined && !/^postgres(ql)?:\/\//.test(url)) throw new ConfigError(["DATABASE_URL_FILE: must hold a postgresql:// URL"]);
  return url;
}

type Settings = z.infer<typeof schema>;

function parseEnvironment(env: NodeJS.ProcessEnv): Settings {
  // An empty variable means unset (compose writes `${VAR:-}` as ""), never an empty value.
  const parsed = schema.safeParse(Object.fromEntries(Object.entries(env).filter(([, value]) => value !== "")));
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`));
  }
  return parsed.data;
}

const caaIdentitiesOf = (e: Settings) =>
  e.PKI_ACME_CAA_IDENTITIES.split(",")
    .map((n) => n.trim().toLowerCase())
    .filter(Boolean);

const challengeSettingsOf = (e: Settings): Config["challenges"] => ({
  resolver: e.PKI_ACME_RESOLVER,
  http01Port: e.PKI_ACME_HTTP01_PORT,
  tlsAlpn01Port: e.PKI_ACME_TLSALPN01_PORT,
  timeoutMs: ACME_VALIDATION_TIMEOUT_MS,
  maxResponseBytes: ACME_VALIDATION_MAX_RESPONSE_BYTES,
  deniedNetworks: splitList(e.PKI_ACME_DENIED_NETWORKS),
});

/** What the ACME validator needs: the database and the validation settings. */
export interface ValidatorConfig {
  /** where a validator running as its own role answers /healthz, /readyz and /metrics */
  http: { bind: string; port: number };
  databaseUrl: string | undefined;
  embeddedDatabaseDir: string;
  logLevel: Config["logLevel"];
  caaIdentities: string[];
  challenges: Config["challenges"];
}

/**
 * The ACME validator's configuration. Unlike loadConfig it reads no secret but the
 * database URL: the validator connects to hosts requesters name, so it must not hold a
 * token PIN or an admin token, not even from the data dir's PIN files.
 */
export function loadValidatorConfig(env: NodeJS.ProcessEnv = process.env): ValidatorConfig {
  const e = parseEnvironment(env);
  return {
    http: { bind: e.PKI_BIND, port: e.PKI_HTTP_PORT },
    databaseUrl: readDatabaseUrl(e.DATABASE_URL, e.DATABASE_URL_FILE),
    embeddedDatabaseDir: path.join(path.resolve(e.PKI_DATA_DIR), "pgdata"),
    logLevel: e.PKI_LOG_LEVEL,
    caaIdentities: caaIdentitiesOf(e),
    challenges: challengeSettingsOf(e),
  };
}

const SYSTEM_VARIABLES = /^(PATH|HOME|TZ|LANG|LC_[A-Z]+|NODE_OPTIONS|NODE_EXTRA_CA_CERTS)$/;

/**
 * The environment a validator child needs to read, with loadValidatorConfig, the settings
 * this process runs with (which may have come from files or a test's own environment).
 */
export function validatorEnvironment(config: Config, env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const { challenges } = config;
  // Of this process's own environment only where Node and its tools are: nothing of the CA's.
  const system = Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined && SYSTEM_VARIABLES.test(entry[0]));
  return {
    ...Object.fromEntries(system),
    ...(config.databaseUrl ? { DATABASE_URL: config.databaseUrl } : {}),
    PKI_DATA_DIR: config.dataDir,
    PKI_LOG_LEVEL: config.logLevel,
    PKI_ACME_CAA_IDENTITIES: config.acme.caaIdentities.join(","),
    ...(challenges.resolver ? { PKI_ACME_RESOLVER: challenges.resolver } : {}),
    PKI_ACME_HTTP01_PORT: String(challenges.http01Port),
    PKI_ACME_TLSALPN01_PORT: String(challenges.tlsAlpn01Port),
    PKI_ACME_DENIED_NETWORKS: challenges.deniedNetworks.join(","),
  };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const e = parseEnvironment(env);
  const dataDir = path.resolve(e.PKI_DATA_DIR);
  const rootPinFile = path.join(dataDir, `${e.PKI_ROOT_TOKEN_LABEL}.pin`);
  const issuingPinFile = path.join(dataDir, `${e.PKI_ISSUING_TOKEN_LABEL}.pin`);
  const problems: string[] = [];
  if (e.PKCS11_MODULE && !existsSync(e.PKCS11_MODULE)) problems.push(`PKCS11_MODULE: no file at ${e.PKCS11_MODULE}`);
  if (e.PKI_ROOT_TOKEN_LABEL === e.PKI_ISSUING_TOKEN_LABEL) {
    // Allowed (one token for both), but then the serving process holds the root's PIN too.
  }
  const databaseUrl = readDatabaseUrl(e.DATABASE_URL, e.DATABASE_URL_FILE);
  // The embedded database serves one connection: its API cannot be split into processes.
  if (!databaseUrl && typeof e.PKI_API_WORKERS === "number" && e.PKI_API_WORKERS > 1)
    problems.push("PKI_API_WORKERS: more than one API worker needs PostgreSQL (DATABASE_URL); the embedded database serves one process");
  const bootstrapAdminToken = readSecret(e.PKI_BOOTSTRAP_ADMIN_TOKEN, e.PKI_BOOTSTRAP_ADMIN_TOKEN_FILE, "PKI_BOOTSTRAP_ADMIN_TOKEN");
  if (bootstrapAdminToken !== undefined) {
    const problem = weakTokenProblem(bootstrapAdminToken);
    if (problem) problems.push(`PKI_BOOTSTRAP_ADMIN_TOKEN${e.PKI_BOOTSTRAP_ADMIN_TOKEN ? "" : "_FILE"}: ${problem}`);
  }
  if (problems.length) throw new ConfigError(problems);
  return {
    dataDir,
    databaseUrl,
    embeddedDatabaseDir: path.join(dataDir, "pgdata"),
    http: { bind: e.PKI_BIND, port: e.PKI_HTTP_PORT, apiPort: e.PKI_API_PORT },
    publicUrl: e.PKI_PUBLIC_URL ?? defaultPublicUrl(e.PKI_BIND, e.PKI_HTTP_PORT),
    bootstrapAdminToken,
    hsm: {
      modulePath: e.PKCS11_MODULE ?? SOFTHSM_MODULES.find((m) => existsSync(m)),
      softhsmConf: e.SOFTHSM2_CONF ?? path.join(dataDir, "softhsm2.conf"),
      root: { label: e.PKI_ROOT_TOKEN_LABEL, pin: readPin(e.PKI_ROOT_PIN, e.PKI_ROOT_PIN_FILE, rootPinFile, "PKI_ROOT_PIN"), pinFile: e.PKI_ROOT_PIN_FILE ?? rootPinFile },
      issuing: {
        label: e.PKI_ISSUING_TOKEN_LABEL,
        pin: readPin(e.PKI_ISSUING_PIN, e.PKI_ISSUING_PIN_FILE, issuingPinFile, "PKI_ISSUING_PIN"),
        pinFile: e.PKI_ISSUING_PIN_FILE ?? issuingPinFile,
      },
      signingSessions: e.PKI_SIGNING_SESSIONS,
    },
    ca: {
      name: e.PKI_CA_NAME,
      organization: e.PKI_ORGANIZATION,
      rootKeyAlgorithm: e.PKI_ROOT_KEY_ALGORITHM,
      issuingKeyAlgorithm: e.PKI_ISSUING_KEY_ALGORITHM,
      rootTtlDays: e.PKI_ROOT_TTL_DAYS,
      intermediateTtlDays: e.PKI_INTERMEDIATE_TTL_DAYS,
      defaultTtlSeconds: e.PKI_DEFAULT_TTL_SECONDS,
      maxTtlSeconds: e.PKI_MAX_TTL_SECONDS,
      backdateSeconds: e.PKI_BACKDATE_SECONDS,
    },
    logLevel: e.PKI_LOG_LEVEL,
    operator: e.PKI_OPERATOR ?? e.USER ?? "operator",
    invocationDir: e.INIT_CWD ?? process.cwd(),
    revocation: {
      crlValiditySeconds: e.PKI_CRL_VALIDITY_SECONDS,
      crlRefreshSeconds: Math.min(e.PKI_CRL_REFRESH_SECONDS, Math.floor(e.PKI_CRL_VALIDITY_SECONDS / 2)),
      deltaCrlValiditySeconds: e.PKI_DELTA_CRL_VALIDITY_SECONDS,
      crlDebounceMs: e.PKI_CRL_DEBOUNCE_MS,
      crlMaxWaitMs: e.PKI_CRL_MAX_WAIT_MS,
      rootCrlDays: e.PKI_ROOT_CRL_DAYS,
      ocspValiditySeconds: e.PKI_OCSP_VALIDITY_SECONDS,
      ocspResponderTtlSeconds: e.PKI_OCSP_RESPONDER_TTL_SECONDS,
      ocspNonce: e.PKI_OCSP_NONCE,
      ocspLiveSignPerSecond: e.PKI_OCSP_LIVE_SIGN_PER_SECOND,
      ocspMaxAgeSeconds: e.PKI_OCSP_MAX_AGE_SECONDS,
      crlMaxAgeSeconds: e.PKI_CRL_MAX_AGE_SECONDS,
      pollMs: e.PKI_REVOCATION_POLL_MS,
    },
    api: {
      tlsNames: e.PKI_API_TLS_NAMES.split(",")
        .map((n) => n.trim())
        .filter(Boolean),
      tlsTtlSeconds: e.PKI_API_TLS_TTL_SECONDS,
      authFailureLimit: e.PKI_API_AUTH_FAILURE_LIMIT,
      workers: e.PKI_API_WORKERS === "auto" ? (databaseUrl ? availableParallelism() : 1) : e.PKI_API_WORKERS,
      // `npm start` shares its cores with every other role (and often PostgreSQL): the API
      // stays in its process unless the operator asks for workers
      allInOneWorkers: e.PKI_API_WORKERS === "auto" ? 1 : e.PKI_API_WORKERS,
      workerNice: e.PKI_API_WORKER_NICE,
      consoleIdleSeconds: e.PKI_CONSOLE_IDLE_SECONDS,
    },
    acme: {
      caaIdentities: caaIdentitiesOf(e),
      validator: e.PKI_ACME_VALIDATOR,
      rateLimits: {
        ordersPerAccountHour: e.PKI_ACME_ORDERS_PER_ACCOUNT_HOUR,
        ordersPerProvisionerHour: e.PKI_ACME_ORDERS_PER_PROVISIONER_HOUR,
        failedValidationsPerAccountHour: e.PKI_ACME_FAILED_VALIDATIONS_PER_ACCOUNT_HOUR,
        failedValidationsPerProvisionerHour: e.PKI_ACME_FAILED_VALIDATIONS_PER_PROVISIONER_HOUR,
        newAccountsPerAddressHour: e.PKI_ACME_NEW_ACCOUNTS_PER_ADDRESS_HOUR,
        newAccountsPerProvisionerHour: e.PKI_ACME_NEW_ACCOUNTS_PER_PROVISIONER_HOUR,
      },
    },
    scheduler: {
      enabled: e.PKI_SCHEDULER_ENABLED === "true",
      schedules: {
        renewal: e.PKI_SCHEDULE_RENEWAL.trim(),
        expiryAlerts: e.PKI_SCHEDULE_EXPIRY_ALERTS.trim(),
        issuerHealth: e.PKI_SCHEDULE_ISSUER_HEALTH.trim(),
        issuerLifecycle: e.PKI_SCHEDULE_ISSUER_LIFECYCLE.trim(),
        webhookDelivery: e.PKI_SCHEDULE_WEBHOOK_DELIVERY.trim(),
        reconcileIntents: e.PKI_SCHEDULE_RECONCILE_INTENTS.trim(),
        clockCheck: e.PKI_SCHEDULE_CLOCK_CHECK.trim(),
        responderKeyCleanup: e.PKI_SCHEDULE_RESPONDER_KEY_CLEANUP.trim(),
      },
      renewAtFraction: e.PKI_RENEW_AT_FRACTION,
      expiryAlertDays: [...new Set(e.PKI_EXPIRY_ALERT_DAYS)].sort((a, b) => b - a),
      issuerRotationLeadDays: e.PKI_ISSUER_ROTATION_LEAD_DAYS,
      webhook: { url: e.PKI_WEBHOOK_URL, secret: e.PKI_WEBHOOK_SECRET, timeoutMs: e.PKI_WEBHOOK_TIMEOUT_MS, maxBackoffSeconds: e.PKI_WEBHOOK_MAX_BACKOFF_SECONDS },
      leaseSeconds: e.PKI_SCHEDULER_LEASE_SECONDS,
      retrySeconds: e.PKI_SCHEDULER_RETRY_SECONDS,
      keyringReloadSeconds: e.PKI_KEYRING_RELOAD_SECONDS,
    },
    challenges: challengeSettingsOf(e),
  };
}

/**
 * Without PKI_PUBLIC_URL, certificates name this process's own public listener: the bind
 * address (loopback for a wildcard bind) and PKI_HTTP_PORT, so a CA started on another port
 * still writes CRL and OCSP URLs that answer.
 */
function defaultPublicUrl(bind: string, port: number): string {
  const host = bind === "0.0.0.0" || bind === "::" ? "127.0.0.1" : bind.includes(":") ? `[${bind}]` : bind;
  return `http://${host}:${port}`;
}

/**
 * How many cases the fuzz properties run, and with which seed (`npm run fuzz` raises the
 * count; a failing seed reproduces a failure). Read here, like every other setting.
 */
export function fuzzSettings(env: NodeJS.ProcessEnv = process.env): { runs: number; seed: number } {
  return { runs: Number(env.PKI_FUZZ_RUNS ?? 2000), seed: Number(env.PKI_FUZZ_SEED ?? 20261123) };
}
