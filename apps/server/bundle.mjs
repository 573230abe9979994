// Compiles a TypeScript entry point and the workspace modules it imports into an ESM bundle
// (esbuild) that plain Node runs. `npm start` runs the all-in-one server this way, cached
// until one of its files changes (start.mjs says why); the image compiles every app once
// when it is built (build-dist.mjs). Only the workspace's own TypeScript is bundled: npm
// packages stay imports, loaded from node_modules as usual.
import { createHash } from "node:crypto";
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/**
 * Builds kept besides the newest: a server still running an older build loads its lazily
 * imported chunks (the scheduler's) from it after start-up.
 */
const OLDER_BUILDS_KEPT = 3;

const builderFile = (root) => path.relative(root, fileURLToPath(import.meta.url));

/**
 * What a build depends on besides the files esbuild reports reading: resolution and compiler
 * settings, and this file (its build options).
 */
function settingsFiles(root) {
  const files = [builderFile(root), "package.json", "tsconfig.json", "tsconfig.base.json"];
  for (const group of ["apps", "packages"]) {
    if (!existsSync(path.join(root, group))) continue;
    for (const name of readdirSync(path.join(root, group))) files.push(`${group}/${name}/package.json`, `${group}/${name}/tsconfig.json`);
  }
  return files;
}

/** Size and modification time of each file (null if missing), keyed by its path from `root`. */
function stamps(root, files) {
  const out = {};
  for (const file of files) {
    try {
      const s = statSync(path.join(root, file));
      out[file] = [s.size, s.mtimeMs];
    } catch {
      out[file] = null;
    }
  }
  return out;
}

/** The directory of the cached build if every file it was built from is unchanged. */
function currentBuild(root, cache) {
  let current;
  try {
    current = JSON.parse(readFileSync(path.join(cache, "current.json"), "utf8"));
  } catch {
    return undefined; // never built, or the cache was removed
  }
  if (current.node !== process.versions.node || !(builderFile(root) in current.stamps)) return undefined;
  const now = stamps(root, Object.keys(current.stamps));
  const unchanged = Object.entries(current.stamps).every(([file, stamp]) => JSON.stringify(stamp) === JSON.stringify(now[file]));
  const dir = path.join(cache, current.build);
  return unchanged && existsSync(path.join(dir, "main.js")) ? dir : undefined;
}

/**
 * `import.meta.url` (and `dirname`, `filename`) as each source file sees them when run from
 * its own path: the console's assets, the migrations and the token template are found
 * relative to their modules.
 */
const keepModuleUrls = {
  name: "keep-module-urls",
  setup(build) {
    build.onLoad({ filter: /\.ts$/ }, (args) => {
      const contents = readFileSync(args.path, "utf8")
        .replaceAll("import.meta.url", JSON.stringify(pathToFileURL(args.path).href))
        .replaceAll("import.meta.dirname", JSON.stringify(path.dirname(args.path)))
        .replaceAll("import.meta.filename", JSON.stringify(args.path));
      return { contents, loader: "ts" };
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

/**
 * Every bundle holds, beside its `main.js`, the API's cluster worker as its own entry:
 * apps/api/src/workers.ts forks it from there when its primary runs bundled (it finds it
 * through the two names defined below), so a bundled primary never needs tsx. The two
 * entries share the bundle's chunks. A role that never forks workers costs only disk.
 */
const API_WORKER = { source: "apps/api/src/worker.ts", name: "api-worker" };
/** The keyless ACME validator an API process starts as its child (apps/api/src/workers.ts acmeValidatorEntry). */
const ACME_VALIDATOR = { source: "apps/acme-validator/src/main.ts", name: "acme-validator" };

/** Compiles `entry` (and the API worker) into `outdir`; returns esbuild's metafile. */
export async function compile({ root = REPO_ROOT, entry, outdir }) {
  const esbuild = await import("esbuild");
  try {
    const result = await esbuild.build({
      absWorkingDir: root,
      entryPoints: { main: entry, [API_WORKER.name]: path.join(root, API_WORKER.source), [ACME_VALIDATOR.name]: path.join(root, ACME_VALIDATOR.source) },
      bundle: true,
      // Modules main.ts imports on first use (the scheduler's) stay separate files, loaded then;
      // chunks go beside main.js, where workers.ts looks for the worker's file.
      splitting: true,
      format: "esm",
      platform: "node",
      target: `node${process.versions.node}`,
      // As tsx compiles them: class and function names survive (error names, logs).
      keepNames: true,
      sourcemap: true,
      sourcesContent: false,
      // What workers.ts reads to find the bundled worker: the URL of the bundle file the
      // code runs from (not the source's, which keepModuleUrls gives `import.meta.url`),
      // and the worker's file name there. Left undefined when running from TypeScript.
      define: {
        BUNDLE_MODULE_URL: "import.meta.url",
        BUNDLED_API_WORKER_FILE: JSON.stringify(`${API_WORKER.name}.js`),
        BUNDLED_ACME_VALIDATOR_FILE: JSON.stringify(`${ACME_VALIDATOR.name}.js`),
      },
      outdir,
      plugins: [keepModuleUrls, externalPackages],
      metafile: true,
      logLevel: "warning",
    });
    return result.metafile;
  } finally {
    // Its service process would otherwise stay for the life of the server.
    await esbuild.stop();
  }
}

async function build(root, entry, cache) {
  const staging = path.join(cache, `building-${process.pid}`);
  rmSync(staging, { recursive: true, force: true });
  let metafile;
  try {
    metafile = await compile({ root, entry, outdir: staging });
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
  const record = {
    node: process.versions.node,
    stamps: stamps(root, [...Object.keys(metafile.inputs), ...settingsFiles(root)]),
  };
  record.build = createHash("sha256").update(JSON.stringify(record)).digest("hex").slice(0, 16);
  const dir = path.join(cache, record.build);
  try {
    renameSync(staging, dir);
  } catch (error) {
    // Another start built the same sources at the same time: use its build.
    if (!existsSync(path.join(dir, "main.js"))) throw error;
    rmSync(staging, { recursive: true, force: true });
  }
  const current = path.join(cache, "current.json");
  writeFileSync(`${current}.${process.pid}`, JSON.stringify(record));
  renameSync(`${current}.${process.pid}`, current);
  pruneOlderBuilds(cache, record.build);
  return dir;
}

function pruneOlderBuilds(cache, keep) {
  const builds = readdirSync(cache, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && entry.name !== keep && !entry.name.startsWith("building-"))
    .map((entry) => ({ dir: path.join(cache, entry.name), mtimeMs: statSync(path.join(cache, entry.name)).mtimeMs }))
    .sort((a, b) => b.mtimeMs - a.mtimeMs);
  for (const old of builds.slice(OLDER_BUILDS_KEPT)) rmSync(old.dir, { recursive: true, force: true });
}

/**
 * The bundle of `entry` (a path under `root`) in `cache`: its `main.js`, the API worker's
 * `api-worker.js`, and the chunks that modules imported on first use become. Built only if a file the cached one was built from
 * changed (size or modification time), or none is cached.
 */
export async function bundle({ root = REPO_ROOT, entry, cache }) {
  try {
    mkdirSync(cache, { recursive: true });
    accessSync(cache, constants.W_OK);
  } catch (error) {
    // Never a shared fallback such as /tmp: whoever could write there would choose the code this runs.
    const run = `node --import tsx ${path.relative(process.cwd(), entry)}`;
    throw new Error(`cannot keep the compiled server in ${cache} (${error.code ?? error.message}): make it writable, or run ${run}`, { cause: error });
  }
  const dir = currentBuild(root, cache) ?? (await build(root, entry, cache));
  return path.join(dir, "main.js");
}
