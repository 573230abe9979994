// The issuing API's TLS as a scanner sees it, with the real openssl client: TLS 1.2 only
// with forward-secret AEAD suites (no CBC, no SHA-1 MAC, no RSA key exchange), and no
// client-initiated renegotiation.
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runAsync, startTestApi, type TestApi } from "../support/api.ts";
import { childEnv } from "../support/settings.ts";
import { scratchDir, writeTemp } from "../support/tools.ts";

let t: TestApi;
let rootFile: string;
let connect: string;

beforeAll(async () => {
  t = await startTestApi({ database: "postgres" });
  rootFile = writeTemp("root.pem", t.rootPem, scratchDir());
  connect = new URL(t.api.url).host;
});
afterAll(async () => {
  await t?.stop();
});

/** openssl s_client with `input` on stdin; -ign_eof keeps it reading the server after stdin ends. */
const sClient = (args: string[], input = "") => runAsync("openssl", ["s_client", "-connect", connect, "-servername", "127.0.0.1", "-CAfile", rootFile, ...args], { input });

describe("API listener TLS", () => {
  it("negotiates TLS 1.2 only with ECDHE AEAD suites", async () => {
    const good = await sClient(["-tls1_2"], "Q\n");
    expect(good.stdout).toMatch(/Cipher is ECDHE-ECDSA-AES(128|256)-GCM-SHA(256|384)/);
    expect(good.stdout).toMatch(/Verify return code: 0 \(ok\)/);
    for (const cipher of ["AES128-SHA", "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384", "AES256-GCM-SHA384"]) {
      const refused = await sClient(["-tls1_2", "-cipher", cipher], "Q\n");
      expect(refused.status, `${cipher}: ${refused.stdout}`).not.toBe(0);
      expect(refused.stdout + refused.stderr, cipher).toMatch(/handshake failure|no shared cipher|Cipher is \(NONE\)/);
    }
  });

  it("refuses a client-initiated renegotiation", async () => {
    const { code, afterRequest } = await renegotiate();
    expect(afterRequest).toMatch(/RENEGOTIATING/);
    expect(afterRequest).toMatch(/no renegotiation/);
    expect(afterRequest).not.toMatch(/verify return:1/); // no second handshake happened
    expect(code).not.toBe(0);
  });
});

/**
 * s_client over TLS 1.2 asks for a renegotiation ("R") once the handshake is done; if
 * the server goes along, a second handshake is verified and we quit ("Q"). Resolves with
 * the exit code and what s_client printed after the request.
 */
function renegotiate(): Promise<{ code: number | null; afterRequest: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("openssl", ["s_client", "-connect", connect, "-servername", "127.0.0.1", "-CAfile", rootFile, "-tls1_2"], { env: childEnv(), stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    let requestedAt = -1;
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (requestedAt < 0 && output.includes("Verify return code")) {
        requestedAt = output.length;
        child.stdin.write("R\n");
      } else if (requestedAt >= 0 && /verify return:1/.test(output.slice(requestedAt))) {
        child.stdin.end("Q\n");
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, afterRequest: requestedAt < 0 ? output : output.slice(requestedAt).trimStart() }));
  });
}
