// `npm start`'s entry point: runs src/main.ts compiled into a bundle (esbuild), with plain Node.
//
// Why not `node --import tsx src/main.ts`, as every other role runs: tsx cost the idle
// quickstart ~30 MB of its ~195 (its module hooks run in a second V8 isolate, and tsx and
// esbuild's JavaScript load in both), and each time its cache missed (a first start, an
// edited file) it left esbuild's service process running beside the server (~17 MB more).
// The bundle is built once, kept in node_modules/.cache/pki-server, and rebuilt only when a
// file it was built from changes; esbuild's service process is stopped after a build.
// Only the workspace's TypeScript is bundled: npm packages load from node_modules as usual.
//
// The API's cluster workers (PKI_API_WORKERS, on PostgreSQL) are forked from
// apps/api/src/worker.ts, which is TypeScript: they get tsx through process.execArgv.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const ENTRY = path.join(REPO_ROOT, "apps/server/src/main.ts");
const CACHE = path.join(REPO_ROOT, "node_modules/.cache/pki-server");
const CURRENT = path.join(CACHE, "current.json");
/** Changes whenever the build options below do, so an older cached bundle is not reused. */
const BUILD_FORMAT = 1;
/**
 * Builds kept besides the newest: a server still running an older build loads its lazily
 * imported chunks (the scheduler's) from it after start-up.
 */
const OLDER_BUILDS_KEPT = 3;

/** What a build depends on besides the files esbuild reports reading: resolution and compiler settings. */
function settingsFiles() {
  const files = ["package.json", "tsconfig.json", "tsconfig.base.json"];
  for (const group of ["apps", "packages"]) {
    for (const name of readdirSync(path.join(REPO_ROOT, group))) files.push(`${group}/${name}/package.json`, `${group}/${name}/tsconfig.json`);
  }
  return files;
}

/** Size and modification time of each file (null if missing), keyed by its path from the repository root. */
function stamps(files) {
  const out = {};
  for (const file of files) {
    try {
      const s = statSync(path.join(REPO_ROOT, file));
      out[file] = [s.size, s.mtimeMs];
    } catch {
      out[file] = null;
    }
  }
  return out;
}

/** The directory of the cached build if every file it was built from is unchanged. */
function currentBuild() {
  let current;
  try {
    current = JSON.parse(readFileSync(CURRENT, "utf8"));
  } catch {
    return undefined; // never built, or the cache was removed
  }
  if (current.format !== BUILD_FORMAT || current.node !== process.versions.node) return undefined;
  const now = stamps(Object.keys(current.stamps));
  const unchanged = Object.entries(current.stamps).every(([file, stamp]) => JSON.stringify(stamp) === JSON.stringify(now[file]));
  const dir = path.join(CACHE, current.build);
  return unchanged && existsSync(path.join(dir, "main.js")) ? dir : undefined;
}

/**
 * `import.meta.url` as each source file sees it when run from its own path: the console's
 * assets, the migrations and the token template are found relative to their modules.
 */
const keepModuleUrls = {
  name: "keep-module-urls",
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, (args) => {
      const source = readFileSync(args.path, "utf8");
      return { contents: source.replaceAll("import.meta.url", JSON.stringify(pathToFileURL(args.path).href)), loader: "ts" };
    });
  },
};

/** npm packages stay imports (resolved from node_modules at run time); the workspace's own are bundled. */
const externalPackages = {
  name: "external-packages",
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, (args) => (args.kind === "entry-point" || args.path.startsWith("@pki/") ? undefined : { path: args.path, external: true }));
  },
};

async function build() {
  const esbuild = await import("esbuild");
  const staging = path.join(CACHE, `building-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  let result;
  try {
    result = await esbuild.build({
      absWorkingDir: REPO_ROOT,
      entryPoints: { main: ENTRY },
      bundle: true,
      // Modules main.ts imports on first use (the scheduler's) stay separate files, loaded then.
      splitting: true,
      format: "esm",
      platform: "node",
      target: `node${process.versions.node}`,
      // As tsx compiles them: class and function names survive (error names, logs).
      keepNames: true,
      sourcemap: true,
      sourcesContent: false,
      outdir: staging,
      plugins: [keepModuleUrls, externalPackages],
      metafile: true,
      logLevel: "warning",
    });
  } finally {
    // Its service process would otherwise stay for the life of the server.
    await esbuild.stop();
  }
  const record = {
    format: BUILD_FORMAT,
    node: process.versions.node,
    stamps: stamps([...Object.keys(result.metafile.inputs), ...settingsFiles()]),
  };
  record.build = createHash("sha256").update(JSON.stringify(record)).digest("hex").slice(0, 16);
  const dir = path.join(CACHE, record.build);
  try {
    renameSync(staging, dir);
  } catch (error) {
    // Another start built the same sources at the same time: use its build.
    if (!existsSync(path.join(dir, "main.js"))) throw error;
    rmSync(staging, { recursive: true, force: true });
  }
  const next = `${CURRENT}.${process.pid}`;
  writeFileSync(next, JSON.stringify(record));
  renameSync(next, CURRENT);
  pruneOlderBuilds(record.build);
  return dir;
}

function pruneOlderBuilds(keep) {
  const builds = readdirSync(CACHE, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && entry.name !== keep && !entry.name.startsWith("building-"))
    .map((entry) => ({ dir: path.join(CACHE, entry.name), mtimeMs: statSync(path.join(CACHE, entry.name)).mtimeMs }))
    .sort((a, b) => b.mtimeMs - a.mtimeMs);
  for (const old of builds.slice(OLDER_BUILDS_KEPT)) rmSync(old.dir, { recursive: true, force: true });
}

mkdirSync(CACHE, { recursive: true });
const dir = currentBuild() ?? (await build());
// Resolved here, so a worker finds tsx whatever its working directory.
process.execArgv.push("--import", import.meta.resolve("tsx"));
await import(pathToFileURL(path.join(dir, "main.js")).href);
