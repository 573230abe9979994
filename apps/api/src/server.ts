// The HTTPS listener. Its certificate comes from this CA (so clients trust it through the
// same root.pem they trust everything else with): reused across restarts while it is
// good, renewed after two thirds of its lifetime or at once when its issuer is revoked,
// without dropping connections (setSecureContext).
import { X509Certificate, constants as cryptoConstants, createPublicKey, generateKeyPairSync } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createServer, type Server } from "node:https";
import { isIP } from "node:net";
import type { SecureContextOptions } from "node:tls";
import { setTimeout as sleep } from "node:timers/promises";
import { acmeProvisionerCache, ValidatorChild } from "@pki/acme";
import { API_LISTENER_REQUESTER, writeSecretFile, type CaRuntime, type IssuedCertificate } from "@pki/authority";
import { CaError, formatSan, toPem, type CsrProposal, type San } from "@pki/x509";
import { closeGracefully, listen } from "@pki/http-kit";
import type { Logger } from "@pki/logger";
import { createApiHandler, type ApiAppOptions } from "./app.ts";
import { VerifiedTokens } from "./verified-tokens.ts";
import { acmeValidatorEntry } from "./workers.ts";

export interface ApiServer {
  server: Server;
  port: number;
  /** https://host:port */
  url: string;
  /** the listener's current certificate */
  certificate(): IssuedCertificate;
  /** bearer tokens held as verified right now (see VerifiedTokens) */
  cachedTokens(): number;
  /** ACME provisioners held in memory right now (see acmeProvisionerCache) */
  cachedAcmeProvisioners(): number;
  /** issues a fresh listener certificate now (also runs on a timer) */
  renewTlsCertificate(): Promise<IssuedCertificate>;
  stop(): Promise<void>;
}

export interface StartApiOptions extends ApiAppOptions {
  port?: number;
  host?: string;
  /**
   * How often the renewal timer looks at the clock (default one minute). Looking often
   * costs nothing and follows a clock that jumps (suspend/resume, NTP steps, tests).
   */
  renewalCheckMs?: number;
}

const UNSPECIFIED = new Set(["0.0.0.0", "::"]);
const SESSION_SWEEP_MS = 5 * 60_000;

/** The names clients reach the API by: configured names plus a specific bind address. */
function listenerNames(runtime: CaRuntime, host: string): San[] {
  const names = new Set(runtime.config.api.tlsNames);
  if (!UNSPECIFIED.has(host)) names.add(host);
  return [...names].map((n): San => (isIP(n) ? { type: "IP", value: n } : { type: "DNS", value: n.toLowerCase() }));
}

/**
 * A key made in this process (a leaf key for this listener only) and a server certificate
 * for it from the active intermediate, through the same issuance cycle as every other
 * certificate, so it is in the inventory and audit log.
 */
async function issueListenerCertificate(runtime: CaRuntime, names: San[]): Promise<ListenerCredentials> {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const proposal: CsrProposal = {
    publicKeySpki: publicKey.export({ type: "spki", format: "der" }),
    keyAlgorithm: "ECDSA-P256",
    commonName: undefined,
    sans: names,
  };
  const issued = await runtime.authority.issue({
    csr: proposal,
    profile: "server",
    ttlSeconds: runtime.config.api.tlsTtlSeconds,
    requester: { kind: "operator", actor: API_LISTENER_REQUESTER },
  });
  const credentials = { issued, keyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString() };
  saveListenerCredentials(runtime, credentials);
  return credentials;
}

interface ListenerCredentials {
  issued: IssuedCertificate;
  keyPem: string;
}

/** When a listener certificate is due for renewal: after two thirds of its lifetime. */
const renewalTime = ({ notBefore, notAfter }: IssuedCertificate) => notBefore.getTime() + ((notAfter.getTime() - notBefore.getTime()) * 2) / 3;

/**
 * The listener's key and certificate serial are kept in the data dir (key mode 0600), so a
 * restart reuses a certificate that is still good instead of issuing one per start. A data
 * dir that cannot be written only costs that reuse.
 */
const listenerFiles = (runtime: CaRuntime) => ({ key: path.join(runtime.config.dataDir, "api-listener.key"), serial: path.join(runtime.config.dataDir, "api-listener.serial") });

function saveListenerCredentials(runtime: CaRuntime, { issued, keyPem }: ListenerCredentials): void {
  const files = listenerFiles(runtime);
  try {
    writeSecretFile(files.key, keyPem);
    writeFileSync(files.serial, `${issued.serial}\n`, { mode: 0o644 });
  } catch {
    // read-only data dir: the next start issues a new certificate
  }
}

/**
 * The stored listener certificate, if it is still fit to serve: valid in the inventory,
 * for exactly these names, from an issuer this CA still serves and has not revoked, and
 * not yet due for renewal.
 */
async function reusableListenerCertificate(runtime: CaRuntime, names: San[]): Promise<ListenerCredentials | undefined> {
  const files = listenerFiles(runtime);
  if (!existsSync(files.key) || !existsSync(files.serial)) return undefined;
  const record = await runtime.inventory.certificates.get(readFileSync(files.serial, "utf8").trim());
  const issuer = record && runtime.keyring.get(record.issuerId);
  if (!record?.der || record.status !== "valid" || record.requester !== API_LISTENER_REQUESTER || !issuer || issuer.record.revokedAt) return undefined;
  const wanted = names.map(formatSan).sort();
  if (record.sans.length !== wanted.length || [...record.sans].sort().some((san, i) => san !== wanted[i])) return undefined;
  const issued: IssuedCertificate = {
    serial: record.serial,
    der: record.der,
    pem: toPem(record.der),
    chain: issuer.chain.map((der) => toPem(der)),
    issuerId: record.issuerId,
    profile: "server",
    subject: record.subject,
    sans: record.sans,
    notBefore: record.notBefore,
    notAfter: record.notAfter,
  };
  if (runtime.clock.now().getTime() >= renewalTime(issued)) return undefined;
  const keyPem = readFileSync(files.key, "utf8");
  // API replicas sharing one data dir each write a key and a serial: the pair on disk may
  // come from two of them, and a mismatched key would stop the listener from starting.
  if (!keyMatches(keyPem, record.der)) return undefined;
  return { issued, keyPem };
}

function keyMatches(keyPem: string, certificateDer: Buffer): boolean {
  try {
    const spki = (key: Parameters<typeof createPublicKey>[0]) => createPublicKey(key).export({ type: "spki", format: "der" });
    return spki(keyPem).equals(new X509Certificate(certificateDer).publicKey.export({ type: "spki", format: "der" }));
  } catch {
    return false;
  }
}

/** True once the current certificate's issuer has been revoked: it is replaced at once. */
const issuerRevoked = (runtime: CaRuntime, issued: IssuedCertificate) => !!runtime.keyring.get(issued.issuerId)?.record.revokedAt;

/** The CA certificates named in the CertificateRequest, so clients pick a certificate from this CA. */
function clientCaList(runtime: CaRuntime): string[] {
  const pems = new Set<string>();
  for (const issuer of runtime.keyring.all()) for (const der of issuer.chain) pems.add(toPem(der));
  return [...pems];
}

/**
 * TLS 1.3 suites, then for TLS 1.2 only forward-secret AEAD suites: no CBC, no SHA-1 MAC,
 * no static RSA key exchange (the defaults still offer e.g. AES128-SHA).
 */
export const API_CIPHERS = [
  "TLS_AES_128_GCM_SHA256",
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-RSA-CHACHA20-POLY1305",
].join(":");

function secureContext(runtime: CaRuntime, issued: IssuedCertificate, keyPem: string): SecureContextOptions {
  return {
    key: keyPem,
    // leaf then intermediate; the root stays out (clients must already trust it)
    cert: [issued.pem, ...issued.chain.slice(0, -1)].join(""),
    ca: clientCaList(runtime),
    minVersion: "TLSv1.2",
    ciphers: API_CIPHERS,
    honorCipherOrder: true,
    // TLS 1.3 has no renegotiation; for 1.2, Node only rate-limits client-initiated
    // renegotiation (3 per 10 minutes), so turn it off in OpenSSL: a renegotiation costs
    // the server a handshake each and has a history of attacks.
    secureOptions: cryptoConstants.SSL_OP_NO_RENEGOTIATION,
  };
}

/**
 * At start-up the database may still be busy with the other roles of the process (or
 * briefly unreachable): a few attempts before giving up, each one a complete issuance.
 */
async function issueWithRetry(runtime: CaRuntime, names: San[], log: Logger, attempts = 4): Promise<ListenerCredentials> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await issueListenerCertificate(runtime, names);
    } catch (error) {
      if (!(error instanceof CaError && error.kind === "unavailable") || attempt >= attempts) throw error;
      log.warn({ attempt, reason: error.message }, "could not issue the API listener certificate; retrying");
      await sleep(500 * attempt);
    }
  }
}

export async function startApi(runtime: CaRuntime, log: Logger, options: StartApiOptions = {}): Promise<ApiServer> {
  const host = options.host ?? runtime.config.http.bind;
  const names = listenerNames(runtime, host);
  let current = (await reusableListenerCertificate(runtime, names)) ?? (await issueWithRetry(runtime, names, log));
  const tokens = options.tokens ?? new VerifiedTokens(runtime.inventory);
  const acmeProvisioners = options.acmeProvisioners ?? acmeProvisionerCache(runtime.inventory);
  // ACME validation connects to hosts requesters name: never in this process, which holds the issuing token's session.
  const acmeValidator = runtime.config.acme.validator === "child" ? new ValidatorChild(acmeValidatorEntry(), runtime.config, log) : undefined;
  const app = createApiHandler(runtime, log, { ...options, tokens, acmeProvisioners, ...(acmeValidator ? { acmeValidation: acmeValidator } : {}) });
  const server = createServer(
    {
      ...secureContext(runtime, current.issued, current.keyPem),
      // ask for a client certificate but let every route decide; see mtls.ts
      requestCert: true,
      rejectUnauthorized: false,
    },
    app,
  );
  const port = await listen(server as unknown as import("node:http").Server, options.port ?? runtime.config.http.apiPort, host);

  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  // `reuse`: API workers share the data dir, so one that finds its certificate due may find
  // that another worker has already renewed it, and serves that one.
  const renew = async (reuse = false): Promise<IssuedCertificate> => {
    const next = (reuse ? await reusableListenerCertificate(runtime, names) : undefined) ?? (await issueListenerCertificate(runtime, names));
    server.setSecureContext(secureContext(runtime, next.issued, next.keyPem));
    current = next;
    log.info({ serial: next.issued.serial, notAfter: next.issued.notAfter.toISOString() }, "API listener certificate renewed");
    schedule();
    return next.issued;
  };
  const schedule = () => {
    if (stopped) return;
    clearTimeout(timer);
    const renewAt = renewalTime(current.issued);
    const wait = Math.min(Math.max(renewAt - runtime.clock.now().getTime(), 0), options.renewalCheckMs ?? 60_000);
    timer = setTimeout(() => {
      if (runtime.clock.now().getTime() < renewAt && !issuerRevoked(runtime, current.issued)) return schedule();
      renew(true).catch((error: Error) => {
        log.error({ err: error }, "could not renew the API listener certificate; retrying in a minute");
        clearTimeout(timer);
        timer = setTimeout(() => void renew().catch(() => schedule()), 60_000);
        timer.unref();
      });
    }, wait);
    timer.unref();
  };
  schedule();

  // Logins and each session's own use remove expired rows; this catches the sessions
  // nobody comes back to, so the table holds only live ones give or take a few minutes.
  const sweeper = setInterval(() => {
    runtime.inventory.consoleSessions
      .sweep(runtime.clock.now(), runtime.config.api.consoleIdleSeconds)
      .catch((error: Error) => log.warn({ err: error }, "could not remove expired console sessions; the next sweep retries"));
  }, SESSION_SWEEP_MS);
  sweeper.unref();

  const hostForUrl = host.includes(":") ? `[${host}]` : UNSPECIFIED.has(host) ? "127.0.0.1" : host;
  return {
    server,
    port,
    url: `https://${hostForUrl}:${port}`,
    certificate: () => current.issued,
    cachedTokens: () => tokens.size,
    cachedAcmeProvisioners: () => acmeProvisioners.size,
    renewTlsCertificate: () => renew(),
    stop: async () => {
      stopped = true;
      clearTimeout(timer);
      clearInterval(sweeper);
      await closeGracefully(server as unknown as import("node:http").Server);
      await tokens.close();
      await acmeProvisioners.close();
      acmeValidator?.stop();
    },
  };
}
