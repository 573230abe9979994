// The OCSP endpoints as a bare node:http handler that runs in front of express: the
// responder should come within 70% of a bare node:http server, and express's router,
// middleware chain and response helpers cost more than the answer itself.
import type { IncomingMessage, ServerResponse } from "node:http";
import { Counter, Histogram } from "prom-client";
import { registry } from "@pki/http-kit";
import type { Logger } from "@pki/logger";
import { OCSP_PATH } from "@pki/x509";
import type { OcspResponder, OcspAnswer } from "./responder.ts";

/** Larger than any honest request (32 CertIDs and a signature fit in a few KiB). */
export const MAX_OCSP_REQUEST_BYTES = 16 * 1024;

const requests = new Counter({ name: "pki_ocsp_requests_total", help: "OCSP requests by answer", labelNames: ["method", "outcome"] as const, registers: [registry] });
const latency = new Histogram({
  name: "pki_ocsp_request_duration_seconds",
  help: "OCSP request latency, from the first byte handled to the answer written",
  labelNames: ["method"] as const,
  buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
  registers: [registry],
});

const TOO_LARGE: OcspAnswer = { httpStatus: 413, body: Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x01]), headers: { "cache-control": "no-store" }, outcome: "too_large" };
const MALFORMED: OcspAnswer = { httpStatus: 400, body: Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x01]), headers: { "cache-control": "no-store" }, outcome: "malformed" };
const INTERNAL: OcspAnswer = { httpStatus: 500, body: Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x02]), headers: { "cache-control": "no-store" }, outcome: "internal_error" };

// prom-client hashes label values on every call; the children are looked up once.
const requestCounters = new Map<string, ReturnType<typeof requests.labels>>();
const latencyByMethod = new Map<string, ReturnType<typeof latency.labels>>();
function count(method: string, outcome: string, seconds: number): void {
  const key = `${method}|${outcome}`;
  let counter = requestCounters.get(key);
  if (!counter) requestCounters.set(key, (counter = requests.labels(method, outcome)));
  counter.inc();
  let histogram = latencyByMethod.get(method);
  if (!histogram) latencyByMethod.set(method, (histogram = latency.labels(method)));
  histogram.observe(seconds);
}

/**
 * One request header, read from the raw list: `req.headers` builds an object of every
 * header on first use, which a profile put at a few percent of a pre-signed answer.
 */
function rawHeader(req: IncomingMessage, lowerCaseName: string): string | undefined {
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === lowerCaseName.length && name.toLowerCase() === lowerCaseName) return raw[i + 1];
  }
  return undefined;
}

function send(req: IncomingMessage, res: ServerResponse, answer: OcspAnswer, method: string, started: bigint): void {
  const ifNoneMatch = rawHeader(req, "if-none-match");
  const notModified = ifNoneMatch !== undefined && answer.httpStatus === 200 && answer.headers.etag === ifNoneMatch;
  if (notModified) {
    const { "content-length": _length, ...headers } = answer.headers;
    res.writeHead(304, { ...headers, "content-type": "application/ocsp-response" });
    res.end();
  } else {
    const headers = answer.complete ? answer.headers : { ...answer.headers, "content-type": "application/ocsp-response", "content-length": answer.body.length };
    res.writeHead(answer.httpStatus, headers);
    res.end(req.method === "HEAD" ? undefined : answer.body);
  }
  count(method, answer.outcome, Number(process.hrtime.bigint() - started) / 1e9);
}

/** GET path → request DER: base64, standard or URL-safe, URL-encoded or not (RFC 6960 Appendix A.1). */
export function decodeGetRequest(encoded: string): Buffer | undefined {
  let text: string;
  try {
    text = decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
  text = text.replace(/-/g, "+").replace(/_/g, "/").replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  return Buffer.from(text, "base64");
}

/**
 * Returns a request listener for `/ocsp` and `/ocsp/{request}` that answers OCSP and
 * hands every other request to `next` (express, in the servers).
 */
export function ocspHttpHandler(responder: OcspResponder, next: (req: IncomingMessage, res: ServerResponse) => void, log?: Logger): (req: IncomingMessage, res: ServerResponse) => void {
  const finish = (req: IncomingMessage, res: ServerResponse, method: string, started: bigint, work: Promise<OcspAnswer>) => {
    work.then(
      (answer) => send(req, res, answer, method, started),
      (error: unknown) => {
        log?.error({ err: error }, "OCSP request failed");
        send(req, res, INTERNAL, method, started);
      },
    );
  };
  return (req, res) => {
    const url = req.url ?? "";
    if (url !== OCSP_PATH && !url.startsWith(`${OCSP_PATH}/`) && !url.startsWith(`${OCSP_PATH}?`)) return next(req, res);
    const started = process.hrtime.bigint();
    if (req.method === "GET" || req.method === "HEAD") {
      const encoded = url.startsWith(`${OCSP_PATH}/`) ? url.slice(OCSP_PATH.length + 1) : "";
      if (encoded.length === 0) return send(req, res, MALFORMED, "GET", started);
      if (encoded.length > MAX_OCSP_REQUEST_BYTES * 2) return send(req, res, TOO_LARGE, "GET", started);
      // Decoded before any cache sees it: a request has endless URL spellings, one DER.
      const der = decodeGetRequest(encoded);
      if (!der) return send(req, res, MALFORMED, "GET", started);
      const hit = responder.answerFromCache(der);
      if (hit) return send(req, res, hit, "GET", started);
      return finish(req, res, "GET", started, responder.answer(der));
    }
    if (req.method === "POST" && (url === OCSP_PATH || url === `${OCSP_PATH}/`)) {
      const declared = Number(rawHeader(req, "content-length") ?? "0");
      if (declared > MAX_OCSP_REQUEST_BYTES) {
        // Answer without reading the body, then drop the connection rather than drain it.
        res.setHeader("connection", "close");
        send(req, res, TOO_LARGE, "POST", started);
        req.destroy();
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      let refused = false;
      req.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_OCSP_REQUEST_BYTES && !refused) {
          refused = true;
          res.setHeader("connection", "close");
          send(req, res, TOO_LARGE, "POST", started);
          req.destroy();
          return;
        }
        if (!refused) chunks.push(chunk);
      });
      req.on("end", () => {
        if (refused) return;
        const der = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        const hit = responder.answerFromCache(der);
        if (hit) return send(req, res, hit, "POST", started);
        finish(req, res, "POST", started, responder.answer(der));
      });
      req.on("error", () => {});
      return;
    }
    res.writeHead(405, { allow: "GET, HEAD, POST", "content-type": "application/problem+json" });
    res.end(JSON.stringify({ type: "about:blank", title: "Method Not Allowed", status: 405, detail: "OCSP takes POST /ocsp with application/ocsp-request, or GET /ocsp/{base64 request}" }));
  };
}
