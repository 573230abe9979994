// `node apps/server/build-dist.mjs [outdir] [app...]`: compiles each app (every apps/<app>
// with a src/main.ts, or the ones named) into outdir/<app>/main.js (default outdir: dist),
// with the API worker beside it (bundle.mjs), for plain Node: `node dist/api/main.js`.
//
// The image runs this when it is built, and its roles run the result: a container then
// starts without compiling anything, on a read-only root filesystem (compose's
// read_only: true), and without tsx (with it, each role's idle memory was about twice as
// much and its start 2-3 times longer: bench/NOTES.md). npm start compiles on its first
// start instead (start.mjs), since a checkout's sources change under it.
import { existsSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { compile, REPO_ROOT } from "./bundle.mjs";

const [outdirArg = "dist", ...named] = process.argv.slice(2);
const outdir = path.resolve(outdirArg);
// npm packages stay imports, found in the checkout's node_modules from where the bundle lies.
if (path.relative(REPO_ROOT, outdir).startsWith("..") || path.isAbsolute(path.relative(REPO_ROOT, outdir)))
  throw new Error(`${outdir} is outside ${REPO_ROOT}: the bundles must lie inside it to find its node_modules`);
const apps = named.length ? named : readdirSync(path.join(REPO_ROOT, "apps")).filter((app) => existsSync(path.join(REPO_ROOT, "apps", app, "src/main.ts")));
for (const app of apps) {
  const entry = path.join(REPO_ROOT, "apps", app, "src/main.ts");
  if (!existsSync(entry)) throw new Error(`no such app: ${entry} does not exist`);
  const target = path.join(outdir, app);
  rmSync(target, { recursive: true, force: true });
  await compile({ entry, outdir: target });
  console.log(`${path.relative(process.cwd(), path.join(target, "main.js"))} (from apps/${app}/src/main.ts)`);
}
