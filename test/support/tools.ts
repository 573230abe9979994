// Independent implementations to check the CA's output against: OpenSSL, GnuTLS,
// pkcs11-tool and Python's `cryptography`, run as child processes.
import { type ChildProcessWithoutNullStreams, execFileSync, type SpawnOptionsWithoutStdio, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { REPO_ROOT } from "./harness.ts";
import { childEnv } from "./settings.ts";

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

export function run(command: string, args: string[], options: { env?: Record<string, string>; input?: string | Buffer; cwd?: string } = {}): RunResult {
  const result = spawnSync(command, args, {
    env: childEnv(options.env),
    input: options.input,
    cwd: options.cwd ?? REPO_ROOT,
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  if (result.error) throw result.error;
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** The `pki` CLI, as an operator runs it. */
/**
 * The CLI as `node --import tsx`, one process as in production. The `tsx` command instead
 * runs a second node process and relays signals to it, giving it 30 ms to acknowledge
 * before a SIGKILL: a busy child misses that and exits 143 instead of shutting down.
 */
export function pki(args: string[], env: Record<string, string>): RunResult {
  return run(process.execPath, ["--import", "tsx", path.join(REPO_ROOT, "apps/cli/src/main.ts"), ...args], { env });
}

export const scratchDir = () => mkdtempSync(path.join(tmpdir(), "pki-scratch-"));

/**
 * A key `openssl req` makes for a CSR or a self-signed certificate: the kinds services use,
 * and the odd ones a CA must refuse (a non-65537 exponent, EdDSA, a curve it does not allow,
 * a named curve spelled out as explicit parameters).
 */
export type CsrKey = "ec256" | "ec384" | "rsa2048" | "rsa1024" | "rsa3072" | "rsa2048-e3" | "ed25519" | "ed448" | "secp256k1" | "ec256-explicit";

const NEW_KEY_ARGS: Record<CsrKey, string[]> = {
  ec256: ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
  ec384: ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"],
  rsa1024: ["-newkey", "rsa:1024"],
  rsa2048: ["-newkey", "rsa:2048"],
  rsa3072: ["-newkey", "rsa:3072"],
  "rsa2048-e3": ["-newkey", "rsa:2048", "-pkeyopt", "rsa_keygen_pubexp:3"],
  ed25519: ["-newkey", "ed25519"],
  ed448: ["-newkey", "ed448"],
  secp256k1: ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:secp256k1"],
  "ec256-explicit": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-pkeyopt", "ec_param_enc:explicit"],
};

export interface OpensslReqOptions {
  /** the subject as OpenSSL spells it (`/CN=a/O=b`), UTF-8; default empty */
  subject?: string;
  /** an openssl.cnf whose distinguished_name section gives the subject instead (prompt=no), e.g. for one too long for a command line */
  subjectConfig?: string;
  /** subjectAltName entries, e.g. DNS:a.example IP:10.0.0.1 */
  sans?: string[];
  /** more extensions, each as `-addext` takes it (e.g. basicConstraints=critical,CA:TRUE) */
  extensions?: string[];
  /** a new key of this kind (default ec256), written beside the output */
  key?: CsrKey;
  /** an existing private key (PEM file) instead of a new one */
  keyFile?: string;
  /** where the files go; default a new scratch directory */
  dir?: string;
}

export interface OpensslReqResult {
  keyPem: string;
  keyPath: string;
}

/** Runs `openssl req` with the key, subject and extension arguments every caller spells the same. */
function opensslReq(options: OpensslReqOptions & { dir: string }, output: string[]): OpensslReqResult {
  const keyPath = options.keyFile ?? path.join(options.dir, `key-${Math.random().toString(36).slice(2)}.pem`);
  const keyArgs = options.keyFile ? ["-key", options.keyFile] : [...NEW_KEY_ARGS[options.key ?? "ec256"], "-nodes", "-keyout", keyPath];
  const subjectArgs = options.subjectConfig ? ["-config", options.subjectConfig] : ["-utf8", "-subj", options.subject ?? "/"];
  const extensions = [...(options.sans?.length ? [`subjectAltName=${options.sans.join(",")}`] : []), ...(options.extensions ?? [])];
  const args = ["req", ...output, ...keyArgs, ...subjectArgs, ...extensions.flatMap((e) => ["-addext", e])];
  const result = run("openssl", args);
  if (result.status !== 0) throw new Error(`openssl req failed: ${result.stderr}`);
  return { keyPem: readFileSync(keyPath, "utf8"), keyPath };
}

/** A key and CSR made by `openssl req`, as a service's deploy tooling would. */
export function opensslCsr(options: OpensslReqOptions = {}): OpensslReqResult & { csrPem: string; csrDer: Buffer; csrPath: string } {
  const dir = options.dir ?? scratchDir();
  const csrPath = path.join(dir, `csr-${Math.random().toString(36).slice(2)}.pem`);
  const { keyPem, keyPath } = opensslReq({ ...options, dir }, ["-new", "-out", csrPath]);
  const csrPem = readFileSync(csrPath, "utf8");
  return { csrPem, csrDer: Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ""), "base64"), csrPath, keyPem, keyPath };
}

/** A self-signed certificate made by `openssl req -x509`, valid for a day: a CA or client this CA knows nothing about. */
export function opensslSelfSigned(options: OpensslReqOptions = {}): OpensslReqResult & { certPem: string; certPath: string } {
  const dir = options.dir ?? scratchDir();
  const certPath = path.join(dir, `cert-${Math.random().toString(36).slice(2)}.pem`);
  const { keyPem, keyPath } = opensslReq({ ...options, dir }, ["-x509", "-new", "-days", "1", "-out", certPath]);
  return { certPem: readFileSync(certPath, "utf8"), certPath, keyPem, keyPath };
}

export function writeTemp(name: string, content: string | Buffer, dir = scratchDir()): string {
  const file = path.join(dir, name);
  writeFileSync(file, content);
  return file;
}

/** `openssl verify` of a leaf against a root with the intermediates as untrusted. */
export function opensslVerify(leafPem: string, rootPem: string, intermediatesPem: string, extra: string[] = []): RunResult {
  const dir = scratchDir();
  return run("openssl", ["verify", ...extra, "-CAfile", writeTemp("root.pem", rootPem, dir), "-untrusted", writeTemp("chain.pem", intermediatesPem, dir), writeTemp("leaf.pem", leafPem, dir)]);
}

/** Python's `cryptography` parses a certificate and reports what it sees, as JSON. */
export function pythonInspect(certPem: string): Record<string, unknown> {
  const script = `
import sys, json
from cryptography import x509
from cryptography.x509.oid import ExtensionOID
cert = x509.load_pem_x509_certificate(sys.stdin.buffer.read())
out = {"serial": format(cert.serial_number, "x"), "version": cert.version.name, "subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
       "not_before": cert.not_valid_before_utc.isoformat(), "not_after": cert.not_valid_after_utc.isoformat(), "extensions": {}}
for ext in cert.extensions:
    out["extensions"][ext.oid._name] = {"critical": ext.critical, "value": str(ext.value)}
try:
    san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    out["sans"] = [str(n.value) for n in san]
except x509.ExtensionNotFound:
    out["sans"] = []
print(json.dumps(out))
`;
  const result = run("python3", ["-c", script], { input: certPem });
  if (result.status !== 0) throw new Error(`python cryptography could not parse the certificate: ${result.stderr}`);
  return JSON.parse(result.stdout) as Record<string, unknown>;
}

export function which(tool: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${tool}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** A TCP port nothing listens on right now, on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const { createServer } = await import("node:net");
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/**
 * The node arguments `npm start` runs the all-in-one server with (package.json's start
 * script, `node <args>`), so tests start what a user starts.
 */
export function npmStartArgs(): string[] {
  const script = (JSON.parse(readFileSync(path.join(REPO_ROOT, "package.json"), "utf8")) as { scripts: { start: string } }).scripts.start;
  const [command, ...args] = script.trim().split(/\s+/);
  if (command !== "node") throw new Error(`the start script is not \`node …\`: ${script}`);
  return args.map((arg) => (arg.startsWith("-") ? arg : path.join(REPO_ROOT, arg)));
}

const spawnedApps = new Set<ChildProcessWithoutNullStreams>();

/** One of this repository's apps as its own process, from its TypeScript (`node --import tsx`). */
export function spawnApp(entry: string, options: SpawnOptionsWithoutStdio): ChildProcessWithoutNullStreams {
  return spawnNode(["--import", "tsx", path.join(REPO_ROOT, entry)], options);
}

/** `node <args>` as an app process that stopSpawnedApps kills (say, a bundle from build-dist.mjs, as the image runs it). */
export function spawnNode(args: string[], options: SpawnOptionsWithoutStdio): ChildProcessWithoutNullStreams {
  const child = spawn(process.execPath, args, options);
  spawnedApps.add(child);
  child.once("exit", () => spawnedApps.delete(child));
  return child;
}

/**
 * The apps compiled as the image compiles them (`node apps/server/build-dist.mjs`), into a
 * fresh directory inside the checkout (bundles find npm packages in its node_modules);
 * returns it and a function that removes it. `apps` limits the build to those apps.
 */
export function buildDist(apps: string[] = []): { dir: string; remove(): void } {
  mkdirSync(path.join(REPO_ROOT, ".tmp"), { recursive: true });
  const dir = mkdtempSync(path.join(REPO_ROOT, ".tmp", "dist-"));
  const built = run(process.execPath, [path.join(REPO_ROOT, "apps/server/build-dist.mjs"), dir, ...apps]);
  if (built.status !== 0) throw new Error(`build-dist.mjs failed: ${built.stderr}`);
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * The node arguments of a docker-compose.yml `command` (`dist/<app>/main.js ...`, what the
 * image runs), with dist/ at `distDir` (from buildDist).
 */
export function imageCommand(command: string[], distDir: string): string[] {
  const [entry, ...args] = command;
  if (!entry?.startsWith("dist/")) throw new Error(`a compose command runs ${entry}, not a file of the image's dist/`);
  return [path.join(distDir, entry.slice("dist/".length)), ...args];
}

/** Kills every app process a test started and left running (say, after a failed assertion). */
export function stopSpawnedApps(): void {
  for (const child of spawnedApps) child.kill("SIGKILL");
  spawnedApps.clear();
}
