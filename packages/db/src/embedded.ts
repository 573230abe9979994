// The embedded PostgreSQL (PGlite) is a single in-process backend. So that the CLI and
// the server can use one data dir at the same time, the process that owns it serves it
// on a Unix socket inside the data dir (mode 0700), and every connection, the owner's
// own included, goes through that socket: pglite-socket then serialises transactions
// across connections, which two in-process users of one PGlite would not.
import { closeSync, constants, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { createRequire } from "node:module";
import { createConnection } from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import v8 from "node:v8";
import { buildEmbeddedTemplate, copyEmbeddedTemplate } from "./embedded-template.ts";
// PGlite is imported where the embedded database is opened, so a process on PostgreSQL
// (DATABASE_URL) does not load it at start-up.

export type EmbeddedRole = "server" | "cli";

export interface EmbeddedEndpoint {
  /** directory holding the socket, as libpq's `host` */
  socketDir: string;
  port: number;
  /** set when this process owns the database; stops serving and closes it */
  release?: () => Promise<void>;
}

const PORT = 5432;
const MAX_SOCKET_PATH = 100; // sun_path is 108 bytes on Linux

/**
 * PostgreSQL settings of the embedded database, chosen for its footprint: it serves one
 * connection of one process (the quickstart; production uses PostgreSQL). PostgreSQL's
 * default 128 MB of shared buffers are all written at start inside PGlite's WebAssembly
 * memory, which made them resident (about 120 MB of the process's RSS); whatever size is
 * set is resident from the start. 4 MB (512 pages) holds the hot part of a quickstart CA's
 * inventory; the rest is read through the operating system's page cache, as the data dir
 * is a plain directory. Against 8 MB: ~6 MB less RSS, and point lookups in a 12 MB table
 * that fits in neither were 2-19% slower (bench/NOTES.md, footprint). PGlite is one
 * backend in single-user mode (pglite-socket queues every client onto it), so
 * max_connections only sizes shared memory for backends that never exist; the lock table
 * it also sizes still holds over a thousand locks for that one backend.
 */
const EMBEDDED_SETTINGS = ["shared_buffers=4MB", "wal_buffers=512kB", "max_connections=10"];

/**
 * Keeps V8 to its baseline WebAssembly compiler (Liftoff) in the process that runs the
 * embedded database. Its optimising compiler (TurboFan) kept about 70 MB of code and
 * compiler memory resident for PostgreSQL's hot functions, and measured no faster on
 * the database's own work (bench/NOTES.md, footprint). It must be set before PGlite's
 * module is compiled; it only changes how WebAssembly is compiled, never what it does.
 */
function baselineWasmCompilerOnly(): void {
  v8.setFlagsFromString("--liftoff-only");
}

/** The bit of fs-ext used here: flock(2), which Node's own fs lacks. */
interface Flock {
  flockSync(fd: number, flags: "exnb" | "un"): void;
}
let flock: Flock | undefined;
function flockOf(): Flock {
  try {
    flock ??= createRequire(import.meta.url)("fs-ext") as Flock;
    return flock;
  } catch (error) {
    throw new Error(`the embedded database needs fs-ext's native flock binding, which npm install builds (with python3, make and g++): ${(error as Error).message}`);
  }
}

/**
 * Ownership is an exclusive flock(2) on owner.lock, held through the owner's whole life
 * (PGlite's start-up included) on a descriptor it never closes early. The kernel drops
 * it when the owner dies however it dies (SIGKILL included, before the dead process is
 * even reaped), so no PID is ever consulted: a zombie or a reused PID cannot hold it.
 * The file is never deleted, as a process waiting on the old file would then lock
 * another one than a newcomer. Its text (pid and role) only informs the others.
 */
function tryOwn(lockFile: string, role: EmbeddedRole): number | undefined {
  const fd = openSync(lockFile, constants.O_RDWR | constants.O_CREAT, 0o600);
  try {
    flockOf().flockSync(fd, "exnb");
  } catch (error) {
    closeSync(fd);
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EAGAIN" || code === "EWOULDBLOCK") return undefined;
    throw error;
  }
  ftruncateSync(fd, 0);
  writeSync(fd, JSON.stringify({ pid: process.pid, role }), 0);
  return fd;
}

function disown(fd: number): void {
  try {
    flockOf().flockSync(fd, "un");
  } finally {
    closeSync(fd);
  }
}

/** The role the owner wrote; a new owner may not have written yet (then the last one's). */
function ownerRole(lockFile: string): EmbeddedRole | undefined {
  try {
    return (JSON.parse(readFileSync(lockFile, "utf8")) as { role?: EmbeddedRole }).role;
  } catch {
    return undefined;
  }
}

/** PostgreSQL's SSLRequest: any live server answers it with one byte ('N' from pglite-socket), before any startup. */
const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
const PROBE_TIMEOUT_MS = 2_000;

/**
 * Whether the owner serves on the socket now. A connection alone proves nothing: a killed
 * owner's listening socket still accepts while the kernel tears the process down (its
 * memory first, then its files, lock included), and nothing will ever answer there.
 */
function socketAnswers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection(socketPath);
    const done = (serving: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(serving);
    };
    const timer = setTimeout(() => done(false), PROBE_TIMEOUT_MS);
    socket.once("connect", () => socket.write(SSL_REQUEST));
    socket.once("data", (answer: Buffer) => done(answer.length === 1 && (answer[0] === 0x4e || answer[0] === 0x53)));
    socket.once("error", () => done(false));
    socket.once("close", () => done(false));
  });
}

/**
 * Finds or becomes the owner of the embedded database in `dir`. A server waits for a CLI
 * owner to finish rather than depend on it; anyone else connects to a live owner once its
 * socket answers.
 */
export async function embeddedEndpoint(dir: string, role: EmbeddedRole, progress: (step: string) => void = () => {}): Promise<EmbeddedEndpoint> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const socketDir = path.join(dir, "run");
  const socketPath = path.join(socketDir, `.s.PGSQL.${PORT}`);
  if (socketPath.length > MAX_SOCKET_PATH)
    throw new Error(`PKI_DATA_DIR is too deep for the embedded database socket (${socketPath.length} > ${MAX_SOCKET_PATH} characters); use a shorter path or DATABASE_URL`);
  const lockFile = path.join(dir, "owner.lock");
  let lockFd: number | undefined;
  for (let waited = 0; ; waited += 200) {
    lockFd = tryOwn(lockFile, role);
    if (lockFd !== undefined) break;
    const ownerIsServer = ownerRole(lockFile) === "server";
    if ((ownerIsServer || role === "cli") && (await socketAnswers(socketPath))) return { socketDir, port: PORT };
    if (waited > 60_000) {
      throw new Error(
        `the embedded database in ${dir} is held by another process (${ownerIsServer ? "a server" : "a pki command"}) and neither came free nor answered within a minute; stop it or use DATABASE_URL`,
      );
    }
    await sleep(200);
  }
  try {
    mkdirSync(socketDir, { recursive: true, mode: 0o700 });
    rmSync(socketPath, { force: true });
    const [{ PGlite }, { pg_trgm }, { PGLiteSocketServer }] = await Promise.all([
      import("@electric-sql/pglite"),
      import("@electric-sql/pglite/contrib/pg_trgm"),
      import("@electric-sql/pglite-socket"),
    ]);
    const dataDir = path.join(dir, "data");
    if (!existsSync(path.join(dataDir, "PG_VERSION"))) {
      rmSync(dataDir, { recursive: true, force: true }); // what an interrupted first start left
      if (copyEmbeddedTemplate(dataDir)) progress(`embedded database created in ${dataDir} (from the install-time template)`);
      else {
        progress(`creating the embedded database template (none matches this code's migrations; this takes a few seconds, once)`);
        // A read-only install (an image) cannot keep a template: create the database in place.
        const built = await buildEmbeddedTemplate().then(
          () => copyEmbeddedTemplate(dataDir),
          () => false,
        );
        progress(built ? `embedded database created in ${dataDir} (from the new template)` : `creating the embedded database in ${dataDir}`);
      }
    }
    baselineWasmCompilerOnly();
    const startParams = [...PGlite.defaultStartParams, ...EMBEDDED_SETTINGS.flatMap((setting) => ["-c", setting])];
    const db = await PGlite.create(dataDir, { extensions: { pg_trgm }, startParams });
    const server = new PGLiteSocketServer({ db, path: socketPath, maxConnections: 64 });
    await server.start();
    return {
      socketDir,
      port: PORT,
      release: async () => {
        await server.stop();
        await db.close();
        disown(lockFd);
      },
    };
  } catch (error) {
    disown(lockFd);
    throw error;
  }
}
