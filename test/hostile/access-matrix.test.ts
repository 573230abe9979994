// Every route of the issuing API against every kind of credential, with the answer each
// cell must get. 401: no valid credential. 403: a valid credential that may not do this.
// Anything else means the route ran (2xx, or 400/404 for the deliberately empty bodies
// used on admin routes so nothing is changed).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addProvisioner, startTestApi, TravelClock, type RequestOptions, type TestApi } from "../support/api.ts";
import { opensslCsr, opensslSelfSigned } from "../support/tools.ts";

type Credential = "none" | "wrongToken" | "disabledProvisioner" | "otherProvisioner" | "provisioner" | "admin" | "mtls" | "mtlsForeign" | "mtlsExpired" | "mtlsRevoked";
const CREDENTIALS: Credential[] = ["none", "wrongToken", "disabledProvisioner", "otherProvisioner", "provisioner", "admin", "mtls", "mtlsForeign", "mtlsExpired", "mtlsRevoked"];

let t: TestApi;
const clock = new TravelClock();
const auth = {} as Record<Credential, RequestOptions>;
let ownSerial: string;
let targetSerial: string;

interface Cell {
  route: string;
  request: (credential: Credential) => Promise<{ status: number; text: string }>;
  /** expected status per credential; "ran" = the route ran (not 401/403/429) */
  expect: Partial<Record<Credential, number | "ran">> & { otherwise: number };
}

async function issueAs(token: string, cn: string, ttlSeconds = 86_400) {
  const csr = opensslCsr({ subject: `/CN=${cn}` });
  const res = await t.call("POST", "/v1/certificates", { token, body: { csr: csr.csrPem, ttlSeconds } });
  expect(res.status, res.text).toBe(201);
  return { serial: res.json.serial as string, cert: (res.json.certificate as string) + (res.json.chain as string[]).join(""), key: csr.keyPem };
}

beforeAll(async () => {
  t = await startTestApi({ database: "postgres", clock, authFailureLimit: 100_000 });
  const admin = t.ca.adminToken;
  const payments = await addProvisioner(t, { name: "payments", profiles: ["mtls"], names: ["DNS:.payments.example"], maxTtlSeconds: 86_400 });
  const other = await addProvisioner(t, { name: "other", profiles: ["mtls"], names: ["DNS:.other.example"], maxTtlSeconds: 86_400 });
  const disabled = await addProvisioner(t, { name: "gone", profiles: ["mtls"], names: ["DNS:.payments.example"], maxTtlSeconds: 86_400 });
  expect((await t.call("PATCH", "/v1/provisioners/gone", { token: admin, body: { disabled: true } })).status).toBe(200);

  const own = await issueAs(payments, "own.payments.example");
  const expiring = await issueAs(payments, "expiring.payments.example", 120);
  const revoked = await issueAs(payments, "revoked.payments.example");
  expect((await t.call("POST", `/v1/certificates/${revoked.serial}/revoke`, { token: admin, body: {} })).status).toBe(200);
  targetSerial = (await issueAs(payments, "target.payments.example")).serial;
  ownSerial = own.serial;

  // A client certificate from a CA this CA knows nothing about, with the same names.
  const stranger = opensslSelfSigned({ subject: "/CN=own.payments.example", extensions: ["extendedKeyUsage=clientAuth"] });
  const foreign = { cert: stranger.certPem, key: stranger.keyPem };

  auth.none = {};
  auth.wrongToken = { token: "pki_admin_this-is-not-a-token-of-this-ca" };
  auth.disabledProvisioner = { token: disabled };
  auth.otherProvisioner = { token: other };
  auth.provisioner = { token: payments };
  auth.admin = { token: admin };
  auth.mtls = { cert: own.cert, key: own.key };
  auth.mtlsForeign = foreign;
  auth.mtlsExpired = { cert: expiring.cert, key: expiring.key };
  auth.mtlsRevoked = { cert: revoked.cert, key: revoked.key };
  clock.advance(3600); // the 120-second certificate is now expired; the others are not
});

afterAll(async () => {
  await t?.stop();
});

const csrFor = (cn: string) => opensslCsr({ subject: `/CN=${cn}` }).csrPem;
const call = (method: string, route: string, credential: Credential, body?: unknown) => t.call(method, route, { ...auth[credential], ...(body === undefined ? {} : { body }) });

const cells: Cell[] = [
  // open to anyone; a credential that is sent must be valid (an operator's shows more)
  { route: "GET /v1/issuers", request: (c) => call("GET", "/v1/issuers", c), expect: { wrongToken: 401, disabledProvisioner: 401, otherwise: 200 } },
  { route: "GET /openapi.json", request: (c) => call("GET", "/openapi.json", c), expect: { otherwise: 200 } },
  {
    route: "POST /v1/certificates",
    request: (c) => call("POST", "/v1/certificates", c, { csr: csrFor("new.payments.example") }),
    expect: { provisioner: 201, admin: 201, otherProvisioner: 403, otherwise: 401 },
  },
  {
    route: "POST /v1/certificates/renew",
    request: (c) => call("POST", "/v1/certificates/renew", c, {}),
    expect: { mtls: 201, otherwise: 401 },
  },
  {
    route: "POST /v1/certificates/{other serial}/revoke",
    request: (c) => call("POST", `/v1/certificates/${c === "admin" ? `01${"0".repeat(32)}` : targetSerial}/revoke`, c, {}),
    // the admin cell names a serial that does not exist, so the target stays valid for the other cells
    expect: { admin: 404, provisioner: 403, otherProvisioner: 403, mtls: 403, otherwise: 401 },
  },
  { route: "GET /v1/certificates", request: (c) => call("GET", "/v1/certificates?limit=1", c), expect: { admin: 200, provisioner: 403, otherProvisioner: 403, otherwise: 401 } },
  { route: "GET /v1/certificates/{serial}", request: (c) => call("GET", `/v1/certificates/${targetSerial}`, c), expect: { admin: 200, provisioner: 403, otherProvisioner: 403, otherwise: 401 } },
  { route: "POST /v1/provisioners", request: (c) => call("POST", "/v1/provisioners", c, {}), expect: { admin: 400, provisioner: 403, otherProvisioner: 403, otherwise: 401 } },
  { route: "GET /v1/provisioners", request: (c) => call("GET", "/v1/provisioners", c), expect: { admin: 200, provisioner: 403, otherProvisioner: 403, otherwise: 401 } },
  {
    route: "PATCH /v1/provisioners/{name}",
    request: (c) => call("PATCH", "/v1/provisioners/nobody", c, { disabled: true }),
    expect: { admin: 404, provisioner: 403, otherProvisioner: 403, otherwise: 401 },
  },
  {
    route: "POST /v1/provisioners/{name}/eab-keys",
    request: (c) => call("POST", "/v1/provisioners/nobody/eab-keys", c),
    expect: { admin: 404, provisioner: 403, otherProvisioner: 403, otherwise: 401 },
  },
  { route: "DELETE /v1/provisioners/{name}", request: (c) => call("DELETE", "/v1/provisioners/nobody", c), expect: { admin: 404, provisioner: 403, otherProvisioner: 403, otherwise: 401 } },
  {
    route: "POST /v1/issuers/rotate",
    request: (c) => call("POST", "/v1/issuers/rotate", c, { hierarchy: "no-such-hierarchy" }),
    expect: { admin: "ran", provisioner: 403, otherProvisioner: 403, otherwise: 401 },
  },
  { route: "GET /v1/overview", request: (c) => call("GET", "/v1/overview", c), expect: { admin: 200, provisioner: 403, otherProvisioner: 403, otherwise: 401 } },
  { route: "GET /v1/audit", request: (c) => call("GET", "/v1/audit?limit=1", c), expect: { admin: 200, provisioner: 403, otherProvisioner: 403, otherwise: 401 } },
  // a bearer token is no console session
  { route: "GET /v1/console/session", request: (c) => call("GET", "/v1/console/session", c), expect: { otherwise: 401 } },
  { route: "DELETE /v1/console/session", request: (c) => call("DELETE", "/v1/console/session", c), expect: { admin: 400, provisioner: 403, otherProvisioner: 403, otherwise: 401 } },
  {
    route: "GET /v1/certificates/{serial}/relying-party",
    request: (c) => call("GET", `/v1/certificates/${targetSerial}/relying-party`, c),
    expect: { admin: 200, provisioner: 403, otherProvisioner: 403, otherwise: 401 },
  },
  {
    route: "POST /v1/issuers/{id}/activate",
    request: (c) => call("POST", "/v1/issuers/no-such-issuer/activate", c),
    expect: { admin: 404, provisioner: 403, otherProvisioner: 403, otherwise: 401 },
  },
  {
    route: "POST /v1/issuers/{id}/revoke",
    request: (c) => call("POST", "/v1/issuers/no-such-issuer/revoke", c, { dryRun: true }),
    expect: { admin: 404, provisioner: 403, otherProvisioner: 403, otherwise: 401 },
  },
  {
    route: "GET /v1/issuers/{id}/reissue",
    request: (c) => call("GET", "/v1/issuers/no-such-issuer/reissue", c),
    expect: { admin: 404, provisioner: 403, otherProvisioner: 403, otherwise: 401 },
  },
  // operator tasks: the admin cells are refused for their input, so nothing runs or changes
  { route: "GET /v1/scheduler", request: (c) => call("GET", "/v1/scheduler", c), expect: { admin: 200, provisioner: 403, otherProvisioner: 403, otherwise: 401 } },
  {
    route: "POST /v1/scheduler/jobs/{job}/run",
    request: (c) => call("POST", "/v1/scheduler/jobs/no-such-job/run", c),
    expect: { admin: 400, provisioner: 403, otherProvisioner: 403, otherwise: 401 },
  },
  { route: "GET /v1/crls", request: (c) => call("GET", "/v1/crls", c), expect: { admin: 200, provisioner: 403, otherProvisioner: 403, otherwise: 401 } },
  {
    route: "POST /v1/crls/publish",
    request: (c) => call("POST", "/v1/crls/publish", c, { issuerId: "no-such-issuer" }),
    expect: { admin: 404, provisioner: 403, otherProvisioner: 403, otherwise: 401 },
  },
  { route: "GET /v1/doctor", request: (c) => call("GET", "/v1/doctor", c), expect: { admin: 200, provisioner: 403, otherProvisioner: 403, otherwise: 401 } },
  { route: "GET /v1/admins", request: (c) => call("GET", "/v1/admins", c), expect: { admin: 200, provisioner: 403, otherProvisioner: 403, otherwise: 401 } },
  { route: "POST /v1/admins", request: (c) => call("POST", "/v1/admins", c, {}), expect: { admin: 400, provisioner: 403, otherProvisioner: 403, otherwise: 401 } },
  { route: "DELETE /v1/admins/{name}", request: (c) => call("DELETE", "/v1/admins/nobody", c), expect: { admin: 404, provisioner: 403, otherProvisioner: 403, otherwise: 401 } },
];

describe("access control matrix", () => {
  for (const cell of cells) {
    it.each(CREDENTIALS)(`${cell.route} as %s`, async (credential) => {
      const res = await cell.request(credential);
      const expected = cell.expect[credential] ?? cell.expect.otherwise;
      if (expected === "ran") expect([401, 403, 429], res.text).not.toContain(res.status);
      else expect(res.status, res.text).toBe(expected);
    });
  }

  it("left the target certificate valid and the own certificate renewed exactly once", async () => {
    expect((await t.ca.inventory.certificates.get(targetSerial))?.status).toBe("valid");
    expect((await t.ca.inventory.certificates.get(ownSerial))?.successorSerial).toMatch(/^01/);
  });
});
