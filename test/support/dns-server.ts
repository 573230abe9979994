// A tiny authoritative DNS server on 127.0.0.1 for validation tests: the CA's resolver
// setting (PKI_ACME_RESOLVER) points at it, so A/AAAA, TXT and CAA answers come from the
// test. Packets are parsed and written by dns-packet; this file only decides the answers.
// An HTTP control endpoint lets other processes (lego's `--dns exec` script) add and
// remove TXT records.
import { chmodSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import dgram from "node:dgram";
import dnsPacket from "dns-packet";

export type TestDnsRecord =
  | { type: "A"; data: string }
  | { type: "AAAA"; data: string }
  | { type: "TXT"; data: string | string[] }
  | { type: "CAA"; data: { flags?: number; tag: string; value: string } }
  | { type: "CNAME"; data: string };

type RecordType = TestDnsRecord["type"];
/** Answers a name can be made to fail with instead of its records. */
export type DnsFailure = "SERVFAIL" | "REFUSED" | "DROP";

const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;
const MAX_LOGGED_QUERIES = 1000;
const MAX_CONTROL_BODY = 4096;

const normalise = (name: string) => name.toLowerCase().replace(/\.$/, "");

export class TestDnsServer {
  /** The records served, by lower-case name without the trailing dot. */
  private readonly records = new Map<string, TestDnsRecord[]>();
  private readonly failures = new Map<string, DnsFailure>();
  private readonly zones = new Set<string>();
  /** The questions received, oldest first (the last 1000). */
  readonly queries: { name: string; type: string }[] = [];

  private constructor(
    private readonly socket: dgram.Socket,
    private readonly control: Server,
  ) {}

  /** Starts the UDP responder and its control endpoint on ephemeral loopback ports. */
  static async start(options: { zones?: string[] } = {}): Promise<TestDnsServer> {
    const socket = dgram.createSocket("udp4");
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(0, "127.0.0.1", () => resolve());
    });
    const control = createServer();
    const server = new TestDnsServer(socket, control);
    for (const zone of options.zones ?? []) server.zones.add(normalise(zone));
    socket.on("message", (message, remote) => server.answer(message, remote));
    control.on("request", (request, response) => {
      let body = "";
      request.setEncoding("utf8");
      request.on("data", (chunk: string) => {
        body += chunk;
        if (body.length > MAX_CONTROL_BODY) request.destroy();
      });
      request.on("end", () => {
        try {
          server.handleControl(request.method ?? "", request.url ?? "", body);
          response.writeHead(204).end();
        } catch (error) {
          response.writeHead(400, { "content-type": "text/plain" }).end(String((error as Error).message));
        }
      });
    });
    await new Promise<void>((resolve) => control.listen(0, "127.0.0.1", resolve));
    return server;
  }

  /** host:port, as PKI_ACME_RESOLVER, ChallengeSettings.resolver and lego's --dns.resolvers take it */
  get address(): string {
    return `127.0.0.1:${(this.socket.address() as AddressInfo).port}`;
  }

  get port(): number {
    return (this.socket.address() as AddressInfo).port;
  }

  /** Base URL of the control endpoint: POST /present and /cleanup with {"fqdn","value"}. */
  get controlUrl(): string {
    return `http://127.0.0.1:${(this.control.address() as AddressInfo).port}`;
  }

  add(name: string, record: TestDnsRecord): this {
    const key = normalise(name);
    this.records.set(key, [...(this.records.get(key) ?? []), record]);
    return this;
  }

  /** Removes a name's records of one type (all types without one), or one TXT value. */
  remove(name: string, type?: RecordType, txtValue?: string): this {
    const key = normalise(name);
    const kept = (this.records.get(key) ?? []).filter((r) => !((type === undefined || r.type === type) && (txtValue === undefined || (r.type === "TXT" && [r.data].flat().join("") === txtValue))));
    if (kept.length) this.records.set(key, kept);
    else this.records.delete(key);
    return this;
  }

  /** Every query for the name (any type) gets this failure until `fail(name, undefined)`. */
  fail(name: string, failure: DnsFailure | undefined): this {
    if (failure) this.failures.set(normalise(name), failure);
    else this.failures.delete(normalise(name));
    return this;
  }

  clear(): void {
    this.records.clear();
    this.failures.clear();
    this.queries.length = 0;
  }

  /** How many questions asked for this name (and type, if given). */
  queryCount(name: string, type?: string): number {
    const key = normalise(name);
    return this.queries.filter((q) => q.name === key && (type === undefined || q.type === type)).length;
  }

  /**
   * Writes an executable for lego's `--dns exec` provider (EXEC_PATH=<it>): lego runs it as
   * `<it> present|cleanup <fqdn> <value>` and it forwards that to this server's control endpoint.
   */
  writeLegoExecScript(dir: string): string {
    const file = path.join(dir, "dns-exec.mjs");
    writeFileSync(
      file,
      `#!${process.execPath}
const [action, fqdn, value] = process.argv.slice(2);
const response = await fetch(${JSON.stringify(this.controlUrl)} + "/" + action, { method: "POST", body: JSON.stringify({ fqdn, value }) });
if (!response.ok) { console.error(await response.text()); process.exit(1); }
`,
    );
    chmodSync(file, 0o755);
    return file;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
    await new Promise<void>((resolve) => this.control.close(() => resolve()));
  }

  private handleControl(method: string, url: string, body: string): void {
    if (method !== "POST") throw new Error("POST /present or /cleanup");
    const { fqdn, value } = JSON.parse(body) as { fqdn?: unknown; value?: unknown };
    if (typeof fqdn !== "string" || typeof value !== "string") throw new Error('the body must be {"fqdn": string, "value": string}');
    if (url === "/present") this.add(fqdn, { type: "TXT", data: value });
    else if (url === "/cleanup") this.remove(fqdn, "TXT", value);
    else throw new Error(`unknown action ${url}`);
  }

  private answer(message: Buffer, remote: dgram.RemoteInfo): void {
    let query: dnsPacket.DecodedPacket;
    try {
      query = dnsPacket.decode(message);
    } catch {
      return;
    }
    const question = query.questions?.[0];
    if (!question) return;
    const name = normalise(question.name);
    this.queries.push({ name, type: question.type });
    if (this.queries.length > MAX_LOGGED_QUERIES) this.queries.shift();
    const failure = this.failures.get(name);
    if (failure === "DROP") return;
    const reply = (rcode: number, answers: dnsPacket.Answer[], authorities: dnsPacket.Answer[] = []) => {
      const packet = dnsPacket.encode({
        type: "response",
        id: query.id,
        flags: dnsPacket.AUTHORITATIVE_ANSWER | ((query.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | rcode,
        questions: [question],
        answers,
        authorities,
      });
      this.socket.send(packet, remote.port, remote.address);
    };
    if (failure) {
      reply(RCODE[failure], []);
      return;
    }
    const records = this.records.get(name) ?? [];
    const soa = this.soaFor(name);
    if (question.type === "SOA" && this.zones.has(name) && soa) {
      reply(RCODE.NOERROR, [soa]);
      return;
    }
    const cname = records.find((r) => r.type === "CNAME");
    const matching = cname && question.type !== "CNAME" ? [cname] : records.filter((r) => r.type === question.type);
    if (matching.length) {
      reply(
        RCODE.NOERROR,
        matching.map((r) => toAnswer(question.name, r)),
      );
      return;
    }
    const exists = records.length > 0 || this.zones.has(name) || [...this.records.keys()].some((k) => k.endsWith(`.${name}`));
    reply(exists ? RCODE.NOERROR : RCODE.NXDOMAIN, [], soa ? [soa] : []);
  }

  private soaFor(name: string): dnsPacket.Answer | undefined {
    const zone = [...this.zones].find((z) => name === z || name.endsWith(`.${z}`));
    if (zone === undefined) return undefined;
    return {
      type: "SOA",
      name: zone,
      ttl: 60,
      data: { mname: `ns.${zone}`, rname: `hostmaster.${zone}`, serial: 1, refresh: 60, retry: 60, expire: 60, minimum: 0 },
    };
  }
}

function toAnswer(name: string, record: TestDnsRecord): dnsPacket.Answer {
  switch (record.type) {
    case "A":
    case "AAAA":
    case "CNAME":
      return { type: record.type, name, ttl: 0, data: record.data };
    case "TXT":
      return { type: "TXT", name, ttl: 0, data: [record.data].flat() };
    case "CAA":
      return { type: "CAA", name, ttl: 0, data: { flags: record.data.flags ?? 0, tag: record.data.tag, value: record.data.value } as dnsPacket.CaaData };
  }
}
