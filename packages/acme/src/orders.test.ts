// AcmeOrders against the real PostgreSQL that scripts/with-postgres.sh starts, without HTTP
// or JWS: orders within the policy and the hourly limits, challenges within the failure
// budget and the waiting bounds, lost validations, and finalize's refusals. The authority
// is one that records what it is asked to issue (issuance through the token is covered end
// to end in test/e2e/acme-protocol.test.ts and acme-clients.test.ts).
import { generateKeyPairSync } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CaRuntime, IssueRequest } from "@pki/authority";
import { loadConfig } from "@pki/config";
import type { AcmeAccountRecord, Inventory, ProvisionerRecord } from "@pki/db";
import { throwawayInventory } from "@pki/db/testing";
import { createLogger } from "@pki/logger";
import { ProvisionerPolicy } from "@pki/policy";
import { AcmeOrders, type AcmeRequester } from "./orders.ts";
import { AcmeProblem } from "./problems.ts";
import { VALIDATION_LIMITS } from "./validation.ts";

const ORDERS_PER_ACCOUNT = 5;
const FAILED_PER_PROVISIONER = 2;

let database: Awaited<ReturnType<typeof throwawayInventory>>;
let inventory: Inventory;
let orders: AcmeOrders;
let provisioner: ProvisionerRecord;
let issued: IssueRequest[];
let wakes = 0;
let accounts = 0;

const config = loadConfig({
  PKI_DATA_DIR: mkdtempSync(path.join(tmpdir(), "acme-orders-")),
  PKI_ACME_ORDERS_PER_ACCOUNT_HOUR: String(ORDERS_PER_ACCOUNT),
  PKI_ACME_FAILED_VALIDATIONS_PER_PROVISIONER_HOUR: String(FAILED_PER_PROVISIONER),
});

beforeAll(async () => {
  database = await throwawayInventory(process.env.PKI_TEST_DATABASE_URL, "acme_orders");
  inventory = database.inventory;
  provisioner = await inventory.provisioners.create({ name: "web", profiles: ["server"], names: ["DNS:.example.test"], maxTtlSeconds: 86400, hierarchy: "default" }, "pkp_unit-test-token-0123456789", {
    actor: "unit",
    action: "provisioner.create",
  });
  await inventory.acme.enableProvisioner(provisioner.id, false);
  issued = [];
  const runtime = {
    inventory,
    config,
    clock: { now: () => new Date() },
    keyring: { get: () => undefined },
    authority: {
      issue: async (request: IssueRequest) => {
        issued.push(request);
        return { serial: "0a1b" };
      },
    },
  } as unknown as CaRuntime;
  orders = new AcmeOrders(runtime, createLogger("silent", "test"), { wake: () => void wakes++ });
}, 120_000);

afterAll(async () => {
  await database?.close();
});

async function requester(): Promise<AcmeRequester> {
  const key = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey;
  const account = (await inventory.acme.createAccount(
    { provisionerId: provisioner.id, keyThumbprint: `thumb-${++accounts}`, jwk: key.export({ format: "jwk" }) as Record<string, unknown>, contact: [], createdFrom: "127.0.0.1", now: new Date() },
    { since: new Date(Date.now() - 3600_000), perSource: 1000, perProvisioner: 1000 },
    { actor: "unit", action: "acme.account.create" },
  )) as AcmeAccountRecord;
  const policy = ProvisionerPolicy.create({ name: provisioner.name, profiles: provisioner.profiles, names: provisioner.names, maxTtlSeconds: provisioner.maxTtlSeconds });
  return { provisioner, policy, account, sourceIp: "127.0.0.1" };
}

async function refusal(work: Promise<unknown>): Promise<AcmeProblem> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AcmeProblem);
  return error as AcmeProblem;
}

/** A new order's first challenge (http-01). */
async function firstChallenge(who: AcmeRequester, name = "a.example.test") {
  const order = await orders.newOrder(who, { identifiers: [{ type: "dns", value: name }] });
  const authz = await orders.authorization(who.account, order.authorizationIds[0] as string);
  return { order, authz, challenge: authz.challenges.find((c) => c.type === "http-01")! };
}

const fail = (challengeId: string) => inventory.acme.finishChallenge(challengeId, { ok: false, problem: { type: "urn:ietf:params:acme:error:incorrectResponse", detail: "no" } }, new Date());

describe("AcmeOrders.newOrder", () => {
  it("refuses names outside the policy with one subproblem each, unknown profiles, and past the hourly limit", async () => {
    const who = await requester();
    const outside = await refusal(
      orders.newOrder(who, {
        identifiers: [
          { type: "dns", value: "a.elsewhere.test" },
          { type: "dns", value: "ok.example.test" },
          { type: "ip", value: "10.0.0.1" },
        ],
      }),
    );
    expect(outside.type).toBe("rejectedIdentifier");
    expect(outside.subproblems?.map((s) => s.identifier?.value).sort()).toEqual(["10.0.0.1", "a.elsewhere.test"]);
    expect((await refusal(orders.newOrder(who, { identifiers: [{ type: "dns", value: "ok.example.test" }], profile: "client" }))).type).toBe("invalidProfile");
    for (let i = 0; i < ORDERS_PER_ACCOUNT; i++) expect((await orders.newOrder(who, { identifiers: [{ type: "dns", value: "ok.example.test" }] })).status).toBe("pending");
    const limited = await refusal(orders.newOrder(who, { identifiers: [{ type: "dns", value: "ok.example.test" }] }));
    expect(limited.type).toBe("rateLimited");
    expect(limited.retryAfterSeconds).toBeGreaterThan(0);
  });

  it("gives a wildcard only dns-01 and records it on its base domain", async () => {
    const who = await requester();
    const order = await orders.newOrder(who, { identifiers: [{ type: "dns", value: "*.example.test" }] });
    const authz = await orders.authorization(who.account, order.authorizationIds[0] as string);
    expect(authz).toMatchObject({ wildcard: true, identifier: { value: "example.test" } });
    expect(authz.challenges.map((c) => c.type)).toEqual(["dns-01"]);
  });
});

describe("AcmeOrders.respondToChallenge", () => {
  it("starts a challenge and wakes the validator; one of another account is not found", async () => {
    const who = await requester();
    const { challenge } = await firstChallenge(who);
    const before = wakes;
    expect((await orders.respondToChallenge(who, challenge)).status).toBe("processing");
    expect(wakes).toBe(before + 1);
    // answering again changes nothing and wakes nobody
    const again = await orders.challenge(who.account, challenge.id);
    expect((await orders.respondToChallenge(who, again.challenge)).status).toBe("processing");
    expect(wakes).toBe(before + 1);
    expect((await refusal(orders.challenge((await requester()).account, challenge.id))).status).toBe(404);
  });

  it("refuses an account past its waiting bound, and only that account", async () => {
    const who = await requester();
    // one order of one name more than the bound (the hourly order limit here is small)
    const names = Array.from({ length: VALIDATION_LIMITS.pendingPerAccount + 1 }, (_, i) => ({ type: "dns", value: `w${i}.example.test` }));
    const order = await orders.newOrder(who, { identifiers: names });
    const challenges = await Promise.all(order.authorizationIds.map(async (id) => (await orders.authorization(who.account, id)).challenges.find((c) => c.type === "http-01")!));
    for (const challenge of challenges.slice(0, -1)) expect((await orders.respondToChallenge(who, challenge)).status).toBe("processing");
    const refused = await refusal(orders.respondToChallenge(who, challenges.at(-1)!));
    expect(refused.type).toBe("rateLimited");
    expect(refused.message).toContain(`already has ${VALIDATION_LIMITS.pendingPerAccount} validations running or waiting`);
    const other = await requester();
    expect((await orders.respondToChallenge(other, (await firstChallenge(other)).challenge)).status).toBe("processing");
  });

  it("past the provisioner's failure budget refuses accounts that failed and lets clean accounts validate", async () => {
    // a provisioner of its own, so the other tests' validations do not count
    const own = await inventory.provisioners.create(
      { name: "budget", profiles: ["server"], names: ["DNS:.example.test"], maxTtlSeconds: 86400, hierarchy: "default" },
      "pkp_unit-test-token-budget-01",
      {
        actor: "unit",
        action: "provisioner.create",
      },
    );
    await inventory.acme.enableProvisioner(own.id, false);
    const as = async (): Promise<AcmeRequester> => {
      const who = await requester();
      await inventory.sql.query(`UPDATE acme_accounts SET provisioner_id = $1 WHERE id = $2`, [own.id, who.account.id]);
      return { ...who, provisioner: own, account: { ...who.account, provisionerId: own.id } };
    };
    const failing = await as();
    for (let i = 0; i < FAILED_PER_PROVISIONER; i++) {
      const { challenge } = await firstChallenge(failing, `f${i}.example.test`);
      await orders.respondToChallenge(failing, challenge);
      await fail(challenge.id);
    }
    const refused = await refusal(orders.respondToChallenge(failing, (await firstChallenge(failing, "f-next.example.test")).challenge));
    expect(refused.type).toBe("rateLimited");
    expect(refused.message).toContain(`limit of ${FAILED_PER_PROVISIONER} failed validations per hour`);
    const clean = await as();
    expect((await orders.respondToChallenge(clean, (await firstChallenge(clean)).challenge)).status).toBe("processing");
  });
});

describe("validation outcomes", () => {
  it("make an order ready when its authorizations become valid at the same moment (two validators finishing together)", async () => {
    const who = await requester();
    const pairs = await Promise.all(
      Array.from({ length: 4 }, async (_, i) => {
        const order = await orders.newOrder(who, {
          identifiers: [
            { type: "dns", value: `x${i}.example.test` },
            { type: "dns", value: `y${i}.example.test` },
          ],
        });
        const challenges = await Promise.all(order.authorizationIds.map(async (id) => (await orders.authorization(who.account, id)).challenges.find((c) => c.type === "http-01")!));
        for (const challenge of challenges) await orders.respondToChallenge(who, challenge);
        return { order, challenges };
      }),
    );
    // both outcomes of each order recorded at once, as two validations finishing together do
    await Promise.all(pairs.flatMap(({ challenges }) => challenges.map((c) => inventory.acme.finishChallenge(c.id, { ok: true }, new Date()))));
    for (const { order } of pairs) expect((await orders.order(who.account, order.id)).status).toBe("ready");
  });
});

describe("AcmeOrders.authorization", () => {
  it("fails a validation lost with its process, and deactivates on request", async () => {
    const who = await requester();
    const { authz, challenge } = await firstChallenge(who);
    await inventory.sql.query(`UPDATE acme_challenges SET status = 'processing', validated_at = now() - interval '1 hour' WHERE id = $1`, [challenge.id]);
    const after = await orders.authorization(who.account, authz.id);
    expect(after.status).toBe("invalid");
    expect(after.challenges.find((c) => c.id === challenge.id)?.error?.detail).toContain("interrupted");
    const second = await firstChallenge(who, "b.example.test");
    expect((await orders.authorization(who.account, second.authz.id, { deactivate: true })).status).toBe("deactivated");
    expect((await refusal(orders.authorization(who.account, second.authz.id, { deactivate: true }))).type).toBe("malformed");
  });
});

describe("AcmeOrders.finalize", () => {
  const csrFor = (key: import("node:crypto").KeyObject, name: string): string => {
    const dir = mkdtempSync(path.join(tmpdir(), "acme-orders-csr-"));
    const keyFile = path.join(dir, "key.pem");
    writeFileSync(keyFile, key.export({ type: "pkcs8", format: "pem" }));
    const der = execFileSync("openssl", ["req", "-new", "-key", keyFile, "-subj", `/CN=${name}`, "-addext", `subjectAltName=DNS:${name}`, "-outform", "DER"]);
    return der.toString("base64url");
  };

  it("refuses an order that is not ready, a CSR for the account key (leaving the order ready), and issues for a good CSR", async () => {
    const who = await requester();
    const { order, authz } = await firstChallenge(who, "fin.example.test");
    const accountKeys = generateKeyPairSync("ec", { namedCurve: "P-256" });
    expect(
      (await refusal(orders.finalize(who, { orderId: order.id, csr: csrFor(generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey, "fin.example.test"), accountKey: accountKeys.publicKey })))
        .type,
    ).toBe("orderNotReady");
    await inventory.sql.query(`UPDATE acme_authorizations SET status = 'valid' WHERE id = $1`, [authz.id]);
    await inventory.sql.query(`UPDATE acme_orders SET status = 'ready' WHERE id = $1`, [order.id]);
    const ownKey = await refusal(orders.finalize(who, { orderId: order.id, csr: csrFor(accountKeys.privateKey, "fin.example.test"), accountKey: accountKeys.publicKey }));
    expect(ownKey.type).toBe("badCSR");
    expect((await orders.order(who.account, order.id)).status).toBe("ready");
    const done = await orders.finalize(who, { orderId: order.id, csr: csrFor(generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey, "fin.example.test"), accountKey: accountKeys.publicKey });
    expect(done).toMatchObject({ status: "valid", certificateSerial: "0a1b" });
    expect(issued.at(-1)).toMatchObject({ profile: "server", requester: { kind: "provisioner", actor: `acme:web/${who.account.id}` } });
  });
});
