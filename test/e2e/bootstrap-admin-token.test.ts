// PKI_BOOTSTRAP_ADMIN_TOKEN across restarts: the ceremony (what `pki init` and every
// `npm start` run) follows a changed value, so the token in the environment is the one
// that works, and the old one stops.
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initCa, openInventory, systemClock } from "@pki/authority";
import { type Inventory, migrateDatabase } from "@pki/db";
import { type TestEnv, testEnv } from "../support/harness.ts";

const newToken = () => randomBytes(32).toString("base64");

// One CA through the file (a process loads one SoftHSM configuration): the tests run in order.
describe("a changed PKI_BOOTSTRAP_ADMIN_TOKEN", () => {
  let env: TestEnv | undefined;
  let inventory: Inventory | undefined;
  beforeAll(async () => {
    env = await testEnv();
  });
  afterAll(async () => {
    await inventory?.close();
    await env?.cleanup();
  });

  /** Runs the ceremony as a (re)start with this token in the environment. */
  async function start(token: string | undefined): Promise<string[]> {
    if (!env) throw new Error("no test environment");
    if (token === undefined) delete env.env.PKI_BOOTSTRAP_ADMIN_TOKEN;
    else env.env.PKI_BOOTSTRAP_ADMIN_TOKEN = token;
    const config = env.config();
    if (!inventory) {
      await migrateDatabase({ url: config.databaseUrl, embeddedDir: config.embeddedDatabaseDir });
      inventory = await openInventory(config, "server");
    }
    return (await initCa(config, inventory, systemClock, "test:init")).lines;
  }

  it("takes over from a generated admin.token, which is removed once it no longer works", async () => {
    if (!env) throw new Error("no test environment");
    expect(await start(undefined)).toContain(`admin token written to ${path.join(env.dataDir, "admin.token")}`);
    expect(existsSync(path.join(env.dataDir, "admin.token"))).toBe(true);
    const chosen = newToken();
    await start(chosen);
    expect(await inventory?.admins.verify(chosen)).toBe("bootstrap");
    expect(existsSync(path.join(env.dataDir, "admin.token"))).toBe(false);
  });

  it("replaces the bootstrap admin's token on restart: the new one works, the old one and its console sessions stop, audited", async () => {
    const first = newToken();
    await start(first);
    if (!inventory) throw new Error("no inventory");
    expect(await inventory.admins.verify(first)).toBe("bootstrap");
    const now = new Date();
    await inventory.consoleSessions.create(
      { idHash: randomBytes(32).toString("hex"), operator: "bootstrap", csrfToken: "c", now, expiresAt: new Date(now.getTime() + 3_600_000) },
      { idleSeconds: 600, maxPerOperator: 20 },
    );

    expect(await start(first)).toContain("admin token exists (PKI_BOOTSTRAP_ADMIN_TOKEN)");
    expect(await inventory.admins.verify(first)).toBe("bootstrap");

    const second = newToken();
    expect(await start(second)).toContain("the 'bootstrap' admin token was replaced by the new PKI_BOOTSTRAP_ADMIN_TOKEN; the old one no longer works");
    expect(await inventory.admins.verify(second)).toBe("bootstrap");
    expect(await inventory.admins.verify(first)).toBeUndefined();
    expect(await inventory.consoleSessions.count("bootstrap")).toBe(0);
    const [rotated] = await inventory.audit.recent(1, "bootstrap");
    expect(rotated).toMatchObject({ actor: "test:init", action: "admin.rotate", target: "bootstrap", details: { reason: "PKI_BOOTSTRAP_ADMIN_TOKEN changed", sessionsEnded: 1 } });
    expect(JSON.stringify(rotated?.details)).not.toContain(second);

    // Going back to a revoked token is refused with a clear line, and the live one keeps working.
    await expect(start(first)).rejects.toThrow(/PKI_BOOTSTRAP_ADMIN_TOKEN is a token this CA already has or once revoked; .* 'openssl rand -base64 32'/);
    expect(await inventory.admins.verify(second)).toBe("bootstrap");
  });

  it("does not bring back a bootstrap admin that was removed, and says the setting is unused", async () => {
    await inventory?.admins.addOperator("alice", newToken(), { actor: "test" });
    await inventory?.admins.remove("bootstrap", new Date(), { actor: "test" });
    const lines = await start(newToken());
    expect(lines).toContain("the 'bootstrap' admin was removed, so PKI_BOOTSTRAP_ADMIN_TOKEN is not used (unset it, or add an operator with pki admin add)");
    expect(await inventory?.admins.count()).toBe(1);
  });
});
