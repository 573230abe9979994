import type { Config } from "@pki/config";
import { Inventory } from "@pki/db";
import { Authority } from "./authority.ts";
import { Keyring } from "./keyring.ts";
import { type Clock, systemClock } from "./clock.ts";
import { softhsmConfig } from "@pki/hsm";
import { CaEvents } from "./events.ts";
import { createLogger } from "@pki/logger";

/** Opens the inventory (running migrations). Servers keep the embedded database; the CLI borrows it. */
export async function openInventory(config: Config, role: "server" | "cli" = "cli", progress?: (step: string) => void): Promise<Inventory> {
  return Inventory.open({ url: config.databaseUrl, embeddedDir: config.embeddedDatabaseDir, embeddedRole: role, ...(progress ? { progress } : {}) });
}

/** Everything a serving process needs: inventory, start-up-checked keyring, issuance cycle. */
export interface CaRuntime {
  config: Config;
  clock: Clock;
  inventory: Inventory;
  keyring: Keyring;
  authority: Authority;
  events: CaEvents;
  close(): Promise<void>;
}

export async function openCa(config: Config, clock: Clock = systemClock, inventory?: Inventory): Promise<CaRuntime> {
  const inv = inventory ?? (await openInventory(config));
  if (config.hsm.softhsmConf.startsWith(config.dataDir) && config.hsm.modulePath && /softhsm/i.test(config.hsm.modulePath)) softhsmConfig(config.dataDir);
  let keyring: Keyring;
  try {
    keyring = await Keyring.open(config, inv, clock);
  } catch (error) {
    if (!inventory) await inv.close();
    throw error;
  }
  const events = new CaEvents();
  // Rotations done by another process (pki issuers rotate, the scheduler) reach this one
  // without a restart: the keyring re-reads the issuers every few seconds.
  const reloadLog = createLogger(config.logLevel, "keyring");
  keyring.startReloading(
    config.scheduler.keyringReloadSeconds * 1000,
    (error) => reloadLog.error({ err: error }, "keyring reload failed; still serving with the issuers loaded before"),
    (change) => reloadLog.info(change, "issuers changed; keyring reloaded"),
  );
  return {
    config,
    clock,
    inventory: inv,
    keyring,
    events,
    authority: new Authority(inv, keyring, config, clock, events),
    close: async () => {
      keyring.close();
      if (!inventory) await inv.close();
    },
  };
}
