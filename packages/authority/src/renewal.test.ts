// Authority.renew with the real parts: a SoftHSM token initialised by the CA's own
// ceremony, the real PostgreSQL that scripts/with-postgres.sh starts, the whole issuance
// pipeline. What a renewal keeps (names, profile, lifetime, autoRenew), what it may change
// (the key, through a CSR with the same names), and what it refuses.
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "@pki/config";
import type { CertificateRecord, Inventory } from "@pki/db";
import { throwawayInventory } from "@pki/db/testing";
import { CaError, type CsrProposal, MIN_TTL_SECONDS, parseSan } from "@pki/x509";
import type { Requester } from "./authority.ts";
import { initCa } from "./ceremony.ts";
import { systemClock } from "./clock.ts";
import { type CaRuntime, openCa } from "./runtime.ts";

let dataDir: string;
let database: Awaited<ReturnType<typeof throwawayInventory>>;
let inventory: Inventory;
let runtime: CaRuntime;
const operator: Requester = { kind: "operator", actor: "unit:renew" };

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), "pki-renew-"));
  database = await throwawayInventory(process.env.PKI_TEST_DATABASE_URL, "renew");
  inventory = database.inventory;
  const config = loadConfig({ PKI_DATA_DIR: dataDir, PKI_LOG_LEVEL: "warn" });
  await initCa(config, inventory, systemClock, "unit:init");
  runtime = await openCa(config, systemClock, inventory);
}, 180_000);

afterAll(async () => {
  await runtime?.close();
  await database?.close();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

const newKey = (curve = "P-256") => generateKeyPairSync("ec", { namedCurve: curve }).publicKey.export({ format: "der", type: "spki" });

function proposal(names: string[], publicKeySpki = newKey()): CsrProposal {
  return { publicKeySpki, keyAlgorithm: "ECDSA-P256", commonName: names[0], sans: names.map((n) => parseSan(`DNS:${n}`)) };
}

async function issued(names: string[], ttlSeconds = 3600, autoRenew = true): Promise<CertificateRecord> {
  const certificate = await runtime.authority.issue({ csr: proposal(names), profile: "mtls", ttlSeconds, autoRenew, requester: operator });
  return (await inventory.certificates.get(certificate.serial))!;
}

async function refusal(promise: Promise<unknown>): Promise<CaError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CaError);
  return error as CaError;
}

const lifetimeOf = (c: { notBefore: Date; notAfter: Date }) => (c.notAfter.getTime() - c.notBefore.getTime()) / 1000;

describe("Authority.renew", () => {
  it("keeps the names, profile, key, lifetime and autoRenew, and links the successor to its predecessor", async () => {
    const predecessor = await issued(["keep.renew.test", "alt.renew.test"], 7200);
    const successor = await runtime.authority.renew({ predecessor, requester: operator });
    const stored = (await inventory.certificates.get(successor.serial))!;
    expect(stored.subject).toBe(predecessor.subject);
    expect([...stored.sans].sort()).toEqual([...predecessor.sans].sort());
    expect(stored.profile).toBe("mtls");
    expect(stored.publicKeySpki.equals(predecessor.publicKeySpki)).toBe(true);
    expect(lifetimeOf(stored)).toBe(lifetimeOf(predecessor));
    expect(stored.autoRenew).toBe(true);
    expect(stored.predecessorSerial).toBe(predecessor.serial);
    expect((await inventory.certificates.get(predecessor.serial))!.successorSerial).toBe(successor.serial);
  });

  it("reads the key's algorithm from the key itself, not from the stored label", async () => {
    const predecessor = await issued(["label.renew.test"]);
    const mislabelled = { ...predecessor, keyAlgorithm: "RSA-2048" } as CertificateRecord;
    const successor = await runtime.authority.renew({ predecessor: mislabelled, requester: operator });
    expect((await inventory.certificates.get(successor.serial))!.keyAlgorithm).toBe("ECDSA-P256");
  });

  it("gives a predecessor shorter than the CA's minimum lifetime that minimum", async () => {
    const predecessor = await issued(["short.renew.test"]);
    const backdate = runtime.config.ca.backdateSeconds;
    const short = { ...predecessor, notAfter: new Date(predecessor.notBefore.getTime() + (backdate + 10) * 1000) };
    const successor = await runtime.authority.renew({ predecessor: short, requester: operator });
    expect(lifetimeOf(successor)).toBe(MIN_TTL_SECONDS + backdate);
  });

  it("takes a new key from a CSR with the same names", async () => {
    const predecessor = await issued(["rekey.renew.test"]);
    const csr = proposal(["rekey.renew.test"]);
    const successor = await runtime.authority.renew({ predecessor, requester: operator, csr });
    expect((await inventory.certificates.get(successor.serial))!.publicKeySpki.equals(csr.publicKeySpki)).toBe(true);
  });

  it("refuses a CSR with other names, naming both, and records no successor", async () => {
    const predecessor = await issued(["names.renew.test"]);
    const error = await refusal(runtime.authority.renew({ predecessor, requester: operator, csr: proposal(["names.renew.test", "extra.renew.test"]) }));
    expect(error.kind).toBe("bad_request");
    expect(error.message).toMatch(/keeps the names of certificate [0-9a-f]+ \(CN=names\.renew\.test, DNS:names\.renew\.test\); the CSR asks for .*DNS:extra\.renew\.test/);
    expect((await inventory.certificates.get(predecessor.serial))!.successorSerial).toBeNull();
  });

  it("refuses a profile this CA no longer issues, and a stored key it no longer accepts unless a CSR brings a new one", async () => {
    const predecessor = await issued(["refuse.renew.test"]);
    const profile = await refusal(runtime.authority.renew({ predecessor: { ...predecessor, profile: "codesigning" }, requester: operator }));
    expect(profile.kind).toBe("bad_request");
    expect(profile.message).toBe(`certificate ${predecessor.serial} has unknown profile 'codesigning', which this CA no longer issues`);
    const oldKey = { ...predecessor, publicKeySpki: newKey("secp256k1") };
    const key = await refusal(runtime.authority.renew({ predecessor: oldKey, requester: operator }));
    expect(key.kind).toBe("bad_request");
    expect(key.message).toMatch(new RegExp(`certificate ${predecessor.serial} has a key this CA no longer accepts .*; renew with a CSR for a new key`));
    const rekeyed = await runtime.authority.renew({ predecessor: oldKey, requester: operator, csr: proposal(["refuse.renew.test"]) });
    expect(rekeyed.serial).not.toBe(predecessor.serial);
  });
});
