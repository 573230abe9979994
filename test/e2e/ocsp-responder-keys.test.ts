// Delegated OCSP responder keys do not pile up on the issuing token: once a responder
// certificate has expired (plus an hour), the scheduler's responder-key-cleanup job
// destroys its key on the real SoftHSM token, records it, and OCSP keeps answering with
// the current responder. The clock travels as in the other scheduler tests.
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OcspSigner, RESPONDER_KEY_GRACE_MS } from "@pki/revocation";
import { parseKeyUri } from "@pki/hsm";
import { createLogger } from "@pki/logger";
import { createScheduler, type Scheduler } from "@pki/scheduler";
import { runAsync, startRevocationCa, type IssuedLeaf, type RevocationCa } from "../support/revocation.ts";
import { DAY, HOUR, TravelClock } from "../support/scheduler-kit.ts";
import { run } from "../support/tools.ts";

interface ResponderRow {
  id: string;
  key_uri: string;
  not_after: Date;
  key_destroyed_at: Date | null;
}

describe("delegated OCSP responder keys", () => {
  const clock = new TravelClock();
  let rca: RevocationCa;
  let scheduler: Scheduler;
  let leaf: IssuedLeaf;

  beforeAll(async () => {
    rca = await startRevocationCa({}, { clock });
    scheduler = createScheduler({ runtime: rca.ca.runtime, log: createLogger("silent", "scheduler") });
    leaf = await rca.issue({ commonName: "keys.responder.test", ttlSeconds: 60 * 86400 });
    await rca.settle();
  });
  afterAll(async () => {
    await scheduler?.stop();
    await rca?.stop();
  });

  const responders = () => rca.ca.inventory.sql.query<ResponderRow>("SELECT id, key_uri, not_after, key_destroyed_at FROM ocsp_responders WHERE issuer_id = $1 ORDER BY not_after", [rca.issuerId]);
  const cleanup = async () => {
    const result = await scheduler.runJob("responder-key-cleanup", { force: true });
    expect(result).toMatchObject({ ran: true, outcome: "ok" });
    return result.counts!.destroyed;
  };
  /** Token objects (private and public keys) labelled as the key at `uri`, as pkcs11-tool lists them. */
  const objectsOnToken = (uri: string) => {
    const config = rca.ca.config();
    const pin = readFileSync(path.join(rca.ca.dataDir, `${config.hsm.issuing.label}.pin`), "utf8").trim();
    const listed = run("pkcs11-tool", ["--module", config.hsm.modulePath!, "--token-label", config.hsm.issuing.label, "--login", "--pin", pin, "--list-objects"], {
      env: { SOFTHSM2_CONF: config.hsm.softhsmConf },
    });
    expect(listed.status).toBe(0);
    const label = parseKeyUri(uri).object;
    return listed.stdout.split("\n").filter((line) => line.trim() === `label:      ${label}`).length;
  };
  const presignAll = async () => {
    await rca.roles.ocspSigner.sweep(true);
    await rca.settle();
  };
  const ocspStatus = async (at: Date) => {
    // openssl checks the chain at the travelled time and accepts its thisUpdate (days ahead of the real clock)
    const out = await runAsync("openssl", [
      "ocsp",
      "-issuer",
      rca.intermediatePath,
      "-cert",
      leaf.certPath,
      "-url",
      `${rca.baseUrl}/ocsp`,
      "-no_nonce",
      "-CAfile",
      rca.rootPath,
      "-attime",
      String(Math.floor(at.getTime() / 1000)),
      "-validity_period",
      String(60 * 86400),
    ]);
    return `${out.stdout}${out.stderr}`;
  };

  it("keeps a superseded responder's key until its certificate has expired, then destroys it and only it; OCSP keeps answering", async () => {
    const [first] = await responders();
    expect(first).toBeDefined();
    expect(objectsOnToken(first!.key_uri)).toBe(2);

    // past half its life the responder is renewed: a new key; the old one may still be cached elsewhere
    clock.advance(4 * DAY);
    await presignAll();
    const renewed = await responders();
    expect(renewed).toHaveLength(2);
    const second = renewed[1]!;
    expect(second.key_uri).not.toBe(first!.key_uri);
    expect(await cleanup()).toBe(0);
    expect(objectsOnToken(first!.key_uri)).toBe(2);

    // expired, but within the grace period: still kept
    clock.set(new Date(first!.not_after.getTime() + RESPONDER_KEY_GRACE_MS / 2));
    expect(await cleanup()).toBe(0);
    expect(objectsOnToken(first!.key_uri)).toBe(2);

    // expired over an hour ago: its private and public key objects are destroyed, the current ones stay
    clock.set(new Date(first!.not_after.getTime() + RESPONDER_KEY_GRACE_MS + HOUR));
    expect(await cleanup()).toBe(1);
    expect(objectsOnToken(first!.key_uri)).toBe(0);
    expect(objectsOnToken(second.key_uri)).toBe(2);
    const after = await responders();
    expect(after.find((r) => r.id === first!.id)!.key_destroyed_at).toBeInstanceOf(Date);
    expect(after.find((r) => r.id === second.id)!.key_destroyed_at).toBeNull();
    const [audit] = await rca.ca.inventory.audit.recent(1, first!.id);
    expect(audit).toMatchObject({ actor: "scheduler:responder-key-cleanup", action: "ocsp-responder.key-destroy", outcome: "ok", details: { keyUri: first!.key_uri, objectsDestroyed: 2 } });
    // once is enough: the next run has nothing to do
    expect(await cleanup()).toBe(0);

    // OCSP answers, signed by the current responder, pre-signed and from a process starting now
    await presignAll();
    const answer = await ocspStatus(clock.now());
    expect(answer).toMatch(/Response verify OK/);
    expect(answer).toMatch(new RegExp(`${leaf.certPath.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: good`));
    const restarted = new OcspSigner({ inventory: rca.ca.inventory, keyring: rca.ca.runtime.keyring, authority: rca.ca.runtime.authority, config: rca.ca.runtime.config, clock });
    expect((await restarted.responderFor(rca.issuerId)).record.id).toBe(second.id);
    await restarted.stop();
  });
});
