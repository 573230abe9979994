// The embedded PostgreSQL (PGlite) is a single in-process backend. So that the CLI and
// the server can use one data dir at the same time, the process that owns it serves it
// on a Unix socket inside the data dir (mode 0700), and every connection, the owner's
// own included, goes through that socket: pglite-socket then serialises transactions
// across connections, which two in-process users of one PGlite would not.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
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

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function readOwner(lockFile: string): { pid: number; role: EmbeddedRole } | undefined {
  try {
    const owner = JSON.parse(readFileSync(lockFile, "utf8")) as { pid: number; role: EmbeddedRole };
    return alive(owner.pid) ? owner : undefined;
  } catch {
    return undefined;
  }
}

function tryLock(lockFile: string, role: EmbeddedRole): boolean {
  try {
    const fd = openSync(lockFile, "wx", 0o600);
    writeSync(fd, JSON.stringify({ pid: process.pid, role }));
    closeSync(fd);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    if (!readOwner(lockFile)) {
      rmSync(lockFile, { force: true }); // stale: its process is gone
      return tryLock(lockFile, role);
    }
    return false;
  }
}

/**
 * Finds or becomes the owner of the embedded database in `dir`. A server waits for a CLI
 * owner to finish rather than depend on it; anyone else connects to a live owner.
 */
export async function embeddedEndpoint(dir: string, role: EmbeddedRole, progress: (step: string) => void = () => {}): Promise<EmbeddedEndpoint> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const socketDir = path.join(dir, "run");
  const socketPath = path.join(socketDir, `.s.PGSQL.${PORT}`);
  if (socketPath.length > MAX_SOCKET_PATH)
    throw new Error(`PKI_DATA_DIR is too deep for the embedded database socket (${socketPath.length} > ${MAX_SOCKET_PATH} characters); use a shorter path or DATABASE_URL`);
  const lockFile = path.join(dir, "owner.lock");
  for (let waited = 0; ; waited += 200) {
    if (tryLock(lockFile, role)) break;
    const owner = readOwner(lockFile);
    if (owner && (owner.role === "server" || role === "cli") && existsSync(socketPath)) return { socketDir, port: PORT };
    if (waited > 60_000) throw new Error(`the embedded database in ${dir} is held by process ${owner?.pid ?? "?"}; stop it or use DATABASE_URL`);
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
        rmSync(lockFile, { force: true });
      },
    };
  } catch (error) {
    rmSync(lockFile, { force: true });
    throw error;
  }
}
