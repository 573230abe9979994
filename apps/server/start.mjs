// `npm start`'s entry point: runs src/main.ts compiled into a bundle, with plain Node.
//
// Why not `node --import tsx src/main.ts`: tsx cost the idle
// quickstart ~25 MB of its ~195 (its module hooks run in a second V8 isolate, and tsx and
// esbuild's JavaScript load in both), and each time its cache missed (a first start, an
// edited file) it left esbuild's service process running beside the server (~17 MB more).
// The bundle is built on the first start and after a source file changes (bundle.mjs).
// Without source maps, stack traces name the bundle's lines (each module in it starts with
// a comment naming its source file); NODE_OPTIONS=--enable-source-maps maps them back to
// the TypeScript, at a few MB of memory.
import path from "node:path";
import { pathToFileURL } from "node:url";
import { bundle, REPO_ROOT } from "./bundle.mjs";

// The API's cluster workers (PKI_API_WORKERS, on PostgreSQL) run the bundle's own worker
// entry (apps/api/src/workers.ts finds it), so they need no tsx either.
const main = await bundle({ entry: path.join(REPO_ROOT, "apps/server/src/main.ts"), cache: path.join(REPO_ROOT, "node_modules/.cache/pki-server") });
await import(pathToFileURL(main).href);
