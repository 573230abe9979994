// The ceiling: a bare node:http server answering every request with one fixed OCSP
// response (read from the file in argv[2]), headers as an RFC 5019 responder sends them.
// Reads the request body (POST) before answering, as a responder must.
import { createServer } from "node:http";
import { readFileSync } from "node:fs";

const body = readFileSync(process.argv[2]!);
const port = Number(process.argv[3]);
const headers = {
  "content-type": "application/ocsp-response",
  "content-length": String(body.length),
  "cache-control": "max-age=300, public, no-transform, must-revalidate",
};
const server = createServer((req, res) => {
  if (req.method === "POST") {
    req.on("data", () => {});
    req.on("end", () => res.writeHead(200, headers).end(body));
  } else {
    res.writeHead(200, headers).end(body);
  }
});
server.keepAliveTimeout = 60_000;
server.listen(port, "127.0.0.1", () => console.log(`bare node:http on ${port}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
