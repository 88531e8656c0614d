// The API client: the {success, data | error} envelope, the bearer token and
// its refresh. Tokens live in sessionStorage: they last as long as the tab and
// are never written to disk by the console.

const STORE_KEY = "t2m.session";
export const V1 = "/api/v1";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /** The message with the first validation details, for showing to a person. */
  describe() {
    if (this.details && typeof this.details === "object") {
      const first = Object.entries(this.details)[0];
      if (first) {
        const [field, problems] = first;
        const text = Array.isArray(problems) ? problems.join(" ") : JSON.stringify(problems);
        return `${this.message}: ${field}: ${text}`;
      }
    }
    return this.message;
  }
}

function loadSession() {
  try {
    return JSON.parse(sessionStorage.getItem(STORE_KEY) || "null");
  } catch {
    return null;
  }
}

let session = loadSession();

export function currentSession() {
  return session;
}

export function accessToken() {
  return session?.access_token || null;
}

/** Store (or with null, forget) the session; views listen for "t2m:session". */
export function setSession(value) {
  session = value;
  if (value) sessionStorage.setItem(STORE_KEY, JSON.stringify(value));
  else sessionStorage.removeItem(STORE_KEY);
  window.dispatchEvent(new CustomEvent("t2m:session", { detail: value }));
}

/** The envelope's data, or an ApiError. */
export async function readEnvelope(response) {
  let body = null;
  if ((response.headers.get("Content-Type") || "").includes("json")) {
    body = await response.json().catch(() => null);
  }
  if (response.ok && !(body && body.success === false)) {
    return body && "data" in body ? body.data : body;
  }
  const error = body?.error || {};
  throw new ApiError(
    response.status,
    error.code || `HTTP_${response.status}`,
    error.message || response.statusText || "Request failed",
    error.details,
  );
}

let refreshing = null;

/** Trade the refresh token for a new pair; concurrent callers share one try.
 * Resolves false (and signs out) when the session cannot be renewed. */
export function refreshSession() {
  if (!session?.refresh_token) return Promise.resolve(false);
  if (!refreshing) {
    const old = session;
    refreshing = (async () => {
      try {
        const response = await fetch(`${V1}/auth/refresh`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ refresh_token: old.refresh_token }),
        });
        const data = await readEnvelope(response);
        setSession({ ...old, ...data, user: data.user || old.user });
        return true;
      } catch {
        setSession(null);
        return false;
      } finally {
        refreshing = null;
      }
    })();
  }
  return refreshing;
}

function withQuery(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/**
 * Call the API. Options: json (a body to send as JSON), query, headers,
 * auth (default true), raw (return the Response, e.g. for bytes), keepalive.
 * A 401 triggers one token refresh and one retry.
 */
export async function request(method, path, options = {}) {
  const { json, query, headers = {}, auth = true, raw = false, keepalive = false } = options;
  const url = withQuery(path, query);
  for (let attempt = 0; ; attempt += 1) {
    const sent = new Headers(headers);
    if (json !== undefined) sent.set("Content-Type", "application/json");
    if (auth && session?.access_token) sent.set("Authorization", `Bearer ${session.access_token}`);
    const response = await fetch(url, {
      method,
      headers: sent,
      body: json !== undefined ? JSON.stringify(json) : undefined,
      keepalive,
    });
    if (response.status === 401 && auth && attempt === 0 && (await refreshSession())) continue;
    if (raw) {
      if (!response.ok) await readEnvelope(response);
      return response;
    }
    return readEnvelope(response);
  }
}

export const get = (path, options) => request("GET", path, options);
export const post = (path, json, options = {}) => request("POST", path, { ...options, json });

/** A signed, token-free link for a file (for <video>, <img> and sharing, which
 * cannot send an Authorization header). */
export async function signedUrl(fileId, params = {}) {
  const data = await post(`${V1}/files/${encodeURIComponent(fileId)}/signed-url`, {
    expires_in: 3600,
    inline: true,
    ...params,
  });
  return data.url;
}

/** Record a feedback event; failures are reported, never thrown (feedback must
 * not break playback). */
export async function sendFeedback(event, { keepalive = false } = {}) {
  try {
    return await request("POST", `${V1}/feedback`, { json: event, keepalive });
  } catch (error) {
    console.warn("feedback not recorded", error);
    return null;
  }
}
