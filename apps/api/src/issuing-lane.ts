// The issuing request (POST /v1/certificates with a JSON body) past express's router: a
// CPU profile of the API under issuance load put the router, its middleware walk, the body
// parser and its helpers at ~10% of the process, more than the database driver. The request
// still gets express's request and response prototypes, the same middleware, the same
// route handler and the same problem+json answers; only the dispatch and the body reading
// are done here. Anything unusual (another content type, an encoding, chunked or oversized
// bodies, a query string) takes the express path, which answers it as before.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ErrorRequestHandler, Express, Request, RequestHandler, Response } from "express";

/** What a lane runs: the app's middleware, the body read here, then the route's handlers. */
export interface IssuingLane {
  method: "POST";
  path: string;
  maxBodyBytes: number;
  middleware: RequestHandler[];
  route: RequestHandler[];
  onError: ErrorRequestHandler;
}

const PLAIN_JSON = /^application\/json\s*(;\s*charset\s*=\s*"?utf-8"?\s*)?$/i;

/** Only the request shape the lane reads exactly as express.json would; all else goes to express. */
export function takes(lane: Pick<IssuingLane, "method" | "path" | "maxBodyBytes">, req: Pick<IncomingMessage, "method" | "url" | "headers">): boolean {
  if (req.method !== lane.method || req.url !== lane.path) return false;
  const { "content-type": type, "content-length": length, "content-encoding": encoding, "transfer-encoding": chunked } = req.headers;
  if (type === undefined || !PLAIN_JSON.test(type) || encoding !== undefined || chunked !== undefined || length === undefined) return false;
  const bytes = Number(length);
  return bytes > 0 && bytes <= lane.maxBodyBytes;
}

/**
 * Reads the body as express.json({strict: true}) does, with its error types, so the app's
 * problem handler answers a bad body in the same words.
 */
const readJsonBody: RequestHandler = (req, _res, next) => {
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  // as raw-body reports a client that went away mid-body: a 4xx, not the CA failing
  req.on("error", (error) => next(Object.assign(new Error("request aborted", { cause: error }), { status: 400, type: "request.aborted", expose: true })));
  req.on("end", () => {
    const text = Buffer.concat(chunks).toString("utf8");
    const first = /^[\x20\x09\x0a\x0d]*(.)/.exec(text)?.[1];
    try {
      if (first !== "{" && first !== "[") throw new SyntaxError("strict JSON bodies are objects or arrays");
      req.body = JSON.parse(text);
    } catch (error) {
      return next(Object.assign(new Error("invalid JSON", { cause: error }), { status: 400, type: "entity.parse.failed", expose: true }));
    }
    next();
  });
};

/**
 * Wraps the app's request listener: the lane's request is answered here, every other one by
 * express. `app` lends its request and response prototypes (res.json, req.is, req.query...).
 */
export function withIssuingLane(app: Express, lane: IssuingLane): (req: IncomingMessage, res: ServerResponse) => void {
  const handlers = [...lane.middleware, readJsonBody, ...lane.route];
  return (incoming, outgoing) => {
    if (!takes(lane, incoming)) return app(incoming, outgoing);
    const req = incoming as Request;
    const res = outgoing as Response;
    Object.setPrototypeOf(req, app.request);
    Object.setPrototypeOf(res, app.response);
    Object.assign(req, { res, params: {}, baseUrl: "", originalUrl: lane.path, route: { path: lane.path } });
    Object.assign(res, { req, locals: Object.create(null) });
    let index = 0;
    const next = (error?: unknown): void => {
      if (error !== undefined) return void lane.onError(error, req, res, () => {});
      const handler = handlers[index++];
      if (!handler) return;
      try {
        void handler(req, res, next);
      } catch (thrown) {
        next(thrown);
      }
    };
    next();
  };
}
