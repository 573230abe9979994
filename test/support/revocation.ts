// A CA with its revocation roles on a real public HTTP listener: the CRL publisher and
// OCSP pre-signer (with the token) and the OCSP responder in front of express, wired as
// apps/server wires them, on a free port that the certificates' URLs already name.
import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import { createServer as createNetServer } from "node:net";
import { writeFileSync } from "node:fs";
import path from "node:path";
import express from "express";
import { parseCsr, pemBlocks, toPem } from "@pki/x509";
import type { Clock } from "@pki/authority";
import { createCrlPublisherRole, type CrlPublisherRole } from "@pki/crl-publisher";
import { createOcspResponderRole, type OcspResponderRole } from "@pki/ocsp-responder";
import { startTestCa, type TestCa } from "./harness.ts";
import { opensslCsr, scratchDir } from "./tools.ts";
import { childEnv } from "./settings.ts";

export async function unusedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createNetServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

export interface IssuedLeaf {
  serial: string;
  pem: string;
  certPath: string;
  keyPath: string;
}

export interface RevocationCa {
  ca: TestCa;
  roles: CrlPublisherRole;
  ocsp: OcspResponderRole;
  server: Server;
  baseUrl: string;
  dir: string;
  issuerId: string;
  rootId: string;
  rootPath: string;
  intermediatePath: string;
  /** root then intermediate, PEM, for -CAfile */
  bundlePath: string;
  issue(options?: { commonName?: string; ttlSeconds?: number }): Promise<IssuedLeaf>;
  settle(): Promise<void>;
  stop(): Promise<void>;
}

export async function startRevocationCa(env: Record<string, string> = {}, options: { clock?: Clock } = {}): Promise<RevocationCa> {
  const port = await unusedPort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const ca = await startTestCa({ env: { PKI_PUBLIC_URL: baseUrl, ...env }, ...options });
  const roles = await createCrlPublisherRole(ca.runtime);
  const ocsp = await createOcspResponderRole({ inventory: ca.inventory, config: ca.runtime.config, clock: ca.runtime.clock, live: roles.ocspSigner });
  const app = express();
  app.use(roles.router);
  app.use((_req, res) => void res.status(404).end());
  const server = createServer(ocsp.handler(app));
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));

  const dir = scratchDir();
  const active = ca.runtime.keyring.active();
  const rootDer = active.chain[active.chain.length - 1]!;
  const rootPath = path.join(dir, "root.pem");
  const intermediatePath = path.join(dir, "intermediate.pem");
  const bundlePath = path.join(dir, "bundle.pem");
  writeFileSync(rootPath, toPem(rootDer));
  writeFileSync(intermediatePath, toPem(active.chain[0]!));
  writeFileSync(bundlePath, toPem(rootDer) + toPem(active.chain[0]!));
  const rootId = (await ca.inventory.issuers.list()).find((i) => i.role === "root")!.id;

  const csr = opensslCsr({ subject: "/CN=svc.revocation.example", dir });
  let count = 0;
  const issue = async (options: { commonName?: string; ttlSeconds?: number } = {}): Promise<IssuedLeaf> => {
    // One key for many certificates keeps a burst of issuance fast; each certificate is distinct.
    const own = options.commonName ? opensslCsr({ subject: `/CN=${options.commonName}`, dir }) : csr;
    const issued = await ca.runtime.authority.issue({ csr: parseCsr(Buffer.from(own.csrPem)), profile: "mtls", ttlSeconds: options.ttlSeconds, requester: { kind: "operator", actor: "test" } });
    const certPath = path.join(dir, `leaf-${count++}.pem`);
    writeFileSync(certPath, issued.pem);
    return { serial: issued.serial, pem: issued.pem, certPath, keyPath: own.keyPath };
  };

  return {
    ca,
    roles,
    ocsp,
    server,
    baseUrl,
    dir,
    issuerId: active.record.id,
    rootId,
    rootPath,
    intermediatePath,
    bundlePath,
    issue,
    settle: async () => {
      await roles.ocspSigner.settled();
      await roles.publisher.settled();
      await roles.cache.refresh();
      await ocsp.responder.poll();
    },
    stop: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      ocsp.stop();
      await roles.stop();
      await ca.cleanup();
    },
  };
}

/** GET a URL: status, headers and body bytes. */
export async function fetchBytes(url: string, init?: RequestInit): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const response = await fetch(url, init);
  return { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) };
}

/**
 * Runs a tool without blocking the event loop: the servers under test live in this very
 * process, so a synchronous spawn of a client that talks to them would deadlock.
 */
export function runAsync(command: string, args: string[], options: { env?: Record<string, string> } = {}): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: childEnv(options.env), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ status: code ?? -1, stdout, stderr }));
  });
}

export function derToPem(der: Buffer, label: string): string {
  return toPem(der, label);
}

export { pemBlocks };
