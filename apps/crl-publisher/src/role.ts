// The revocation signing role: publishes CRLs and pre-signs OCSP responses with the
// issuing token's keys, and serves the published CRLs. The all-in-one server mounts it;
// src/main.ts runs it alone.
import type { Router } from "express";
import { CrlPublisher, OcspSigner } from "@pki/revocation";
import type { CaRuntime } from "@pki/authority";
import type { Logger } from "@pki/logger";
import { CrlCache } from "./cache.ts";
import { crlRouter } from "./router.ts";

export interface CrlPublisherRole {
  publisher: CrlPublisher;
  ocspSigner: OcspSigner;
  cache: CrlCache;
  /** `GET /crl/{issuerId}.crl` and `-delta.crl` */
  router: Router;
  stop(): Promise<void>;
}

export async function createCrlPublisherRole(runtime: CaRuntime, log?: Logger, options: { schedule?: boolean } = {}): Promise<CrlPublisherRole> {
  const deps = { inventory: runtime.inventory, keyring: runtime.keyring, config: runtime.config, clock: runtime.clock, events: runtime.events, ...(log ? { log } : {}) };
  const cache = new CrlCache({ inventory: runtime.inventory, clock: runtime.clock, ...(log ? { log } : {}) });
  const publisher = new CrlPublisher(deps);
  // What this process publishes it serves at once, without waiting for the cache's poll.
  publisher.onPublished = () => void cache.refresh();
  const ocspSigner = new OcspSigner({ ...deps, authority: runtime.authority });
  await cache.start(runtime.config.revocation.pollMs);
  if (options.schedule !== false) {
    publisher.start();
    ocspSigner.start();
  }
  return {
    publisher,
    ocspSigner,
    cache,
    router: crlRouter(cache, { maxAgeSeconds: runtime.config.revocation.crlMaxAgeSeconds, now: () => runtime.clock.now() }),
    stop: async () => {
      await publisher.stop();
      await ocspSigner.stop();
      cache.stop();
    },
  };
}
