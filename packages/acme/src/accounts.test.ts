// AcmeAccounts against the real PostgreSQL that scripts/with-postgres.sh starts, without HTTP
// or JWS (the router verifies keys and bindings; test/e2e/acme-protocol.test.ts covers them).
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CaRuntime } from "@pki/authority";
import { loadConfig } from "@pki/config";
import type { AcmeProvisionerRecord, Inventory } from "@pki/db";
import { throwawayInventory } from "@pki/db/testing";
import { createLogger } from "@pki/logger";
import { AcmeAccounts, type AcmeServer } from "./accounts.ts";
import { AcmeOrders } from "./orders.ts";
import { AcmeProblem } from "./problems.ts";

const PER_ADDRESS = 3;

let database: Awaited<ReturnType<typeof throwawayInventory>>;
let inventory: Inventory;
let accounts: AcmeAccounts;
let keys = 0;

async function acmeProvisioner(name: string, eab: boolean): Promise<AcmeProvisionerRecord> {
  const record = await inventory.provisioners.create({ name, profiles: ["server"], names: ["DNS:.example.test"], maxTtlSeconds: 86400, hierarchy: "default" }, `pkp_unit-test-token-${name}-0123456`, {
    actor: "unit",
    action: "provisioner.create",
  });
  await inventory.acme.enableProvisioner(record.id, eab);
  return { ...record, eabRequired: eab };
}

const newKey = () => ({
  jwk: generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ format: "jwk" }) as Record<string, unknown>,
  keyThumbprint: `thumb-${++keys}`,
});

async function refusal(work: Promise<unknown>): Promise<AcmeProblem> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AcmeProblem);
  return error as AcmeProblem;
}

beforeAll(async () => {
  database = await throwawayInventory(process.env.PKI_TEST_DATABASE_URL, "acme_accounts");
  inventory = database.inventory;
  const config = loadConfig({ PKI_DATA_DIR: mkdtempSync(path.join(tmpdir(), "acme-accounts-")), PKI_ACME_NEW_ACCOUNTS_PER_ADDRESS_HOUR: String(PER_ADDRESS) });
  const runtime = { inventory, config, clock: { now: () => new Date() }, keyring: { get: () => undefined } } as unknown as CaRuntime;
  accounts = new AcmeAccounts(runtime, new AcmeOrders(runtime, createLogger("silent", "test"), undefined));
}, 120_000);

afterAll(async () => {
  await database?.close();
});

describe("AcmeAccounts.register", () => {
  it("creates an account once per key, finds it again, and answers onlyReturnExisting for an unknown key", async () => {
    const at: AcmeServer = { provisioner: await acmeProvisioner("open", false), sourceIp: "127.0.1.1" };
    const key = newKey();
    const first = await accounts.register(at, { ...key, contact: ["mailto:ops@example.test"], onlyReturnExisting: false, eabKid: undefined });
    expect(first).toMatchObject({ created: true, account: { status: "valid", contact: ["mailto:ops@example.test"] } });
    const again = await accounts.register(at, { ...key, contact: undefined, onlyReturnExisting: true, eabKid: undefined });
    expect(again).toMatchObject({ created: false, account: { id: first.account.id } });
    expect((await refusal(accounts.register(at, { ...newKey(), contact: undefined, onlyReturnExisting: true, eabKid: undefined }))).type).toBe("accountDoesNotExist");
    expect((await refusal(accounts.register(at, { ...newKey(), contact: ["tel:+1555"], onlyReturnExisting: false, eabKid: undefined }))).type).toBe("unsupportedContact");
  });

  it("limits new accounts per source address, across provisioners, and not other addresses", async () => {
    const one: AcmeServer = { provisioner: await acmeProvisioner("one", false), sourceIp: "2001:db8:1:2::5" };
    const two: AcmeServer = { provisioner: await acmeProvisioner("two", false), sourceIp: "2001:db8:1:2::9" };
    for (let i = 0; i < PER_ADDRESS; i++) await accounts.register(i % 2 ? one : two, { ...newKey(), contact: undefined, onlyReturnExisting: false, eabKid: undefined });
    // another address of the same /64 is the same source
    const refused = await refusal(accounts.register(two, { ...newKey(), contact: undefined, onlyReturnExisting: false, eabKid: undefined }));
    expect(refused.type).toBe("rateLimited");
    expect(refused.message).toContain("address 2001:db8:1:2::/64");
    expect((await accounts.register({ ...two, sourceIp: "2001:db8:1:3::1" }, { ...newKey(), contact: undefined, onlyReturnExisting: false, eabKid: undefined })).created).toBe(true);
  });

  it("requires external account binding where the provisioner does", async () => {
    const at: AcmeServer = { provisioner: await acmeProvisioner("partners", true), sourceIp: "127.0.2.1" };
    expect((await refusal(accounts.register(at, { ...newKey(), contact: undefined, onlyReturnExisting: false, eabKid: undefined }))).type).toBe("externalAccountRequired");
    const unknown = await refusal(accounts.register(at, { ...newKey(), contact: undefined, onlyReturnExisting: false, eabKid: "no-such-kid" }));
    expect(unknown.status).toBe(403);
  });
});

describe("AcmeAccounts.update and orderPage", () => {
  it("changes contacts, deactivates, refuses any other status, and lists no orders for a new account", async () => {
    const at: AcmeServer = { provisioner: await acmeProvisioner("updates", false), sourceIp: "127.0.3.1" };
    const { account } = await accounts.register(at, { ...newKey(), contact: undefined, onlyReturnExisting: false, eabKid: undefined });
    expect((await accounts.update(at, account, { contact: ["mailto:new@example.test"] })).contact).toEqual(["mailto:new@example.test"]);
    expect((await refusal(accounts.update(at, account, { status: "valid" }))).type).toBe("malformed");
    expect(await accounts.orderPage(account, undefined)).toEqual({ orderIds: [], next: undefined });
    expect((await accounts.update(at, account, { status: "deactivated" })).status).toBe("deactivated");
    expect((await refusal(accounts.update(at, account, { contact: ["mailto:x@example.test"] }))).type).toBe("unauthorized");
  });
});
