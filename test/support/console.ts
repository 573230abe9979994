// Operator console sessions over the API, for the tests that act as a logged-in browser
// would: the pki_session cookie and the CSRF token.
import { expect } from "vitest";
import type { ApiResponse, TestApi } from "./api.ts";

/** The pki_session cookie's value and attributes from a Set-Cookie answer. */
export function sessionCookieOf(res: ApiResponse): { value: string; attributes: string[] } {
  const header = [res.headers["set-cookie"] ?? []].flat().find((c) => c.startsWith("pki_session="));
  if (!header) throw new Error(`no pki_session cookie in ${res.status} ${res.text}`);
  const [pair, ...attributes] = header.split(";").map((p) => p.trim());
  return { value: pair!.slice("pki_session=".length), attributes };
}

export interface ConsoleLogin {
  res: ApiResponse;
  /** the Cookie header value */
  cookie: string;
  value: string;
  csrf: string;
}

/** Logs in with an admin token (201 expected). */
export async function consoleLogin(t: TestApi, token: string): Promise<ConsoleLogin> {
  const res = await t.call("POST", "/v1/console/session", { body: { token } });
  expect(res.status, res.text).toBe(201);
  const cookie = sessionCookieOf(res);
  return { res, cookie: `pki_session=${cookie.value}`, value: cookie.value, csrf: res.json.csrfToken as string };
}

/** Request options that send the session cookie (and any extra headers, e.g. X-CSRF-Token). */
export const asSession = (s: { cookie: string }, headers: Record<string, string> = {}) => ({ headers: { cookie: s.cookie, ...headers } });
