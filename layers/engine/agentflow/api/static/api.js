// The HTTP API as the page calls it: every request carries the key in X-API-Key, relative to the API's root
// (the page's <base href>), so the page needs no route of its own beyond its static files (README, "The web page").

const STORE = "agentflow.apiKey";

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `the API answered ${status}`);
    this.status = status;
    this.code = error.code || "";
    this.details = error.details;
  }
}

export function storedKey() {
  return sessionStorage.getItem(STORE);
}

export function keepKey(key) {
  sessionStorage.setItem(STORE, key);
}

export function forgetKey() {
  sessionStorage.removeItem(STORE);
}

// A key given as `#key=...` is taken once and removed from the address bar (and so from the history).
export function takeKeyFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const key = params.get("key");
  if (!key) return;
  keepKey(key);
  params.delete("key");
  const rest = params.toString();
  history.replaceState(history.state, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
}

export function pageUrl(path) {
  return new URL(path, document.baseURI);
}

export async function call(method, path, body) {
  const headers = { "X-API-Key": storedKey() || "" };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(pageUrl(path), init);
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

const id = (value) => encodeURIComponent(value);

export const api = {
  graphs: () => call("GET", "graphs"),
  graph: (graphId, version) => call("GET", `graphs/${id(graphId)}${version ? `?version=${version}` : ""}`),
  blocks: () => call("GET", "blocks"),
  runsOf: (graphId, limit = 20) => call("GET", `graphs/${id(graphId)}/executions?limit=${limit}`),
  run: (executionId) => call("GET", `executions/${id(executionId)}`),
  events: (executionId) => call("GET", `executions/${id(executionId)}/events`),
  start: (graphId, inputs) => call("POST", `graphs/${id(graphId)}/execute`, { inputs }),
  stop: (executionId) => call("POST", `executions/${id(executionId)}/stop`),
  resume: (executionId) => call("POST", `executions/${id(executionId)}/resume`),
  reviews: () => call("GET", "reviews?limit=100"),
  review: (reviewId) => call("GET", `reviews/${id(reviewId)}`),
  decide: (reviewId, approved, message) =>
    call("POST", `reviews/${id(reviewId)}`, message ? { approved, message } : { approved }),
};
