import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createHash, createPublicKey, verify } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Pkcs11Module, graphene, pkcs11js } from "./module.ts";
import { SignThreads } from "./sign-threads.ts";
import { Token } from "./token.ts";
import { softhsmConfig } from "./softhsm.ts";
import { parseKeyUri, formatKeyUri } from "./uri.ts";
import { KEY_ALGORITHMS, hashFor } from "./algorithms.ts";
import { Pkcs11KeyBackend } from "./pkcs11-backend.ts";
import type { KeyManager } from "./key-manager.ts";

const MODULE = ["/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"].find((m) => existsSync(m))!;

let dir: string;
let token: Token;
let module: Pkcs11Module;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), "pki-hsm-"));
  module = Pkcs11Module.load(MODULE, { softhsmConf: softhsmConfig(dir) });
  module.initToken("unit", "so-pin-1234", "user-pin-1234");
  token = Token.open({ modulePath: MODULE, label: "unit", pin: "user-pin-1234", sessions: 4 });
});
afterAll(() => {
  token.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The handle of the private key labelled `label`, found on `session`. */
function privateKeyHandle(session: graphene.Session, label: string): Buffer {
  module.api.C_FindObjectsInit(session.handle, [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
    { type: pkcs11js.CKA_LABEL, value: label },
  ]);
  const [handle] = module.api.C_FindObjects(session.handle, 2);
  module.api.C_FindObjectsFinal(session.handle);
  return handle!;
}

describe("keys on the token", () => {
  it.each(KEY_ALGORITHMS.filter((a) => a !== "RSA-4096"))("%s: generated sensitive and non-extractable, signs verifiably", async (algorithm) => {
    const key = await token.generateKeyPair(`k-${algorithm}`, algorithm);
    expect(key).toMatchObject({ algorithm, sensitive: true, extractable: false, alwaysSensitive: true, neverExtractable: true });
    const signer = await token.signer(key.uri);
    const data = Buffer.from(`data for ${algorithm}`);
    const signature = await signer.sign(data);
    expect(verify(hashFor(algorithm), data, createPublicKey({ key: signer.publicKeySpki, format: "der", type: "spki" }), signature)).toBe(true);
    expect(verify(hashFor(algorithm), Buffer.from("other data"), createPublicKey({ key: signer.publicKeySpki, format: "der", type: "spki" }), signature)).toBe(false);
    // a digest hashed elsewhere (streamed CRLs) signs the same data
    expect(signer.hash).toBe(hashFor(algorithm));
    const fromDigest = await signer.signDigest(createHash(signer.hash).update(data).digest());
    expect(verify(hashFor(algorithm), data, createPublicKey({ key: signer.publicKeySpki, format: "der", type: "spki" }), fromDigest)).toBe(true);
  });

  it("refuses to reveal a private key's value", async () => {
    const key = await token.generateKeyPair("secret", "ECDSA-P256");
    const api = module.api;
    const slot = module.findToken("unit")!.slotId;
    const session = api.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
    try {
      api.C_FindObjectsInit(session, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
        { type: pkcs11js.CKA_LABEL, value: "secret" },
      ]);
      const [handle] = api.C_FindObjects(session, 1);
      api.C_FindObjectsFinal(session);
      expect(handle).toBeDefined();
      expect(() => api.C_GetAttributeValue(session, handle!, [{ type: pkcs11js.CKA_VALUE }])).toThrow(/CKR_ATTRIBUTE_SENSITIVE/);
    } finally {
      api.C_CloseSession(session);
    }
    expect(key.uri).toMatch(/^pkcs11:token=unit;object=secret;id=(%[0-9a-f]{2}){8};type=private$/);
  });

  it("finds keys again by URI, not by handle, and refuses duplicates", async () => {
    const key = await token.generateKeyPair("again", "ECDSA-P256");
    const found = await token.keyInfo(formatKeyUri(parseKeyUri(key.uri)));
    expect(found?.publicKeySpki.equals(key.publicKeySpki)).toBe(true);
    expect(await token.keyInfo("pkcs11:token=unit;object=missing")).toBeUndefined();
    await expect(token.generateKeyPair("again", "ECDSA-P256")).rejects.toThrow(/already holds a key labelled 'again'/);
  });

  it("signs concurrently through the session pool, several signatures per session and trip to a thread", async () => {
    const signer = await token.signer((await token.generateKeyPair("busy", "ECDSA-P256")).uri);
    const before = { ...module.signThreads.posted };
    const messages = Array.from({ length: 500 }, (_, i) => Buffer.from(`msg ${i}`));
    const signatures = await Promise.all(messages.map((message) => signer.sign(message)));
    const publicKey = createPublicKey({ key: signer.publicKeySpki, format: "der", type: "spki" });
    // each answer is the signature of its own message, not of a neighbour in its chain
    expect(signatures.every((signature, i) => verify("sha256", messages[i]!, publicKey, signature))).toBe(true);
    expect(module.signThreads.posted.signatures - before.signatures).toBe(500);
    expect(module.signThreads.posted.chains - before.chains).toBeLessThanOrEqual(500 / 4);
    expect(token.stats()).toEqual({ sessions: 4, idle: 4, waiting: 0 });
  });

  it("reports a chain's failures one by one: the signatures around a bad input still come back", async () => {
    await token.generateKeyPair("chain-rsa", "RSA-2048");
    const session = module.slotOf("unit")!.open(graphene.SessionFlag.SERIAL_SESSION);
    try {
      const handle = privateKeyHandle(session, "chain-rsa");
      // CKM_RSA_PKCS signs at most the modulus length less 11 bytes: SoftHSM refuses 300 bytes
      const [good, tooLong, alsoGood] = await module.signThreads.signChain(session.handle, handle, pkcs11js.CKM_RSA_PKCS, [Buffer.alloc(51, 1), Buffer.alloc(300, 2), Buffer.alloc(51, 3)]);
      expect(good).toBeInstanceOf(Buffer);
      expect(tooLong).toBeInstanceOf(Error);
      expect((tooLong as Error).message).toMatch(/^CKR_[A-Z_]+/);
      expect(alsoGood).toBeInstanceOf(Buffer);
      expect(Buffer.compare(good as Buffer, alsoGood as Buffer)).not.toBe(0);
    } finally {
      session.close();
    }
  });

  it("signs on threads of its own that share the process's session and key handles, stop when idle and start again", async () => {
    const key = await token.generateKeyPair("threaded", "ECDSA-P256");
    const session = module.slotOf("unit")!.open(graphene.SessionFlag.SERIAL_SESSION);
    // PKCS#11 allows one operation per session at a time: as the token's pool does, each
    // thread signs on a session of its own (two on one session race to CKR_OPERATION_ACTIVE)
    const other = module.slotOf("unit")!.open(graphene.SessionFlag.SERIAL_SESSION);
    try {
      const handle = privateKeyHandle(session, "threaded");
      const threads = new SignThreads(MODULE, 2, 2_000);
      const digestOf = (text: string) => createHash("sha256").update(text).digest();
      const publicKey = createPublicKey({ key: key.publicKeySpki, format: "der", type: "spki" });
      // two requests in one tick go out as one batch, split over both threads
      const [first, second] = await Promise.all([session, other].map((s, i) => threads.sign(s.handle, handle!, pkcs11js.CKM_ECDSA, digestOf(i === 0 ? "first" : "second"))));
      expect(threads.running()).toBe(2);
      expect(verify("sha256", Buffer.from("first"), { key: publicKey, dsaEncoding: "ieee-p1363" }, first!)).toBe(true);
      expect(verify("sha256", Buffer.from("second"), { key: publicKey, dsaEncoding: "ieee-p1363" }, second!)).toBe(true);
      for (let waited = 0; threads.running() > 0 && waited < 100; waited++) await new Promise((r) => setTimeout(r, 100));
      expect(threads.running()).toBe(0);
      const again = await threads.sign(session.handle, handle!, pkcs11js.CKM_ECDSA, digestOf("again"));
      expect(verify("sha256", Buffer.from("again"), { key: publicKey, dsaEncoding: "ieee-p1363" }, again)).toBe(true);
      await expect(threads.sign(Buffer.alloc(8, 0xee), handle!, pkcs11js.CKM_ECDSA, digestOf("x"))).rejects.toThrow(/CKR_SESSION_HANDLE_INVALID/);
      threads.close();
      await expect(threads.sign(session.handle, handle!, pkcs11js.CKM_ECDSA, digestOf("closed"))).rejects.toThrow(/stopped/);
    } finally {
      other.close();
      session.close();
    }
  });

  it("reconnects when the token drops every session under the process", async () => {
    const signer = await token.signer((await token.generateKeyPair("survivor", "ECDSA-P256")).uri);
    await signer.sign(Buffer.from("before"));
    // What an HSM restart or a network HSM failover looks like from here: all sessions gone, logged out.
    module.api.C_CloseAllSessions(module.findToken("unit")!.slotId);
    const signatures = await Promise.all(Array.from({ length: 20 }, (_, i) => signer.sign(Buffer.from(`after ${i}`))));
    expect(signatures).toHaveLength(20);
    expect(token.stats()).toEqual({ sessions: 4, idle: 4, waiting: 0 });
    const data = Buffer.from("verify after reconnect");
    expect(verify("sha256", data, createPublicKey({ key: signer.publicKeySpki, format: "der", type: "spki" }), await signer.sign(data))).toBe(true);
  });

  it("destroys a key pair (private and public objects) and only that one; again is a no-op", async () => {
    const doomed = await token.generateKeyPair("retired-responder", "ECDSA-P256");
    const kept = await token.generateKeyPair("current-responder", "ECDSA-P256");
    const objectsLabelled = (label: string) => {
      const session = module.api.C_OpenSession(module.findToken("unit")!.slotId, pkcs11js.CKF_SERIAL_SESSION);
      try {
        module.api.C_Login(session, pkcs11js.CKU_USER, "user-pin-1234");
      } catch (error) {
        if (!/CKR_USER_ALREADY_LOGGED_IN/.test(String(error))) throw error;
      }
      try {
        module.api.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_LABEL, value: label }]);
        const found = module.api.C_FindObjects(session, 16);
        module.api.C_FindObjectsFinal(session);
        return found.length;
      } finally {
        module.api.C_CloseSession(session);
      }
    };
    expect(objectsLabelled("retired-responder")).toBe(2);
    expect(await token.destroyKey(doomed.uri)).toBe(2);
    expect(objectsLabelled("retired-responder")).toBe(0);
    expect(await token.keyInfo(doomed.uri)).toBeUndefined();
    expect(await token.destroyKey(doomed.uri)).toBe(0);
    // the other key is untouched and still signs
    expect(objectsLabelled("current-responder")).toBe(2);
    const signer = await token.signer(kept.uri);
    expect((await signer.sign(Buffer.from("still here"))).length).toBeGreaterThan(0);
    // a key on another token is refused, never looked for here
    await expect(token.destroyKey("pkcs11:token=elsewhere;object=current-responder")).rejects.toThrow(/is not on token 'unit'/);
  });

  it("names a missing token and a wrong PIN", () => {
    expect(() => Token.open({ modulePath: MODULE, label: "nope", pin: "x" })).toThrow(/no initialised token labelled 'nope'/);
    module.initToken("other", "so-pin-1234", "right-pin");
    expect(() => Token.open({ modulePath: MODULE, label: "other", pin: "wrong-pin" })).toThrow(/token rejected the PIN/);
  });
});

/** Protection attributes of the objects labelled `label`, read with the raw binding rather than the code under test. */
function rawAttributes(tokenLabel: string, pin: string, label: string) {
  const api = module.api;
  const session = api.C_OpenSession(module.findToken(tokenLabel)!.slotId, pkcs11js.CKF_SERIAL_SESSION);
  try {
    try {
      api.C_Login(session, pkcs11js.CKU_USER, pin);
    } catch (error) {
      if (!/CKR_USER_ALREADY_LOGGED_IN/.test(String(error))) throw error;
    }
    api.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_LABEL, value: label }]);
    const handles = api.C_FindObjects(session, 16);
    api.C_FindObjectsFinal(session);
    return handles.map((handle) => {
      const [objectClass, onToken, isPrivate] = api.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_CLASS }, { type: pkcs11js.CKA_TOKEN }, { type: pkcs11js.CKA_PRIVATE }]);
      const bool = (attribute: pkcs11js.Attribute | undefined) => (attribute!.value as Buffer)[0] === 1;
      const privateKey = (objectClass!.value as Buffer).readUInt32LE(0) === pkcs11js.CKO_PRIVATE_KEY;
      if (!privateKey) return { privateKey, onToken: bool(onToken) };
      const [sensitive, extractable] = api.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_SENSITIVE }, { type: pkcs11js.CKA_EXTRACTABLE }]);
      return { privateKey, onToken: bool(onToken), isPrivate: bool(isPrivate), sensitive: bool(sensitive), extractable: bool(extractable) };
    });
  } finally {
    api.C_CloseSession(session);
  }
}

describe("the KeyManager interface, on PKCS#11", () => {
  it.each(["ECDSA-P256", "ECDSA-P384", "RSA-2048"] as const)("%s: the token's own attributes say sensitive, never extractable, on the token", async (algorithm) => {
    const keys: KeyManager = token;
    const label = `km-${algorithm}`;
    const key = await keys.generateKey(label, algorithm);
    const privateHalf = rawAttributes("unit", "user-pin-1234", label).find((o) => o.privateKey);
    expect(privateHalf).toEqual({ privateKey: true, onToken: true, isPrivate: true, sensitive: true, extractable: false });
    // the SPKI the interface reports is the one that verifies the key's signatures
    const spki = await keys.publicKeySpki(key.uri);
    expect(spki.equals(key.publicKeySpki)).toBe(true);
    const signer = await keys.signer(key.uri);
    const data = Buffer.from(`through the interface, ${algorithm}`);
    const publicKey = createPublicKey({ key: spki, format: "der", type: "spki" });
    expect(verify(hashFor(algorithm), data, publicKey, await signer.sign(data))).toBe(true);
    expect(verify(hashFor(algorithm), data, publicKey, await signer.signDigest(createHash(hashFor(algorithm)).update(data).digest()))).toBe(true);
    expect(verify(hashFor(algorithm), Buffer.from("tampered"), publicKey, await signer.sign(data))).toBe(false);
  });

  it("lists the keys it generated and forgets a destroyed one", async () => {
    const keys: KeyManager = token;
    const listed = await keys.generateKey("listed", "ECDSA-P256");
    const entry = (await keys.listKeys()).find((k) => k.label === "listed");
    expect(entry).toMatchObject({ uri: listed.uri, algorithm: "ECDSA-P256", sensitive: true, extractable: false });
    expect(entry?.publicKeySpki.equals(listed.publicKeySpki)).toBe(true);
    expect(await keys.destroyKey(listed.uri)).toBe(2);
    expect((await keys.listKeys()).some((k) => k.label === "listed")).toBe(false);
    expect(rawAttributes("unit", "user-pin-1234", "listed")).toEqual([]);
    expect(await keys.findKey(listed.uri)).toBeUndefined();
    await expect(keys.signer(listed.uri)).rejects.toThrow(/no key .* on token 'unit'/);
    await expect(keys.publicKeySpki(listed.uri)).rejects.toThrow(/no key .* on token 'unit'/);
  });

  it("provisions a fresh token, opens it with the generated PIN, and leaves an existing one alone", async () => {
    const backend = new Pkcs11KeyBackend({ modulePath: MODULE });
    const provisioned = await backend.provision({ label: "fresh" });
    expect(provisioned).toMatchObject({ label: "fresh", created: true });
    expect(provisioned.generatedPin).toMatch(/^[0-9a-f]{32}$/);
    expect(provisioned.soPin).toMatch(/^[0-9a-f]{32}$/);
    expect(provisioned.soPin).not.toBe(provisioned.generatedPin);

    const keys = await backend.open({ label: "fresh", pin: provisioned.generatedPin!, sessions: 2 });
    try {
      const key = await keys.generateKey("first", "ECDSA-P256");
      expect(key.uri).toMatch(/^pkcs11:token=fresh;object=first;/);
      const data = Buffer.from("signed on a token provisioned through the interface");
      expect(verify("sha256", data, createPublicKey({ key: key.publicKeySpki, format: "der", type: "spki" }), await (await keys.signer(key.uri)).sign(data))).toBe(true);
    } finally {
      keys.close();
    }

    // again: nothing changes, no PIN is handed out, the key is still there
    expect(await backend.provision({ label: "fresh" })).toEqual({ label: "fresh", created: false });
    const reopened = await backend.open({ label: "fresh", pin: provisioned.generatedPin! });
    try {
      expect((await reopened.listKeys()).map((k) => k.label)).toEqual(["first"]);
    } finally {
      reopened.close();
    }

    // a PIN the caller chose is used and not echoed back
    const chosen = await backend.provision({ label: "chosen-pin", pin: "chosen-pin-5678" });
    expect(chosen.created).toBe(true);
    expect(chosen.generatedPin).toBeUndefined();
    (await backend.open({ label: "chosen-pin", pin: "chosen-pin-5678" })).close();
  });

  it("names a wrong PIN without repeating it, and refuses to create tokens where it may not", async () => {
    const backend = new Pkcs11KeyBackend({ modulePath: MODULE });
    // a token nobody in this process has logged in to yet (login is per process and token)
    await backend.provision({ label: "pin-check", pin: "the-right-pin-1234" });
    const error = await backend.open({ label: "pin-check", pin: "not-the-pin-9876" }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/token rejected the PIN/);
    expect((error as Error).message).not.toContain("not-the-pin-9876");
    // once this process is logged in, the token itself no longer checks a PIN: ours does
    const right = await backend.open({ label: "pin-check", pin: "the-right-pin-1234" });
    try {
      const again = await backend.open({ label: "pin-check", pin: "not-the-pin-9876" }).catch((e: Error) => e);
      expect(again).toBeInstanceOf(Error);
      expect((again as Error).message).toMatch(/token 'pin-check': the token rejected the PIN/);
      expect((again as Error).message).not.toContain("not-the-pin-9876");
      (await backend.open({ label: "pin-check", pin: "the-right-pin-1234" })).close();
    } finally {
      right.close();
    }
    const hardware = new Pkcs11KeyBackend({ modulePath: MODULE, mayInitialiseTokens: false });
    await expect(hardware.provision({ label: "never-created" })).rejects.toThrow(/token 'never-created' not found .*initialise it with the HSM's tooling first/);
    expect(module.findToken("never-created")).toBeUndefined();
    expect(await hardware.provision({ label: "unit" })).toEqual({ label: "unit", created: false });
  });
});

describe("hsm/init-token.sh", () => {
  it("provisions a token through the key backend with PINs read from files, once", () => {
    // its own process and data dir: SoftHSM reads its configuration once per process
    const work = mkdtempSync(path.join(tmpdir(), "pki-init-token-"));
    try {
      writeFileSync(path.join(work, "pin"), "ops-user-pin-1234\n", { mode: 0o600 });
      writeFileSync(path.join(work, "so-pin"), "ops-so-pin-5678\n", { mode: 0o600 });
      const script = path.resolve(import.meta.dirname, "../../../hsm/init-token.sh");
      const run = () => spawnSync("bash", [script, "data", "ops", "pin", "so-pin"], { cwd: work, encoding: "utf8" });
      const first = run();
      expect(first.stderr).toBe("");
      expect(first.stdout).toMatch(/token 'ops' initialised in /);
      expect(run().stdout).toMatch(/token 'ops' already exists .*left as it was/);
      // checked with OpenSC's pkcs11-tool, not with this package
      const tool = (...args: string[]) =>
        spawnSync("pkcs11-tool", ["--module", MODULE, "--token-label", "ops", ...args], { encoding: "utf8", env: { ...process.env, SOFTHSM2_CONF: path.join(work, "data", "softhsm2.conf") } });
      expect(tool("--login", "--pin", "ops-user-pin-1234", "--list-objects").status).toBe(0);
      // the SO PIN is proved by using it: setting the user PIN (to the same value)
      expect(tool("--login", "--login-type", "so", "--so-pin", "ops-so-pin-5678", "--init-pin", "--new-pin", "ops-user-pin-1234").status).toBe(0);
      expect(tool("--login", "--pin", "ops-so-pin-5678", "--list-objects").stderr).toMatch(/CKR_PIN_INCORRECT/);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("pkcs11 URIs", () => {
  it("round-trips labels with reserved characters and binary ids", () => {
    const address = { token: "my token;1", object: "key/é", id: Buffer.from([0, 255, 16]) };
    const uri = formatKeyUri(address);
    expect(uri).toBe("pkcs11:token=my%20token%3B1;object=key%2F%C3%A9;id=%00%ff%10;type=private");
    expect(parseKeyUri(uri)).toEqual(address);
    expect(() => parseKeyUri("pkcs11:object=x")).toThrow(/both 'token' and 'object'/);
    expect(() => parseKeyUri("file:x")).toThrow(/must start with 'pkcs11:'/);
  });
});
