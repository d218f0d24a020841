// The cloud's public API (/api/v1). The browser signs in with the HttpOnly session cookie;
// writes echo the session's CSRF token, which the API hands out with the login and with /me.

export const API = "/api/v1";

export class ApiError extends Error {
  /**
   * status: the HTTP status (0: no answer at all); code: the API's error code ("not_found"...);
   * detail: its reason for people; retryAfterS: seconds to wait (429).
   */
  constructor(status, code, detail, retryAfterS = null) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.retryAfterS = retryAfterS;
  }
}

let csrfToken = null;
const listeners = new Set();

export function setCsrfToken(token) {
  csrfToken = token;
}

/** Called with the ApiError of every 401: the session ended (signed out elsewhere, expired). */
export function onUnauthenticated(listener) {
  listeners.add(listener);
}

const reachListeners = new Set();
/** Called with false when a call gets no answer at all, and with true when one is answered. */
export function onReachability(listener) {
  reachListeners.add(listener);
}

function reached(answered) {
  for (const listener of reachListeners) listener(answered);
}

function describe(body, status) {
  if (!body) return `HTTP ${status}`;
  const detail = body.detail ?? body.error_description;
  if (Array.isArray(detail)) return detail.map((problem) => problem.msg).join("; ");
  return detail ? String(detail) : `HTTP ${status}`;
}

/**
 * One API call: the parsed JSON answer (null for 204), or an ApiError (its ``body``: the
 * whole answer, for refusals that carry more than a reason). ``contentType``: send ``body``
 * as it is (text) instead of as JSON.
 */
export async function request(method, path, body = undefined, { contentType = null } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = contentType ?? "application/json";
  if (method !== "GET" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let response;
  try {
    response = await fetch(API + path, {
      method,
      headers,
      body: body === undefined || contentType ? body : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch (error) {
    reached(false);
    throw new ApiError(0, "offline", String(error));
  }
  reached(true);
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const retry = Number(response.headers.get("Retry-After"));
    const error = new ApiError(
      response.status,
      data?.code ?? data?.error ?? "error",
      describe(data, response.status),
      Number.isFinite(retry) && retry > 0 ? retry : null,
    );
    error.body = data;
    if (response.status === 401) for (const listener of listeners) listener(error);
    throw error;
  }
  return data;
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, body);
export const del = (path) => request("DELETE", path);
export const patch = (path, body) => request("PATCH", path, body);
export const put = (path, body) => request("PUT", path, body);
/** POST a CSV file's text as ``text/csv``. */
export const postCsv = (path, text) => request("POST", path, text, { contentType: "text/csv" });

/** ``path`` with a query string of ``params`` (arrays repeat the name; null is left out). */
export function withQuery(path, params) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === "") continue;
    for (const each of Array.isArray(value) ? value : [value]) query.append(name, String(each));
  }
  const text = query.toString();
  return text ? `${path}?${text}` : path;
}

/** The query string of a history request. */
export function readingsPath(meterId, from, to, resolution) {
  const query = new URLSearchParams({
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    resolution,
  });
  return `/meters/${meterId}/readings?${query}`;
}

/** The live socket's URL for a meter (same host; wss behind TLS). */
export function liveUrl(meterId) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${API}/live?meter=${encodeURIComponent(meterId)}`;
}
