// Talks to the issuing API under the operator's session cookie. Every request other than
// GET/HEAD carries the session's CSRF token; a 401 means the session ended (idle or
// revoked), which sends the operator back to the login page with a message.

/** @type {string | null} */
let csrfToken = null;
/** @type {(detail: string) => void} */
let onSessionEnded = () => {};

export class ApiError extends Error {
  /**
   * @param {number} status the HTTP status, 0 when the CA did not answer
   * @param {string} detail
   * @param {ErrorOptions} [options]
   */
  constructor(status, detail, options) {
    super(detail, options);
    this.status = status;
  }
}

/** @param {(detail: string) => void} handler */
export function setSessionEndedHandler(handler) {
  onSessionEnded = handler;
}

/** @param {string | null} token */
export function setCsrf(token) {
  csrfToken = token;
}

/**
 * @typedef {{ quiet401?: boolean }} RequestOptions
 * `quiet401`: a 401 is only thrown, not taken as the session's end (checking for a session)
 */

/**
 * The answer's JSON (null for 204 or an empty body); throws ApiError with the problem's detail.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @param {RequestOptions} [options]
 * @returns {Promise<any>}
 */
export async function request(method, path, body, { quiet401 = false } = {}) {
  /** @type {Record<string, string>} */
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && method !== "HEAD" && csrfToken) headers["x-csrf-token"] = csrfToken;
  let res;
  try {
    res = await fetch(path, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (error) {
    throw new ApiError(0, "the CA did not answer (network error)", { cause: error });
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch (error) {
    throw new ApiError(res.status, `unexpected answer (${res.status})`, { cause: error });
  }
  if (!res.ok) {
    const detail = data && typeof data.detail === "string" ? data.detail : `${res.status} ${res.statusText}`;
    if (res.status === 401 && !quiet401) {
      csrfToken = null;
      onSessionEnded(detail);
    }
    throw new ApiError(res.status, detail);
  }
  return data;
}

/** @param {string} path @param {RequestOptions} [options] */
export const get = (path, options) => request("GET", path, undefined, options);
/** @param {string} path @param {unknown} [body] none: no request body */
export const post = (path, body) => request("POST", path, body);
/** @param {string} path @param {unknown} body */
export const patch = (path, body) => request("PATCH", path, body);
/** @param {string} path */
export const del = (path) => request("DELETE", path);

/**
 * A query string from the defined, non-empty values.
 * @param {object} params
 */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") continue;
    q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

/** The list in an answer: some routes answer a bare array, paged ones `{items, nextCursor}`. */
export const itemsOf = (/** @type {any} */ answer) => (Array.isArray(answer) ? answer : (answer?.items ?? []));
