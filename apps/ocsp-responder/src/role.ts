import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "@pki/logger";
import { OcspResponder, type OcspResponderDeps } from "./responder.ts";
import { ocspHttpHandler } from "./http.ts";

export interface OcspResponderRole {
  responder: OcspResponder;
  /** wraps another request listener: OCSP paths are answered here, the rest go to `next` */
  handler(next: (req: IncomingMessage, res: ServerResponse) => void): (req: IncomingMessage, res: ServerResponse) => void;
  stop(): void;
}

/**
 * `preload: "background"` resolves once the responder can answer (issuers known) and loads
 * the pre-signed responses into memory behind it; until they are in, answers come from the
 * database. The default waits for them.
 */
export async function createOcspResponderRole(deps: OcspResponderDeps & { log?: Logger; preload?: "await" | "background" }): Promise<OcspResponderRole> {
  const responder = new OcspResponder(deps);
  await responder.start(undefined, { preload: deps.preload ?? "await" });
  return { responder, handler: (next) => ocspHttpHandler(responder, next, deps.log), stop: () => responder.stop() };
}
