// The public API, as DESIGN.md §2 defines it, plus detection of the routes and filters that this API has.

const SETTINGS_KEY = "messaging-console.settings";

export function loadSettings() {
  const stored = JSON.parse(localStorage.getItem(SETTINGS_KEY) || "{}");
  return { base: stored.base || "", token: stored.token || "", poll: Number(stored.poll) || 3 };
}

export function saveSettings(settings) {
  localStorage.setItem(SETTINGS_KEY, JSON.stringify(settings));
}

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || (body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || null;
    this.field = error.field || null;
    // API Gateway answers an unknown route with {"message":"Not Found"}; the local runner with "no route".
    this.missingRoute =
      (status === 404 && (!body || !body.error || /^no route/.test(error.message || ""))) ||
      (status === 405 && (!body || !body.error || error.code === "method_not_allowed"));
  }
}

export async function request(method, path, { query, body, headers: extra } = {}) {
  const { base, token } = loadSettings();
  const url = new URL(base.replace(/\/$/, "") + path, location.href);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  const headers = { Accept: "application/json", ...extra };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: "no-store",
  });
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

export const api = {
  conversations: (query) => request("GET", "/api/conversations", { query }),
  conversation: (id) => request("GET", `/api/conversations/${id}`),
  conversationMessages: (id, query) => request("GET", `/api/conversations/${id}/messages`, { query }),
  message: (id) => request("GET", `/api/messages/${id}`),
  messageEvents: (id, query) => request("GET", `/api/messages/${id}/events`, { query }),
  searchMessages: (query) => request("GET", "/api/messages", { query }),
  resend: (id) => request("POST", `/api/messages/${id}/resend`, { body: {} }),
  archive: (id, archived) => request("PATCH", `/api/conversations/${id}`, { body: { archived } }),
  markRead: (id) => request("POST", `/api/conversations/${id}/read`, { body: {} }),
  send: (channel, payload, idempotencyKey) =>
    request("POST", `/api/messages/${channel === "email" ? "email" : "sms"}`, {
      body: payload,
      headers: { "Idempotency-Key": idempotencyKey },
    }),
  webhookEndpoints: (query) => request("GET", "/api/webhook-endpoints", { query }),
  createWebhookEndpoint: (payload) => request("POST", "/api/webhook-endpoints", { body: payload }),
  updateWebhookEndpoint: (id, payload) => request("PATCH", `/api/webhook-endpoints/${id}`, { body: payload }),
  deleteWebhookEndpoint: (id) => request("DELETE", `/api/webhook-endpoints/${id}`),
  webhookDeliveries: (id, query) => request("GET", `/api/webhook-endpoints/${id}/deliveries`, { query }),
  retryDelivery: (id) => request("POST", `/api/webhook-deliveries/${id}/retry`, { body: {} }),
  suppressions: (query) => request("GET", "/api/suppressions", { query }),
  addSuppression: (payload) => request("POST", "/api/suppressions", { body: payload }),
  liftSuppression: (id) => request("DELETE", `/api/suppressions/${id}`),
};

/** A whole phone number (a +, then at least 8 digits in any formatting) or email address (x@y.z): what the
 * API's address filters accept, so a filter is queried only once the input is one (a partial is a 422). */
export function plausibleAddress(text) {
  if (text.includes("@")) return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(text);
  return /^\+[\d\s().-]+$/.test(text) && text.replace(/\D/g, "").length >= 8;
}

/** The pages of a list in its order, following next_cursor until `max` items are read (lists are keyset
 * pages: {items, next_cursor}). `complete` is false when more items exist than were read. */
export async function readPages(fetchPage, query = {}, max = 1000) {
  const items = [];
  let cursor = null;
  do {
    const page = await fetchPage({ ...query, limit: 200, cursor });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return { items, complete: !cursor };
}

/** Every page of a list, up to `max` items. */
export async function allPages(fetchPage, query = {}, max = 1000) {
  return (await readPages(fetchPage, query, max)).items;
}

// What this API offers beyond the core routes, read from the OpenAPI document the local runner serves next to
// the API. A deployed API Gateway serves no such document: the console then assumes the API it ships with
// (this repository's, which has every route and filter below) rather than probing route by route.
let detected = null;

export function capabilities() {
  detected ||= detect().catch((error) => {
    detected = null;
    throw error;
  });
  return detected;
}

export function forgetCapabilities() {
  detected = null;
}

export const EVERYTHING = Object.freeze({
  source: "assumed",
  filters: Object.freeze({ participant: true, channel: true, archived: true }),
  search: true,
  searchChannel: true,
  failed: true,
  events: true,
  resend: true,
  archive: true,
  read: true,
  webhooks: true,
  suppressions: true,
});

async function detect() {
  let document = null;
  try {
    document = await request("GET", "/openapi.json");
  } catch (error) {
    // An unreachable API fails here, as it would at the first list; an absent document is not an error.
    if (error instanceof ApiError) return EVERYTHING;
    throw error;
  }
  return document && document.paths ? fromOpenApi(document.paths) : EVERYTHING;
}

function queryParameters(operation) {
  return new Set(((operation && operation.parameters) || []).filter((p) => p.in === "query").map((p) => p.name));
}

function fromOpenApi(paths) {
  const conversation = paths["/api/conversations/{conversation_id}"] || {};
  const conversationFilters = queryParameters((paths["/api/conversations"] || {}).get);
  const messageFilters = queryParameters((paths["/api/messages"] || {}).get);
  return {
    source: "openapi",
    filters: {
      participant: conversationFilters.has("participant"),
      channel: conversationFilters.has("channel"),
      archived: conversationFilters.has("archived"),
    },
    search: messageFilters.has("q"),
    searchChannel: messageFilters.has("type"),
    failed: messageFilters.has("status"),
    events: Boolean(paths["/api/messages/{message_id}/events"]),
    resend: Boolean((paths["/api/messages/{message_id}/resend"] || {}).post),
    archive: Boolean(conversation.patch),
    read: Boolean((paths["/api/conversations/{conversation_id}/read"] || {}).post),
    webhooks: Boolean((paths["/api/webhook-endpoints"] || {}).get),
    suppressions: Boolean((paths["/api/suppressions"] || {}).get),
  };
}
