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

export async function createOcspResponderRole(deps: OcspResponderDeps & { log?: Logger }): Promise<OcspResponderRole> {
  const responder = new OcspResponder(deps);
  await responder.start();
  return { responder, handler: (next) => ocspHttpHandler(responder, next, deps.log), stop: () => responder.stop() };
}
