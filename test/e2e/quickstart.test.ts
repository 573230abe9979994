// The README's quickstart, as a newcomer runs it: `npm start` on an empty data dir with
// the embedded database, then `openssl req` + `pki issue` while the server runs.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { connect } from "node:tls";
import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO_ROOT, testEnv, type TestEnv } from "../support/harness.ts";
import { freePort, opensslCsr, opensslVerify, pki, run, npmStartArgs } from "../support/tools.ts";
import { childEnv } from "../support/settings.ts";
import { callApi } from "../support/api.ts";

let env: TestEnv;
let server: ChildProcess | undefined;
let output = "";

afterAll(async () => {
  if (server && server.exitCode === null) server.kill("SIGKILL");
  await env?.cleanup();
});

async function waitFor(predicate: () => boolean, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; server said:\n${output}`);
    if (server?.exitCode !== null) throw new Error(`server exited (${server?.exitCode}) while waiting for ${what}:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("quickstart", () => {
  it("the server (what npm start runs) initialises everything, serves, and pki issue works beside it", async () => {
    env = await testEnv({ database: "embedded" });
    const httpPort = await freePort();
    const apiPort = await freePort();
    const serverEnv = { ...env.env, PKI_HTTP_PORT: String(httpPort), PKI_API_PORT: String(apiPort), PKI_PUBLIC_URL: `http://127.0.0.1:${httpPort}` };
    server = spawn(process.execPath, npmStartArgs(), {
      cwd: REPO_ROOT,
      env: childEnv(serverEnv),
      stdio: ["ignore", "pipe", "pipe"],
      detached: false,
    });
    server.stdout!.on("data", (d) => (output += d));
    server.stderr!.on("data", (d) => (output += d));
    await waitFor(() => output.includes("issuing API:"), "the server to listen");

    // each step is printed as it happens, and the database comes from the template npm install built
    expect(output).toMatch(/pki: \[\d+\.\d s\] embedded database created in .* \(from the (install-time|new) template\)/);
    const steps = [...output.matchAll(/^pki: \[(\d+\.\d) s\] (.*)$/gm)];
    expect(steps.map((m) => m[2]!).join("\n")).toMatch(/token 'pki-root' created[\s\S]*root \S+ created[\s\S]*intermediate \S+ created[\s\S]*ready$/);
    const seconds = steps.map((m) => Number(m[1]));
    expect(seconds).toEqual([...seconds].sort((x, y) => x - y));
    expect(output).toContain(`root certificate: ${path.join(env.dataDir, "root.pem")}`);
    expect(output).toContain(`admin token:      ${path.join(env.dataDir, "admin.token")}`);
    expect(statSync(path.join(env.dataDir, "admin.token")).mode & 0o777).toBe(0o600);
    expect(output).not.toContain(readFileSync(path.join(env.dataDir, "admin.token"), "utf8").trim());
    expect(output).not.toContain(readFileSync(path.join(env.dataDir, "pki-issuing.pin"), "utf8").trim());

    const ready = await fetch(`http://127.0.0.1:${httpPort}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ok: true, checks: { database: "ok", token: "ok", activeIssuer: "ok" } });

    // The operator console carries the admin session: it is on the HTTPS API listener, not the public one.
    expect(output).toContain(`operator console: https://127.0.0.1:${apiPort}/console/`);
    expect((await fetch(`http://127.0.0.1:${httpPort}/console/`)).status).toBe(404);
    const rootPem = readFileSync(path.join(env.dataDir, "root.pem"), "utf8");
    expect((await callApi(`https://127.0.0.1:${apiPort}`, rootPem, "GET", "/console/")).status).toBe(200);
    expect((await callApi(`https://127.0.0.1:${apiPort}`, rootPem, "GET", "/dashboard")).headers.location).toBe("/console/");

    const csr = opensslCsr({ subject: "/CN=quick.example.com" });
    const issued = pki(["issue", "--csr", csr.csrPath], serverEnv);
    expect(issued.stderr).toMatch(/^issued /);
    const chain = await (await fetch(`http://127.0.0.1:${httpPort}/ca/chain.pem`)).text();
    expect(opensslVerify(issued.stdout, readFileSync(path.join(env.dataDir, "root.pem"), "utf8"), chain).stdout).toMatch(/: OK/);

    // caIssuers URL in the certificate answers with the intermediate in DER.
    const caIssuers = /CA Issuers - URI:(\S+)/.exec(run("openssl", ["x509", "-noout", "-ext", "authorityInfoAccess"], { input: issued.stdout }).stdout)![1]!;
    const der = await fetch(caIssuers);
    expect(der.headers.get("content-type")).toBe("application/pkix-cert");
    expect(run("openssl", ["x509", "-inform", "DER", "-noout", "-subject"], { input: Buffer.from(await der.arrayBuffer()) }).stdout).toMatch(/Issuing CA/);

    server.kill("SIGTERM");
    const [code] = await once(server, "exit");
    expect(code).toBe(0);

    const files = ["root.pem", "chain.pem", "api-listener.key", "api-listener.serial"].map((f) => path.join(env.dataDir, f));
    const snapshot = () => files.map((f) => `${f} ${statSync(f).mtimeMs} ${readFileSync(f, "utf8")}`);
    const before = snapshot();
    const listenerSerial = readFileSync(path.join(env.dataDir, "api-listener.serial"), "utf8").trim();
    const startServer = () => {
      output = "";
      server = spawn(process.execPath, npmStartArgs(), { cwd: REPO_ROOT, env: childEnv(serverEnv), stdio: ["ignore", "pipe", "pipe"] });
      server.stdout!.on("data", (d) => (output += d));
      server.stderr!.on("data", (d) => (output += d));
    };

    // A start that cannot bind its port says so and touches no file.
    const blocker = createServer().listen(apiPort, "127.0.0.1");
    await once(blocker, "listening");
    startServer();
    const [failed] = await once(server!, "exit");
    blocker.close();
    expect(failed).toBe(1);
    expect(output).toMatch(/cannot listen on 127\.0\.0\.1:\d+ \(PKI_API_PORT\): the port is in use/);
    expect(snapshot()).toEqual(before);

    // A second start reuses the data dir: nothing is created again, no file is rewritten,
    // and the API keeps its still-good TLS certificate.
    startServer();
    await waitFor(() => output.includes("issuing API:"), "the second start");
    expect(output).not.toMatch(/created/);
    expect(snapshot()).toEqual(before);
    const served = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: "127.0.0.1", port: apiPort, rejectUnauthorized: false }, () => {
        resolve(socket.getPeerCertificate().serialNumber.toLowerCase());
        socket.end();
      });
      socket.once("error", reject);
    });
    expect(served.replace(/^0+/, "")).toBe(listenerSerial.replace(/^0+/, ""));
    server!.kill("SIGTERM");
    expect((await once(server!, "exit"))[0]).toBe(0);
  });
});
