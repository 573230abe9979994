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

export type CsrKey = "ec256" | "ec384" | "rsa2048" | "rsa1024" | "rsa3072";

/** A key and CSR made by `openssl req`, as a service's deploy tooling would. */
export function opensslCsr(options: { subject?: string; sans?: string[]; key?: CsrKey; dir?: string } = {}): { csrPem: string; keyPem: string; csrPath: string; keyPath: string } {
  const dir = options.dir ?? scratchDir();
  const keyPath = path.join(dir, `key-${Math.random().toString(36).slice(2)}.pem`);
  const csrPath = keyPath.replace("key-", "csr-");
  const key = options.key ?? "ec256";
  const keyArgs = key.startsWith("ec") ? ["-newkey", "ec", "-pkeyopt", `ec_paramgen_curve:${key === "ec384" ? "P-384" : "P-256"}`] : ["-newkey", `rsa:${key.slice(3)}`];
  const args = ["req", "-new", ...keyArgs, "-nodes", "-keyout", keyPath, "-out", csrPath, "-subj", options.subject ?? "/"];
  if (options.sans?.length) args.push("-addext", `subjectAltName=${options.sans.join(",")}`);
  const result = run("openssl", args);
  if (result.status !== 0) throw new Error(`openssl req failed: ${result.stderr}`);
  return { csrPem: readFileSync(csrPath, "utf8"), keyPem: readFileSync(keyPath, "utf8"), csrPath, keyPath };
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
