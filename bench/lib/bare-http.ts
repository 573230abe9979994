// The bare node:http ceiling (bench/servers/bare-http.ts: one fixed response, RFC 5019's
// headers) as a child process, for the groups that measure against it.
import path from "node:path";
import { REPO_ROOT } from "./repo.ts";
import { freePort, start, waitForHttp } from "./proc.ts";

const BARE_SERVER = path.join(REPO_ROOT, "bench/servers/bare-http.ts");

export interface BareHttp {
  url: string;
  pid: number;
  stop: () => Promise<unknown>;
}

/** Starts the bare server answering every request with the bytes in `responseFile`; resolves once it answers. */
export async function startBareHttp(responseFile: string): Promise<BareHttp> {
  const port = await freePort();
  const server = start(process.execPath, ["--import", "tsx", BARE_SERVER, responseFile, String(port)]);
  const url = `http://127.0.0.1:${port}/`;
  try {
    await waitForHttp(url, { alive: () => server.child.exitCode === null });
  } catch (error) {
    await server.stop();
    throw error;
  }
  return { url, pid: server.child.pid!, stop: server.stop };
}
